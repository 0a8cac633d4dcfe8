"""The demo's web shop: each endpoint enqueues work, as a real app's request handlers do."""

from __future__ import annotations

import random

from fastapi import FastAPI

from tasklens.demo.actors import DemoActors

__all__ = ["create_demo_app"]

#: How long reminders wait before they run, in milliseconds, unless the request says otherwise.
REMINDER_DELAY_MS = 500


def create_demo_app(actors: DemoActors) -> FastAPI:
    """A FastAPI app whose endpoints send the demo's messages; each returns the first message id."""
    app = FastAPI(title="tasklens demo shop")

    @app.post("/signup")
    def signup(email: str = "ada@example.com") -> dict[str, str]:
        return {"queued": actors.send_welcome_email.send(email).message_id}

    @app.post("/reminders")
    def remind(email: str = "ada@example.com", delay_ms: int = REMINDER_DELAY_MS) -> dict[str, str]:
        message = actors.send_reminder.send_with_options(args=(email,), delay=delay_ms)
        return {"queued": message.message_id}

    @app.post("/checkout")
    def checkout(order_id: int = 1) -> dict[str, str]:
        amount = random.randint(500, 25_000)
        return {"queued": actors.charge_payment.send(order_id, amount).message_id}

    @app.post("/reports")
    def report(report_id: int = 1) -> dict[str, str]:
        return {"queued": actors.generate_report.send(report_id).message_id}

    @app.post("/etl")
    def etl(batch: int = 1) -> dict[str, str]:
        pipe = actors.etl_pipeline(batch)
        pipe.run()
        return {"queued": pipe.messages[0].message_id}

    @app.post("/albums")
    def album(album_id: int = 1, images: int = 4) -> dict[str, str]:
        fan_out = actors.gallery(album_id, images)
        fan_out.run()
        return {"queued": fan_out.children[0].message_id}

    @app.post("/inventory/sync")
    def sync(sku: str = "SKU-1") -> dict[str, str]:
        return {"queued": actors.sync_inventory.send(sku).message_id}

    return app
