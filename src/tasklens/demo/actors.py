"""The demo's example actors, the kinds of work a real shop runs in its workers.

- ``send_welcome_email`` (emails): the mail server is busy on the first attempt; the retry works.
- ``send_reminder`` (emails): sent with a delay.
- ``charge_payment`` (payments): the gateway times out now and then; Retries tries again.
- ``generate_report`` (reports): slow, with spans of its own for each stage.
- ``fetch_rows`` → ``transform_rows`` → ``store_rows`` (etl): a three-step pipeline.
- ``resize_image`` for each image, then ``build_gallery`` (media): a group with a completion callback.
- ``sync_inventory`` (inventory): its upstream is down; it ends in the dead-letter queue.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.middleware import GroupCallbacks
from dramatiq.rate_limits.backends import StubBackend
from opentelemetry import trace

from tasklens.dramatiq import current_message

__all__ = ["DemoActors", "declare_actors"]

#: Backoff before a failed email or payment is tried again, in milliseconds.
RETRY_BACKOFF_MS = 200
#: How often a payment attempt times out.
PAYMENT_FAILURE_RATE = 0.25
#: How long a report takes, at least and at most, in seconds.
REPORT_SECONDS = (0.3, 1.5)

logger = logging.getLogger("tasklens.demo")
tracer = trace.get_tracer("tasklens.demo")


class PaymentGatewayTimeout(Exception):
    """The payment provider did not answer in time."""


class InventoryServiceDown(Exception):
    """The inventory service refuses connections."""


@dataclass
class DemoActors:
    """The actors, declared on one broker."""

    send_welcome_email: dramatiq.Actor[Any, Any]
    send_reminder: dramatiq.Actor[Any, Any]
    charge_payment: dramatiq.Actor[Any, Any]
    generate_report: dramatiq.Actor[Any, Any]
    fetch_rows: dramatiq.Actor[Any, Any]
    transform_rows: dramatiq.Actor[Any, Any]
    store_rows: dramatiq.Actor[Any, Any]
    resize_image: dramatiq.Actor[Any, Any]
    build_gallery: dramatiq.Actor[Any, Any]
    sync_inventory: dramatiq.Actor[Any, Any]

    @property
    def broker(self) -> dramatiq.Broker:
        return self.fetch_rows.broker

    def etl_pipeline(self, batch: int) -> dramatiq.pipeline:
        """fetch → transform → store, each step fed the previous step's result."""
        return dramatiq.pipeline(
            [self.fetch_rows.message(batch), self.transform_rows.message(), self.store_rows.message()],
            broker=self.broker,
        )

    def gallery(self, album: int, images: int) -> dramatiq.group:
        """Resize ``images`` images in parallel, then build the album's gallery once all are done."""
        fan_out = dramatiq.group(
            [self.resize_image.message(album, n) for n in range(images)], broker=self.broker
        )
        fan_out.add_completion_callback(self.build_gallery.message(album))
        return fan_out


def _first_attempt() -> bool:
    message = current_message()
    return message is not None and not message.options.get("retries")


def declare_actors(broker: dramatiq.Broker) -> DemoActors:
    """Declare the example actors on ``broker`` (and the group-callback middleware they need).

    The group barrier lives in this process (``StubBackend``): the demo's worker runs here.
    """
    if not any(isinstance(m, GroupCallbacks) for m in broker.middleware):
        broker.add_middleware(GroupCallbacks(StubBackend()))

    def actor(queue_name: str, **options: Any) -> Any:
        return dramatiq.actor(broker=broker, queue_name=queue_name, **options)

    @actor("emails", max_retries=3, min_backoff=RETRY_BACKOFF_MS, max_backoff=RETRY_BACKOFF_MS)
    def send_welcome_email(email: str) -> None:
        if _first_attempt():
            raise ConnectionError("SMTP server busy, try again")
        with tracer.start_as_current_span("smtp.send"):
            time.sleep(0.01)
        logger.info("Welcome email sent to %s", email)

    @actor("emails")
    def send_reminder(email: str) -> None:
        logger.info("Reminder sent to %s", email)

    @actor("payments", max_retries=4, min_backoff=RETRY_BACKOFF_MS, max_backoff=4 * RETRY_BACKOFF_MS)
    def charge_payment(order_id: int, amount_cents: int) -> None:
        with tracer.start_as_current_span("gateway.charge"):
            time.sleep(random.uniform(0.01, 0.05))
            if random.random() < PAYMENT_FAILURE_RATE:
                raise PaymentGatewayTimeout(f"gateway timed out charging order {order_id}")
        logger.info("Charged order %s: %d cents", order_id, amount_cents)

    @actor("reports", time_limit=60_000)
    def generate_report(report_id: int) -> None:
        with tracer.start_as_current_span("warehouse.query"):
            time.sleep(random.uniform(*REPORT_SECONDS) * 0.7)
        with tracer.start_as_current_span("pdf.render"):
            time.sleep(random.uniform(*REPORT_SECONDS) * 0.3)
        logger.info("Report %s ready", report_id)

    @actor("etl")
    def fetch_rows(batch: int) -> list[int]:
        with tracer.start_as_current_span("db.query"):
            time.sleep(0.005)
        return list(range(batch, batch + 5))

    @actor("etl")
    def transform_rows(rows: list[int]) -> list[int]:
        return [row * 2 for row in rows]

    @actor("etl")
    def store_rows(rows: list[int]) -> None:
        logger.info("Stored %d rows", len(rows))

    @actor("media")
    def resize_image(album: int, image: int) -> None:
        time.sleep(random.uniform(0.01, 0.08))

    @actor("media")
    def build_gallery(album: int) -> None:
        logger.info("Gallery %s built", album)

    @actor("inventory", max_retries=1, min_backoff=RETRY_BACKOFF_MS, max_backoff=RETRY_BACKOFF_MS)
    def sync_inventory(sku: str) -> None:
        raise InventoryServiceDown(f"inventory service refused the connection for {sku}")

    return DemoActors(
        send_welcome_email,
        send_reminder,
        charge_payment,
        generate_report,
        fetch_rows,
        transform_rows,
        store_rows,
        resize_image,
        build_gallery,
        sync_inventory,
    )
