"""The demo's example actors: a flaky email that succeeds on retry, a delayed reminder, a report pipeline."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import dramatiq
from opentelemetry import trace

from tasklens.dramatiq import current_message

__all__ = ["DemoActors", "declare_actors"]

#: Backoff before the welcome email's retry, in milliseconds.
RETRY_BACKOFF_MS = 200
#: How long reminders wait before they run, in milliseconds.
REMINDER_DELAY_MS = 500

logger = logging.getLogger("tasklens.demo")
tracer = trace.get_tracer("tasklens.demo")


@dataclass
class DemoActors:
    """The actors, declared on one broker."""

    send_welcome_email: dramatiq.Actor[Any, Any]
    send_reminder: dramatiq.Actor[Any, Any]
    fetch_rows: dramatiq.Actor[Any, Any]
    transform_rows: dramatiq.Actor[Any, Any]
    store_report: dramatiq.Actor[Any, Any]

    def report_pipeline(self, report_id: int) -> dramatiq.pipeline:
        return dramatiq.pipeline(
            [self.fetch_rows.message(report_id), self.transform_rows.message(), self.store_report.message()],
            broker=self.fetch_rows.broker,
        )


def declare_actors(broker: dramatiq.Broker, queue_name: str = "demo") -> DemoActors:
    """Declare the example actors on ``broker``."""

    def actor(**options: Any) -> Any:
        return dramatiq.actor(broker=broker, queue_name=queue_name, **options)

    @actor(max_retries=3, min_backoff=RETRY_BACKOFF_MS, max_backoff=RETRY_BACKOFF_MS)
    def send_welcome_email(email: str) -> None:
        message = current_message()
        if message is not None and message.options.get("retries", 0) == 0:
            raise ConnectionError("SMTP server busy, try again")
        with tracer.start_as_current_span("smtp.send"):
            time.sleep(0.01)
        logger.info("Welcome email sent to %s", email)

    @actor()
    def send_reminder(email: str) -> None:
        logger.info("Reminder sent to %s", email)

    @actor()
    def fetch_rows(report_id: int) -> list[int]:
        with tracer.start_as_current_span("db.query"):
            time.sleep(0.005)
        return list(range(report_id, report_id + 5))

    @actor()
    def transform_rows(rows: list[int]) -> list[int]:
        return [row * 2 for row in rows]

    @actor()
    def store_report(rows: list[int]) -> None:
        logger.info("Report stored with %d rows", len(rows))

    return DemoActors(send_welcome_email, send_reminder, fetch_rows, transform_rows, store_report)
