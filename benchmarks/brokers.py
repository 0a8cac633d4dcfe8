"""The brokers a trial runs against, each with names no one else uses, cleaned up afterwards.

Redis and RabbitMQ on localhost are shared with other users of the machine: every trial gets its
own Redis namespace or RabbitMQ queue name, and deletes everything it created when it ends.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import dramatiq

__all__ = ["BROKERS", "RABBITMQ_URL", "REDIS_URL", "TrialBroker", "open_broker"]

#: The Redis server trials use.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

#: The RabbitMQ server trials use.
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

#: The brokers a run covers, in order.
BROKERS = ("redis", "rabbitmq")


@dataclass
class TrialBroker:
    """A broker and the unique queue a trial uses on it.

    Parameters:
      kind(str): ``"redis"`` or ``"rabbitmq"``.
      broker(dramatiq.Broker): The broker, with only Dramatiq's default middleware.
      queue_name(str): The queue the trial's actor sends to; unique to this trial.
    """

    kind: str
    broker: dramatiq.Broker
    queue_name: str

    def delete(self) -> None:
        """Delete every key or queue this trial created, then close the broker."""
        if self.kind == "redis":
            _delete_redis_namespace(self.broker)
        else:
            _delete_rabbitmq_queues(self.broker, self.queue_name)
        self.broker.close()


def open_broker(kind: str) -> TrialBroker:
    """A fresh broker of ``kind`` with a unique namespace (Redis) or queue name (RabbitMQ)."""
    token = uuid.uuid4().hex[:10]
    queue_name = f"tlbench_{token}"
    broker: dramatiq.Broker
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=REDIS_URL, namespace=f"tlbench-{token}")
    elif kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=RABBITMQ_URL)
    else:
        raise ValueError(f"unknown broker {kind!r}; expected one of {', '.join(BROKERS)}")
    return TrialBroker(kind=kind, broker=broker, queue_name=queue_name)


def _delete_redis_namespace(broker: dramatiq.Broker) -> None:
    client = broker.client  # type: ignore[attr-defined]
    pattern = f"{broker.namespace}:*"  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


def _delete_rabbitmq_queues(broker: dramatiq.Broker, queue_name: str) -> None:
    import pika

    for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
        try:
            broker.channel.queue_delete(name)  # type: ignore[attr-defined]
        except pika.exceptions.AMQPChannelError:
            del broker.channel  # type: ignore[attr-defined]
