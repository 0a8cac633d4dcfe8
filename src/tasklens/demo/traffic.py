"""The demo's traffic: a thread that calls the shop's endpoints the way users would."""

from __future__ import annotations

import itertools
import random
import threading

import httpx

__all__ = ["TrafficGenerator"]

#: Requests per second, on average.
DEFAULT_RATE = 4.0

#: Each endpoint with how often it is called (weights) and the query it gets.
ENDPOINTS: tuple[tuple[str, int], ...] = (
    ("/signup", 3),
    ("/checkout", 5),
    ("/reports", 1),
    ("/etl", 2),
    ("/albums", 1),
    ("/reminders", 2),
    ("/inventory/sync", 1),
)


class TrafficGenerator:
    """Posts to the shop's endpoints at about ``rate`` requests a second until stopped.

    The first round calls every endpoint once, so every kind of work shows up at once.

    Parameters:
      base_url(str): The shop's URL.
      rate(float): Requests per second, on average.
    """

    def __init__(self, base_url: str, *, rate: float = DEFAULT_RATE) -> None:
        self.base_url = base_url
        self.rate = rate
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._ids = itertools.count(1)

    def start(self) -> TrafficGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _params(self, path: str) -> dict[str, str | int]:
        n = next(self._ids)
        params: dict[str, dict[str, str | int]] = {
            "/signup": {"email": f"user{n}@example.com"},
            "/checkout": {"order_id": n},
            "/reports": {"report_id": n},
            "/etl": {"batch": n},
            "/albums": {"album_id": n, "images": random.randint(3, 6)},
            "/reminders": {"email": f"user{n}@example.com", "delay_ms": random.randint(2_000, 8_000)},
            "/inventory/sync": {"sku": f"SKU-{n % 50}"},
        }
        return params[path]

    def _run(self) -> None:
        paths = [path for path, _ in ENDPOINTS]
        weights = [weight for _, weight in ENDPOINTS]
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            for path in itertools.chain(paths, iter(lambda: random.choices(paths, weights)[0], None)):
                if self._stop.is_set():
                    return
                try:
                    client.post(path, params=self._params(path)).raise_for_status()
                    self.sent += 1
                except httpx.HTTPError:
                    self.failed += 1
                self._stop.wait(random.expovariate(self.rate))
