"""Dramatiq's namespace and Celery's key prefix side by side on the test Redis, with known counts:
what a monitor reading both brokers is tested against."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import redis
from celery import Celery
from dramatiq.brokers.redis import RedisBroker

from tasklens.monitor import MonitorSettings
from tasklens.monitor.settings import BrokerSpec
from tests.celery_fixtures import delete_prefixed

__all__ = ["Layout"]


class Layout:
    """Dramatiq's namespace and Celery's key prefix on one Redis, with known counts."""

    def __init__(self, redis_url: str, name: str) -> None:
        self.redis_url = redis_url
        self.namespace = name
        self.prefix = f"{name}-celery:"
        self.dramatiq_url = f"{redis_url}?namespace={name}"
        client = redis.Redis.from_url(redis_url)
        broker = RedisBroker(url=redis_url, namespace=name)
        self.dramatiq_broker = broker

        @dramatiq.actor(queue_name="shared", broker=broker)
        def shared_task() -> None: ...

        @dramatiq.actor(queue_name="emails", broker=broker)
        def email() -> None: ...

        for _ in range(3):
            shared_task.send()
        email.send()
        # Two dead letters in Dramatiq's "shared" queue, laid out as Dramatiq's Redis broker does.
        self.dead_ids = []
        for _ in range(2):
            message = shared_task.message()
            client.zadd(f"{name}:shared.XQ", {message.message_id: time.time() * 1000})
            client.hset(f"{name}:shared.XQ.msgs", message.message_id, message.encode())
            self.dead_ids.append(message.message_id)
        client.close()

        app = Celery(f"{name}-app", broker=redis_url)
        app.conf.broker_transport_options = {"global_keyprefix": self.prefix}
        app.conf.broker_connection_retry_on_startup = False
        for _ in range(5):
            app.send_task("orders.ship", queue="shared")
        for _ in range(2):
            app.send_task("orders.bill", queue="billing")
        app.close()

    def monitor_settings(self, *extra: BrokerSpec, **overrides: Any) -> MonitorSettings:
        """A monitor reading the Dramatiq namespace, then the Celery layout, then ``extra``."""
        options: dict[str, Any] = {
            "brokers": (
                BrokerSpec(self.dramatiq_url, library="dramatiq"),
                BrokerSpec(self.redis_url, library="celery"),
                *extra,
            ),
            "transport_options": {"global_keyprefix": self.prefix},
            # Celery's first read listens for worker heartbeats for a few seconds.
            "broker_timeout": 5.0,
            **overrides,
        }
        return MonitorSettings(**options)

    def close(self) -> None:
        self.dramatiq_broker.close()
        delete_prefixed(self.redis_url, self.prefix)
