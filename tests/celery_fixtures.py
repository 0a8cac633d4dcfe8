"""Real Celery apps and workers on the test Redis, with known contents (the Celery ground truth).

Every app gets a ``global_keyprefix`` of its own: all of kombu's keys, and the PUB/SUB channels
heartbeats travel on, live under it, so tests never see another test's (or engineer's) Celery.

``celery_redis_truth`` lays out, with a real worker (threads pool, one thread, prefetch 2):

- queue ``{name}.prio``, no worker: tasks at priorities 0, 3 and 9 (2, 1 and 3 of them), stamped
  with ``tasklens_published_at`` one minute in the past;
- queue ``{name}``: 2 countdown tasks (held by the worker, unacknowledged, ``eta`` in an hour),
  one task that blocks the only thread until the block ends, 2 tasks the worker prefetched
  (reserved, unacknowledged) and 2 left ready.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis

#: How long a worker may take to start heart-beating or to reach a state, in seconds.
DEADLINE = 45.0
#: The heartbeat interval test workers use, in whole seconds (Celery's default is 2).
HEARTBEAT = 1
#: How far ahead countdown tasks are due, in seconds.
COUNTDOWN = 3600
#: kombu's separator between a queue and its priority step.
SEP = "\x06\x16"

APP_TEMPLATE = """
import time
import redis
from celery import Celery

app = Celery({name!r}, broker={url!r})
app.conf.broker_transport_options = {options!r}
app.conf.task_default_queue = {queue!r}
app.conf.worker_prefetch_multiplier = 2
app.conf.worker_hijack_root_logger = False
{extra}

@app.task(name="hold")
def hold(release_key):
    client = redis.Redis.from_url({redis_url!r})
    client.set(release_key + ".started", 1)
    deadline = time.monotonic() + 120
    while not client.exists(release_key) and time.monotonic() < deadline:
        time.sleep(0.05)


@app.task(name="quick")
def quick(number):
    return number
"""


@dataclass(frozen=True)
class CeleryApp:
    """A Celery app module written for a test.

    Parameters:
      module(str): Its import name (its folder is on ``sys.path`` and in ``directory``).
      directory(Path): Where the module file is.
      url(str): Its broker URL.
      prefix(str): Its ``global_keyprefix`` ("" on RabbitMQ).
      queue(str): Its default queue.
    """

    module: str
    directory: Path
    url: str
    prefix: str
    queue: str

    def load(self) -> Any:
        """The app object, imported in this process."""
        if str(self.directory) not in sys.path:
            sys.path.insert(0, str(self.directory))
        __import__(self.module)
        return sys.modules[self.module].app


def write_app(directory: Path, name: str, url: str, redis_url: str, *, extra: str = "") -> CeleryApp:
    """Write module ``{name}_app`` holding ``app`` for ``url``, key prefix ``{name}:`` on Redis."""
    prefix = f"{name}:" if url.startswith("redis") else ""
    options: dict[str, Any] = {"global_keyprefix": prefix} if prefix else {"confirm_publish": True}
    module = f"{name}_app"
    source = APP_TEMPLATE.format(
        name=name, url=url, options=options, queue=name, redis_url=redis_url, extra=textwrap.dedent(extra)
    )
    (directory / f"{module}.py").write_text(source)
    return CeleryApp(module=module, directory=directory, url=url, prefix=prefix, queue=name)


@contextmanager
def celery_worker(app: CeleryApp, hostname: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``celery worker`` process (threads pool, one thread) named ``hostname``; stopped after."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app.module,
            "worker",
            "-n",
            hostname,
            "--pool",
            "threads",
            "--concurrency",
            "1",
            "--heartbeat-interval",
            str(HEARTBEAT),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
            *args,
        ],
        cwd=app.directory,
        env={**os.environ, "PYTHONPATH": str(app.directory)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def delete_prefixed(redis_url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (the app's own)."""
    assert prefix, "refusing to delete without a prefix"
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])
    client.close()


