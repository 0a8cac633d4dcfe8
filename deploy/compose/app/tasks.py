"""Example tasks for the Compose stack: ``dramatiq tasks`` works them, ``python tasks.py`` sends them.

Both read the broker from ``TASKLENS_BROKER_URL`` and the telemetry settings from ``OTEL_*``.
"""

from __future__ import annotations

import os
import random
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import tasklens

broker = RedisBroker(url=os.environ.get("TASKLENS_BROKER_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)
tasklens.setup()

#: Messages the producer sends each second.
RATE = 5


@dramatiq.actor(queue_name="emails", max_retries=2, min_backoff=200, max_backoff=1000)
def send_welcome_email(user_id: int) -> None:
    if random.random() < 0.1:
        raise ConnectionError("SMTP server busy")
    time.sleep(random.uniform(0.01, 0.05))


@dramatiq.actor(queue_name="payments", max_retries=0)
def charge_payment(order_id: int) -> None:
    if order_id % 17 == 0:
        raise ValueError(f"card declined for order {order_id}")
    time.sleep(random.uniform(0.05, 0.2))


def produce() -> None:
    order = 0
    while True:
        for _ in range(RATE):
            order += 1
            send_welcome_email.send(order)
            charge_payment.send(order)
        time.sleep(1)


if __name__ == "__main__":
    produce()
