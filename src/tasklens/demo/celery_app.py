"""The demo's Celery app: one example task of each kind a Celery user runs.

- ``celery_demo.fetch_rates`` retries: its first two attempts fail with ``ConnectionError``;
- ``celery_demo.send_digest`` is sent with a countdown;
- ``celery_demo.crawl_page`` → ``parse_page`` → ``index_page`` is a chain;
- three ``celery_demo.render_thumbnail`` → ``publish_album`` is a chord;
- ``celery_demo.purge_sessions`` is a periodic task, sent by beat;
- ``celery_demo.import_legacy_feed`` fails for good (no retry).

The app reads its broker from ``TASKLENS_DEMO_CELERY_BROKER`` (``memory://`` when unset: an
in-process transport) and its Redis key prefix from ``TASKLENS_DEMO_CELERY_PREFIX``, so that a
``celery worker`` process started by the demo (prefork, on Redis) builds the same app. With
``TASKLENS_DEMO_CELERY_WORKER`` set, importing it also calls ``tasklens.setup()``, as a user's
worker module does.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

from celery import Celery

import tasklens

__all__ = [
    "BEAT_INTERVAL_S",
    "BROKER_ENV",
    "CELERY_QUEUE",
    "PREFIX_ENV",
    "WORKER_ENV",
    "app",
    "configure",
]

#: Environment variables the demo passes to the worker process it starts.
BROKER_ENV = "TASKLENS_DEMO_CELERY_BROKER"
PREFIX_ENV = "TASKLENS_DEMO_CELERY_PREFIX"
WORKER_ENV = "TASKLENS_DEMO_CELERY_WORKER"
#: The queue every demo task goes to.
CELERY_QUEUE = "demo-celery"
#: How often beat sends the periodic task, in seconds.
BEAT_INTERVAL_S = 10.0
#: Attempts of the retrying task that fail before one succeeds.
FAILING_ATTEMPTS = 2
#: Seconds between its attempts.
RETRY_DELAY_S = 0.5
#: The in-process result backend (the chord's callback waits on its parts' results).
MEMORY_BACKEND = "cache+memory://"

logger = logging.getLogger("tasklens.demo.celery")

app = Celery("tasklens-demo")


def configure(broker_url: str, key_prefix: str | None = None) -> Celery:
    """Point the demo app at ``broker_url``; on Redis, every key under ``key_prefix``.

    Parameters:
      broker_url(str): ``redis://...`` or ``memory://``.
      key_prefix(str|None): kombu's ``global_keyprefix`` (broker and results), on Redis.
    """
    on_redis = broker_url.startswith("redis")
    options = {"global_keyprefix": key_prefix} if on_redis and key_prefix else {}
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=options,
        result_backend=broker_url if on_redis else MEMORY_BACKEND,
        result_backend_transport_options=options,
        result_expires=600,
        task_default_queue=CELERY_QUEUE,
        task_track_started=False,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,
        beat_schedule={
            "purge-sessions": {"task": "celery_demo.purge_sessions", "schedule": BEAT_INTERVAL_S},
        },
    )
    return app


configure(os.environ.get(BROKER_ENV, "memory://"), os.environ.get(PREFIX_ENV))
if os.environ.get(WORKER_ENV):
    tasklens.setup()


@app.task(name="celery_demo.fetch_rates", bind=True, max_retries=FAILING_ATTEMPTS + 1)
def fetch_rates(self: Any, currency: str) -> float:
    if self.request.retries < FAILING_ATTEMPTS:
        raise self.retry(exc=ConnectionError("rates service unavailable"), countdown=RETRY_DELAY_S)
    return round(1 + random.random() / 10, 4)


@app.task(name="celery_demo.send_digest")
def send_digest(user_id: int) -> str:
    logger.info("Digest sent to user %s.", user_id)
    return f"digest-{user_id}"


@app.task(name="celery_demo.crawl_page")
def crawl_page(url: str) -> str:
    time.sleep(random.uniform(0.01, 0.05))
    return f"<html>{url}</html>"


@app.task(name="celery_demo.parse_page")
def parse_page(html: str) -> list[str]:
    return html.strip("<>").split("/")


@app.task(name="celery_demo.index_page")
def index_page(words: list[str]) -> int:
    return len(words)


@app.task(name="celery_demo.render_thumbnail")
def render_thumbnail(photo_id: int) -> str:
    time.sleep(random.uniform(0.01, 0.05))
    return f"thumb-{photo_id}.jpg"


@app.task(name="celery_demo.publish_album")
def publish_album(thumbnails: list[str]) -> int:
    logger.info("Album published with %d thumbnails.", len(thumbnails))
    return len(thumbnails)


@app.task(name="celery_demo.purge_sessions")
def purge_sessions() -> int:
    return random.randint(0, 20)


@app.task(name="celery_demo.import_legacy_feed")
def import_legacy_feed(feed: str) -> None:
    raise ValueError(f"feed {feed!r} is not valid XML")
