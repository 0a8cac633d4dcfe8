from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.monitor.alerts.receivers import SmtpReceiver, WebhookReceiver, smtp_receiver, webhook_receiver
from tests.services import require_redis

#: Every built-in rule; the tests switch on only those they exercise.
ALL_RULES = (
    "backlog",
    "oldest_message_age",
    "error_rate",
    "dead_letters_growing",
    "retry_storm",
    "no_live_workers",
    "broker_unreachable",
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_alerts_file(
    path: Path,
    rules: dict[str, dict[str, Any]],
    *,
    webhooks: list[dict[str, str]] = (),  # type: ignore[assignment]
    email: dict[str, Any] | None = None,
    **top: Any,
) -> Path:
    """A TOML alerts file enabling only ``rules`` (each with its keys), with the notifiers given."""
    lines = ["[alerts]", *(f"{key} = {_toml_value(value)}" for key, value in top.items())]
    for name in ALL_RULES:
        lines.append(f"[alerts.rules.{name}]")
        settings = rules.get(name)
        if settings is None:
            lines.append("enabled = false")
        else:
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in settings.items())
    for hook in webhooks:
        lines.append("[[alerts.webhooks]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in hook.items())
    if email is not None:
        lines.append("[alerts.email]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in email.items())
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as receiver:
        yield receiver


class Backlog:
    """Messages waiting in a Dramatiq queue on the real Redis, under a namespace of this test."""

    def __init__(self, url: str) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        self.namespace = f"tl-alerts-{uuid.uuid4().hex[:10]}"
        self.queue = "orders"
        self.broker_url = f"{url}?namespace={self.namespace}"
        self.redis = redis.Redis.from_url(url)
        self._broker = RedisBroker(url=url, namespace=self.namespace)
        self._actor = dramatiq.actor(
            lambda n: None, broker=self._broker, actor_name="place_order", queue_name=self.queue
        )

    def add(self, count: int) -> None:
        for n in range(count):
            self._actor.send(n)

    def forget_producer(self) -> None:
        """Drop the heartbeat Dramatiq's enqueue script wrote for this producer, which the broker
        would otherwise count as a live worker for a minute."""
        self.redis.delete(f"{self.namespace}:__heartbeats__")

    def drain(self) -> None:
        """Remove the waiting messages (keys this test created)."""
        self.redis.delete(f"{self.namespace}:{self.queue}", f"{self.namespace}:{self.queue}.msgs")

    def close(self) -> None:
        keys = list(self.redis.scan_iter(match=f"{self.namespace}:*"))
        if keys:
            self.redis.delete(*keys)
        self._broker.close()
        self.redis.close()


@pytest.fixture
def backlog() -> Iterator[Backlog]:
    queue = Backlog(require_redis())
    yield queue
    queue.close()
