"""The demo's Celery worker and traffic: a prefork ``celery worker`` (with beat) on Redis when it
answers, else a worker and beat in this process on kombu's in-memory transport."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import chain, chord

from tasklens.demo import celery_app
from tasklens.demo.broker import REDIS_HOST, REDIS_PORT

__all__ = ["CeleryDemo", "CeleryTraffic", "celery_key_prefix", "send_chord", "start_celery_demo"]

#: Pool processes of the prefork worker, and threads of the in-process one.
CONCURRENCY = 2
#: How long the worker may take to stop, in seconds.
STOP_TIMEOUT_S = 20.0
#: Seconds between two tasks the traffic sends.
TRAFFIC_INTERVAL_S = 0.7
#: The countdown of the digest task, in seconds.
DIGEST_COUNTDOWN_S = 2.0
#: Photos per album (the chord's parts).
ALBUM_SIZE = 3


@dataclass
class CeleryDemo:
    """The demo's running Celery worker.

    Parameters:
      description(str): For the terminal, e.g. "prefork worker on Redis (key prefix ...)".
      broker_url(str): Where the tasks go.
      key_prefix(str|None): The Redis key prefix of every key the demo's Celery makes.
    """

    description: str
    broker_url: str
    key_prefix: str | None
    stoppers: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.stoppers.clear()


def start_celery_demo(*, on_redis: bool, prefork: bool = True) -> CeleryDemo:
    """Start the demo's Celery worker (and beat) and point the demo app at its broker.

    Parameters:
      on_redis(bool): Use the local Redis (else the in-memory transport, in this process).
      prefork(bool): On Redis, run ``celery worker --pool prefork -B`` as a child process; else
        a threads worker in this process.
    """
    if on_redis:
        prefix = celery_key_prefix()
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    else:
        prefix, url = None, "memory://"
    app = celery_app.configure(url, prefix)
    if on_redis and prefork:
        demo = CeleryDemo(f"prefork worker on Redis (key prefix {prefix})", url, prefix)
        _start_prefork_worker(demo)
    else:
        where = "Redis" if on_redis else "the in-memory transport"
        demo = CeleryDemo(f"threads worker in this process on {where}", url, prefix)
        _start_worker_in_process(demo, app)
    if prefix:
        demo.stoppers.insert(0, lambda: _delete_prefixed(prefix))
    return demo


def celery_key_prefix() -> str:
    """The Redis key prefix of every key this process's Celery demo makes (the monitor reads it)."""
    return f"tasklens-demo-celery-{os.getpid()}:"


def _start_prefork_worker(demo: CeleryDemo) -> None:
    schedule = Path(tempfile.mkdtemp(prefix="tasklens-demo-beat-")) / "schedule"
    env = {
        **os.environ,
        celery_app.BROKER_ENV: demo.broker_url,
        celery_app.PREFIX_ENV: demo.key_prefix or "",
        celery_app.WORKER_ENV: "1",
        "OTEL_SERVICE_NAME": "demo-celery-worker",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            celery_app.__name__,
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--beat",
            "--schedule",
            str(schedule),
            "--queues",
            celery_app.CELERY_QUEUE,
            "--hostname",
            f"demo-{os.getpid()}@%h",
            "--loglevel",
            "ERROR",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: the children flush their spans
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(schedule.parent, ignore_errors=True)

    demo.stoppers.append(stop)


def _start_worker_in_process(demo: CeleryDemo, app: Any) -> None:
    from celery.beat import EmbeddedService
    from celery.contrib.testing.worker import start_worker

    stack = contextlib.ExitStack()
    stack.enter_context(
        start_worker(
            app,
            pool="threads",
            concurrency=CONCURRENCY,
            perform_ping_check=False,
            loglevel="ERROR",
            shutdown_timeout=STOP_TIMEOUT_S,
            queues=[celery_app.CELERY_QUEUE],
        )
    )
    demo.stoppers.append(stack.close)
    schedule = Path(tempfile.mkdtemp(prefix="tasklens-demo-beat-")) / "schedule"
    beat = EmbeddedService(app, thread=True, schedule_filename=str(schedule))
    beat.start()
    demo.stoppers.append(lambda: shutil.rmtree(schedule.parent, ignore_errors=True))
    demo.stoppers.append(beat.stop)


def _delete_prefixed(prefix: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def send_chord() -> Any:
    """Send the album chord: three thumbnails rendered at once, then the album published."""
    return chord(celery_app.render_thumbnail.s(photo) for photo in range(ALBUM_SIZE))(
        celery_app.publish_album.s()
    )


def _examples() -> Iterator[Callable[[int], object]]:
    def retrying(n: int) -> object:
        return celery_app.fetch_rates.delay("EUR")

    def countdown(n: int) -> object:
        return celery_app.send_digest.apply_async((n,), countdown=DIGEST_COUNTDOWN_S)

    def pipeline(n: int) -> object:
        return chain(
            celery_app.crawl_page.s(f"https://shop.example/page/{n}"),
            celery_app.parse_page.s(),
            celery_app.index_page.s(),
        ).delay()

    def album(n: int) -> object:
        return send_chord()

    def failing(n: int) -> object:
        return celery_app.import_legacy_feed.delay(f"legacy-{n % 3}")

    return itertools.cycle((retrying, countdown, pipeline, album, failing))


class CeleryTraffic:
    """Sends the demo's Celery tasks in turn until stopped (beat sends the periodic one).

    Parameters:
      interval(float): Seconds between two sends.
    """

    def __init__(self, interval: float = TRAFFIC_INTERVAL_S) -> None:
        self.interval = interval
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-celery-traffic", daemon=True)

    def start(self) -> CeleryTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        examples = _examples()
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a broker hiccup must not end the demo
                next(examples)(self.sent)
                self.sent += 1
            self._stop.wait(self.interval)