def wait_for(condition: Any, what: str, *, timeout: float = DEADLINE) -> Any:
    """Poll ``condition()`` until it returns something true; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.1)


# -- What Redis holds, read independently of tasklens ----------------------------------------------


def step_lengths(
    client: redis.Redis, prefix: str, queue: str, steps: tuple[int, ...] = (0, 3, 6, 9)
) -> dict[int, int]:
    return {step: int(client.llen(f"{prefix}{queue}" + (f"{SEP}{step}" if step else ""))) for step in steps}


def unacked_split(client: redis.Redis, prefix: str) -> dict[str, dict[str, int]]:
    """Queue (the entry's routing key) -> {"eta": n, "reserved": n} from the ``unacked`` hash."""
    split: dict[str, dict[str, int]] = {}
    now = datetime.now(timezone.utc)
    for entry in client.hvals(f"{prefix}unacked"):
        message, _exchange, routing_key = json.loads(entry)
        eta = message["headers"].get("eta")
        due_later = eta is not None and datetime.fromisoformat(eta) > now
        counts = split.setdefault(routing_key, {"eta": 0, "reserved": 0})
        counts["eta" if due_later else "reserved"] += 1
    return split


@dataclass(frozen=True)
class CeleryRedisTruth:
    """The Celery layout ``celery_redis_truth`` made, and where.

    Parameters:
      app(CeleryApp): The app (its queue is the one the worker holds).
      prio_queue(str): The queue no worker consumes, with tasks in priority steps.
      hostname(str): The worker's node name.
      redis_url(str): The Redis the keys are in.
    """

    app: CeleryApp
    prio_queue: str
    hostname: str
    redis_url: str

    @property
    def transport_option(self) -> str:
        return f"global_keyprefix={self.app.prefix}"

    def read(self) -> dict[str, Any]:
        """What the broker holds now: per queue, the steps, ready, delayed (eta) and reserved."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            split = unacked_split(client, self.app.prefix)
            truth = {}
            for queue in (self.app.queue, self.prio_queue):
                steps = step_lengths(client, self.app.prefix, queue)
                counts = split.get(queue, {"eta": 0, "reserved": 0})
                truth[queue] = {
                    "priorities": steps,
                    "ready": sum(steps.values()),
                    "delayed": counts["eta"],
                    "in_flight": counts["reserved"],
                }
            return truth
        finally:
            client.close()


#: The priority steps given tasks on the unconsumed queue, and how many.
PRIORITY_TASKS = {0: 2, 3: 1, 9: 3}


@contextmanager
def celery_redis_truth(redis_url: str, name: str, directory: Path) -> Iterator[CeleryRedisTruth]:
    """Lay out the queues described in this module's docstring; every key is deleted after."""
    app_files = write_app(directory, name, redis_url, redis_url)
    app = app_files.load()
    prio_queue = f"{name}.prio"
    release = f"{name}.release"
    hostname = f"a@{name}"
    client = redis.Redis.from_url(redis_url)
    try:
        published = int(time.time() * 1000) - 60_000
        for priority, count in PRIORITY_TASKS.items():
            for number in range(count):
                app.send_task(
                    "quick",
                    (number,),
                    queue=prio_queue,
                    priority=priority,
                    headers={"tasklens_published_at": published},
                )
        with celery_worker(app_files, hostname, "-Q", app_files.queue) as worker:
            for number in range(2):
                app.send_task("quick", (number,), countdown=COUNTDOWN)
            app.send_task("hold", (release,))
            for number in range(4):
                app.send_task("quick", (number,))
            truth = CeleryRedisTruth(
                app=app_files, prio_queue=prio_queue, hostname=hostname, redis_url=redis_url
            )
            wait_for(
                lambda: client.exists(f"{release}.started"),
                f"the worker started the blocking task (worker exit: {worker.poll()})",
            )
            expected = {"ready": 2, "delayed": 2, "in_flight": 2}
            wait_for(
                lambda: {k: truth.read()[app_files.queue][k] for k in expected} == expected,
                f"the worker holding {expected} (worker exit: {worker.poll()})",
            )
            try:
                yield truth
            finally:
                client.set(release, 1)
    finally:
        client.delete(release, f"{release}.started")
        client.close()
        app.close()
        delete_prefixed(redis_url, app_files.prefix)
