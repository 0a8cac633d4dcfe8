"""The demo's broker: Redis when one answers on localhost, an in-process broker otherwise."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

__all__ = ["DemoBroker", "demo_broker"]

#: Where the demo looks for Redis.
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: How long the demo waits for Redis to answer before it runs in process, in seconds.
REDIS_PROBE_TIMEOUT = 0.5


@dataclass
class DemoBroker:
    """The broker the demo uses, decided before it is made.

    Parameters:
      description(str): For the terminal, e.g. "Redis at 127.0.0.1:6379 (namespace ...)".
      url(str|None): The broker URL a monitor reads (with the namespace), or None in process.
      namespace(str|None): The Redis namespace of the demo's keys.
      broker(dramatiq.Broker|None): The broker, once ``create()`` made it.
    """

    description: str
    url: str | None
    namespace: str | None
    broker: dramatiq.Broker | None = None

    def create(self) -> DemoBroker:
        """Make the broker (with the AsyncIO middleware)."""
        if self.namespace is not None:
            from dramatiq.brokers.redis import RedisBroker

            broker: dramatiq.Broker = RedisBroker(
                url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0", namespace=self.namespace
            )
        else:
            broker = StubBroker()
            broker.emit_after("process_boot")
        broker.add_middleware(AsyncIO())
        self.broker = broker
        return self

    def close(self) -> None:
        """Close the broker and delete every key the demo made in Redis."""
        if self.broker is None:
            return
        client = getattr(self.broker, "client", None)
        if client is not None and self.namespace:
            keys = list(client.scan_iter(match=f"{self.namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        self.broker.close()


def _redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=REDIS_PROBE_TIMEOUT) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def demo_broker(*, prefer_redis: bool = True, create: bool = True) -> DemoBroker:
    """The demo's broker, in a Redis namespace of its own so it never touches other data.

    Parameters:
      prefer_redis(bool): Use the local Redis when it answers.
      create(bool): Make the broker now; False only decides which (``create()`` makes it).
    """
    if prefer_redis and _redis_answers():
        namespace = f"tasklens-demo-{os.getpid()}"
        demo = DemoBroker(
            f"Redis at {REDIS_HOST}:{REDIS_PORT} (namespace {namespace})",
            f"redis://{REDIS_HOST}:{REDIS_PORT}/0?namespace={namespace}",
            namespace,
        )
    else:
        demo = DemoBroker("an in-process broker (no Redis answered on 127.0.0.1:6379)", None, None)
    return demo.create() if create else demo
