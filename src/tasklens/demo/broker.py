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
    """A broker and a line saying what it is.

    Parameters:
      broker(dramatiq.Broker): The broker, with the AsyncIO middleware.
      description(str): For the terminal, e.g. "Redis at 127.0.0.1:6379 (namespace ...)".
      url(str|None): The broker URL when it is a real server.
    """

    broker: dramatiq.Broker
    description: str
    url: str | None

    def close(self) -> None:
        client = getattr(self.broker, "client", None)
        namespace = getattr(self.broker, "namespace", None)
        if client is not None and namespace:
            keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
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


def demo_broker(*, prefer_redis: bool = True) -> DemoBroker:
    """A broker for the demo, in a namespace of its own so it never touches other data."""
    if prefer_redis and _redis_answers():
        from dramatiq.brokers.redis import RedisBroker

        namespace = f"tasklens-demo-{os.getpid()}"
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
        broker: dramatiq.Broker = RedisBroker(url=url, namespace=namespace)
        broker.add_middleware(AsyncIO())
        return DemoBroker(broker, f"Redis at {REDIS_HOST}:{REDIS_PORT} (namespace {namespace})", url)
    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    broker.emit_after("process_boot")
    return DemoBroker(broker, "an in-process broker (no Redis answered on 127.0.0.1:6379)", None)
