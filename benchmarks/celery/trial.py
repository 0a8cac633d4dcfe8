"""One Celery trial: one variant, one broker, one pool, in a process of its own.

The runner starts ``python -m benchmarks.celery.trial '<json spec>'`` with the variant's
environment. The trial instruments itself as the variant says, then:

1. enqueue: one producer thread calls ``apply_async()`` ``warmup`` times, then ``tasks`` times;
   the second batch is timed (wall clock and the process's CPU, export threads included);
2. the SDK providers, if any, are flushed outside the timed windows;
3. process: a real ``celery worker`` process (``-P <pool> -c <concurrency>``, with the same
   environment, instrumented by :mod:`benchmarks.celery.worker_app`) drains the queue. The
   window runs from the end of the ``warmup``-th task run to the end of the last, stamped by the
   tasks themselves; its CPU is that of the worker's whole process tree;
4. the worker gets ``SIGTERM`` (a warm shutdown, which flushes its telemetry) and is timed.

The result is printed as one JSON line on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CeleryTrialResult", "CeleryTrialSpec", "run_trial"]

#: Tasks sent and run before the timed windows open.
DEFAULT_WARMUP = 200

#: How long the worker may take to run every task, in seconds.
PROCESS_TIMEOUT = 600.0

#: How long a warm shutdown may take before the worker is killed, in seconds.
SHUTDOWN_TIMEOUT = 60.0

#: How often the trial looks for the worker's window file, in seconds.
POLL_INTERVAL = 0.05

#: How long to wait for exporters to drain between and after phases, in milliseconds.
FLUSH_TIMEOUT_MS = 5000


@dataclass
class CeleryTrialSpec:
    """What a Celery trial runs.

    Parameters:
      broker(str): ``redis`` or ``rabbitmq``.
      pool(str): ``prefork`` or ``threads``.
      variant(str): A name from :data:`benchmarks.celery.variants.VARIANTS`.
      tasks(int): Tasks in each timed window.
      sink(str): The OTLP sink's base URL.
      unreachable(str): A base URL that refuses connections.
      warmup(int): Tasks sent and run before the timed windows.
    """

    broker: str
    pool: str
    variant: str
    tasks: int
    sink: str
    unreachable: str
    warmup: int = DEFAULT_WARMUP


@dataclass
class CeleryTrialResult:
    """What a Celery trial measured.

    Parameters:
      enqueue_rate(float): Tasks per second sent by the producer.
      process_rate(float): Tasks per second run by the worker.
      enqueue_cpu_per_1k(float): Producer process CPU seconds per 1000 tasks sent.
      process_cpu_per_1k(float): Worker process tree CPU seconds per 1000 tasks run.
      worker_rss_mib(float): Resident set size of the worker's processes at the window's end.
      shutdown_seconds(float): How long the worker's warm shutdown took.
    """

    broker: str
    pool: str
    variant: str
    tasks: int
    enqueue_rate: float
    process_rate: float
    enqueue_cpu_per_1k: float
    process_cpu_per_1k: float
    worker_rss_mib: float
    shutdown_seconds: float


def _wait_for_window(worker: subprocess.Popen[bytes], path: Path) -> dict[str, float]:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not path.exists():
        if worker.poll() is not None:
            raise RuntimeError(f"the celery worker exited with {worker.returncode} before the last task")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker ran fewer tasks than were sent in {PROCESS_TIMEOUT:.0f} s")
        time.sleep(POLL_INTERVAL)
    window: dict[str, float] = json.loads(path.read_text())
    return window


def _stop(worker: subprocess.Popen[bytes]) -> float:
    """Warm-shut the worker down; kill its process group if that takes too long."""
    started = time.perf_counter()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        raise RuntimeError(f"the worker's warm shutdown took over {SHUTDOWN_TIMEOUT:.0f} s") from None
    return time.perf_counter() - started


def run_trial(spec: CeleryTrialSpec) -> CeleryTrialResult:
    """Run one trial from this process and return what it measured."""
    from benchmarks.celery.apps import NOOP_TASK, delete_queue, make_app, unique_queue_name
    from benchmarks.celery.variants import get_variant
    from benchmarks.celery.worker import WorkerSettings, worker_command
    from benchmarks.sdk import flush_global_providers
    from benchmarks.variants import Endpoints

    variant = get_variant(spec.variant)
    variant.instrument_producer(Endpoints(sink=spec.sink, unreachable=spec.unreachable))
    queue = unique_queue_name()
    app = make_app(spec.broker, queue, on_run=lambda: None)
    task = app.tasks[NOOP_TASK]
    total = spec.warmup + spec.tasks
    scratch = tempfile.TemporaryDirectory(prefix="tlbench-celery-")
    worker: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(spec.warmup):
            task.apply_async()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(spec.tasks):
            task.apply_async()
        enqueue_wall, enqueue_cpu = time.perf_counter() - wall, time.process_time() - cpu
        flush_global_providers(FLUSH_TIMEOUT_MS)

        settings = WorkerSettings(
            broker=spec.broker,
            queue=queue,
            variant=spec.variant,
            pool=spec.pool,
            sink=spec.sink,
            unreachable=spec.unreachable,
            start_at=spec.warmup - 1,
            end_at=total - 1,
            marks=str(Path(scratch.name) / "window.json"),
        )
        worker = subprocess.Popen(
            worker_command(settings),
            env={**os.environ, **settings.environment()},
            stdin=subprocess.DEVNULL,
            # The trial's stdout carries its result line only.
            stdout=sys.stderr.fileno(),
            start_new_session=True,
        )
        window = _wait_for_window(worker, Path(settings.marks))
        shutdown_seconds = _stop(worker)
        flush_global_providers(FLUSH_TIMEOUT_MS)
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        delete_queue(app, spec.broker, queue)
        scratch.cleanup()

    return CeleryTrialResult(
        broker=spec.broker,
        pool=spec.pool,
        variant=spec.variant,
        tasks=spec.tasks,
        enqueue_rate=spec.tasks / enqueue_wall,
        process_rate=spec.tasks / window["wall"],
        enqueue_cpu_per_1k=enqueue_cpu / spec.tasks * 1000,
        process_cpu_per_1k=window["cpu"] / spec.tasks * 1000,
        worker_rss_mib=window["rss_mib"],
        shutdown_seconds=shutdown_seconds,
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    spec = CeleryTrialSpec(**json.loads(sys.argv[1]))
    result = run_trial(spec)
    print(json.dumps(asdict(result)), flush=True)
    # Skip interpreter shutdown, as the Dramatiq trial does: nothing is left to export.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
