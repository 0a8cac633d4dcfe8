from __future__ import annotations

import dramatiq


@dramatiq.actor(queue_name="orders")
def place_order(order_id: int) -> None:
    pass
