"""The demo's web app: each endpoint enqueues work, as a real app's request handlers do."""

from __future__ import annotations

from fastapi import FastAPI

from tasklens.demo.actors import REMINDER_DELAY_MS, DemoActors

__all__ = ["create_demo_app"]


def create_demo_app(actors: DemoActors) -> FastAPI:
    """A FastAPI app whose endpoints send the demo's messages."""
    app = FastAPI(title="tasklens demo shop")

    @app.post("/signup")
    def signup(email: str = "ada@example.com") -> dict[str, str]:
        message = actors.send_welcome_email.send(email)
        return {"queued": message.message_id}

    @app.post("/reminders")
    def remind(email: str = "ada@example.com") -> dict[str, str]:
        message = actors.send_reminder.send_with_options(args=(email,), delay=REMINDER_DELAY_MS)
        return {"queued": message.message_id}

    @app.post("/reports")
    def report(report_id: int = 1) -> dict[str, str]:
        pipe = actors.report_pipeline(report_id)
        pipe.run()
        return {"queued": pipe.messages[0].message_id}

    return app
