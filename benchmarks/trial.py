"""One trial: one variant on one broker, in a process of its own.

The runner starts ``python -m benchmarks.trial '<json spec>'`` with the variant's environment.
The trial instruments Dramatiq as the variant says, then:

1. enqueue: one producer thread sends ``warmup`` then ``messages`` no-op messages; the second
   batch is timed (wall clock and process CPU);
2. process: a ``dramatiq.Worker`` with ``threads`` threads drains them; the window runs from the
   end of the ``warmup``-th message to the end of the last one, so connection set-up, first
   imports and prefetch ramp-up stay outside it.

Between and after the two phases the SDK providers, if any, are flushed outside the timed
windows (not when the variant's endpoint is unreachable: the stock SDK's ``force_flush`` ignores
its timeout and retries every batch for the exporter's full timeout). The result is printed as
one JSON line on stdout.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass

__all__ = ["TrialResult", "TrialSpec", "run_trial"]

#: Messages sent and processed before the timed windows open.
DEFAULT_WARMUP = 200

#: How long the whole processing phase may take before the trial gives up, in seconds.
PROCESS_TIMEOUT = 600.0

#: How long to wait for exporters to drain between and after phases, in milliseconds.
FLUSH_TIMEOUT_MS = 5000


@dataclass
class TrialSpec:
    """What a trial runs.

    Parameters:
      broker(str): ``redis`` or ``rabbitmq``.
      variant(str): A name from :data:`benchmarks.variants.VARIANTS`.
      messages(int): Messages in each timed window.
      threads(int): Worker threads.
      sink(str): The OTLP sink's base URL.
      unreachable(str): A base URL that refuses connections.
      warmup(int): Messages sent and processed before the timed windows.
    """

    broker: str
    variant: str
    messages: int
    threads: int
    sink: str
    unreachable: str
    warmup: int = DEFAULT_WARMUP


@dataclass
class TrialResult:
    """What a trial measured.

    Parameters:
      enqueue_rate(float): Messages per second sent by the producer.
      process_rate(float): Messages per second processed by the worker.
      enqueue_cpu_per_1k(float): Process CPU seconds per 1000 messages sent.
      process_cpu_per_1k(float): Process CPU seconds per 1000 messages processed.
      peak_rss_mb(float): Peak resident set size of the trial process, in MiB.
      shutdown_seconds(float): How long ``Worker.stop()`` took (middleware flushes included).
      enqueue_thread_us(dict[str, float]): CPU µs per message sent, per thread role (``producer``,
        ``export``, ``other``) over the enqueue window.
      process_thread_us(dict[str, float]): CPU µs per message processed, per thread role
        (``workers``, ``consumers``, ``export``, ``other``) over the process window.
    """

    broker: str
    variant: str
    messages: int
    enqueue_rate: float
    process_rate: float
    enqueue_cpu_per_1k: float
    process_cpu_per_1k: float
    peak_rss_mb: float
    shutdown_seconds: float
    enqueue_thread_us: dict[str, float]
    process_thread_us: dict[str, float]


#: Name prefixes of the SDK's export threads (batch span/log processors, periodic metric reader).
EXPORT_THREAD_PREFIXES = ("Otel", "BatchSpan", "BatchLog", "PeriodicExporting")


def _thread_role(thread: threading.Thread) -> str:
    from dramatiq.worker import ConsumerThread, WorkerThread

    if thread is threading.main_thread():
        return "producer"
    if isinstance(thread, WorkerThread):
        return "workers"
    if isinstance(thread, ConsumerThread):
        return "consumers"
    if thread.name.startswith(EXPORT_THREAD_PREFIXES):
        return "export"
    return "other"


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every live thread, by thread id, with the thread's role."""
    times: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            times[thread.ident] = (_thread_role(thread), time.clock_gettime(clock))
        except (OSError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return times


def cpu_by_role(
    start: dict[int, tuple[str, float]], end: dict[int, tuple[str, float]], messages: int
) -> dict[str, float]:
    """CPU µs per message of each thread role between two :func:`thread_cpu` snapshots."""
    roles: dict[str, float] = {}
    for ident, (role, seconds) in end.items():
        before = start.get(ident, (role, 0.0))[1]
        roles[role] = roles.get(role, 0.0) + (seconds - before)
    return {role: round(seconds / messages * 1e6, 2) for role, seconds in sorted(roles.items())}


class _Marks:
    """Timestamps the actor records at the edges of the processing window."""

    def __init__(self, start_at: int, end_at: int) -> None:
        self.start_at = start_at
        self.end_at = end_at
        self.counter = itertools.count()
        self.start = (0.0, 0.0)
        self.end = (0.0, 0.0)
        self.start_threads: dict[int, tuple[str, float]] = {}
        self.end_threads: dict[int, tuple[str, float]] = {}
        self.done = threading.Event()

    def record(self) -> None:
        # itertools.count is atomic under the GIL, so the actor needs no lock of its own.
        index = next(self.counter)
        if index == self.start_at:
            self.start = (time.perf_counter(), time.process_time())
            self.start_threads = thread_cpu()
        elif index == self.end_at:
            self.end = (time.perf_counter(), time.process_time())
            self.end_threads = thread_cpu()
            self.done.set()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_trial(spec: TrialSpec) -> TrialResult:
    """Run one trial in this process and return what it measured."""
    import dramatiq
    from dramatiq import Worker

    from benchmarks.brokers import open_broker
    from benchmarks.sdk import flush_global_providers
    from benchmarks.variants import Endpoints, get_variant

    variant = get_variant(spec.variant)
    variant.prepare(Endpoints(sink=spec.sink, unreachable=spec.unreachable))
    trial_broker = open_broker(spec.broker)
    broker = trial_broker.broker
    dramatiq.set_broker(broker)
    variant.attach(broker)

    total = spec.warmup + spec.messages
    marks = _Marks(start_at=spec.warmup - 1, end_at=total - 1)

    def noop() -> None:
        marks.record()

    actor = dramatiq.actor(noop, broker=broker, queue_name=trial_broker.queue_name, actor_name="noop")
    variant.boot(broker)
    try:
        for _ in range(spec.warmup):
            actor.send()
        threads_before = thread_cpu()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(spec.messages):
            actor.send()
        enqueue_wall, enqueue_cpu = time.perf_counter() - wall, time.process_time() - cpu
        enqueue_threads = cpu_by_role(threads_before, thread_cpu(), spec.messages)
        if variant.exports_reach_sink:
            flush_global_providers(FLUSH_TIMEOUT_MS)

        worker = Worker(broker, worker_threads=spec.threads)
        worker.start()
        finished = marks.done.wait(PROCESS_TIMEOUT)
        stopping = time.perf_counter()
        worker.stop()
        shutdown_seconds = time.perf_counter() - stopping
        if not finished:
            raise RuntimeError(f"processed fewer than {total} messages in {PROCESS_TIMEOUT:.0f} s")
        if variant.exports_reach_sink:
            flush_global_providers(FLUSH_TIMEOUT_MS)
    finally:
        trial_broker.delete()
        variant.close()

    # The window spans messages warmup..total-1, i.e. `messages` completions after the start mark.
    process_wall = marks.end[0] - marks.start[0]
    process_cpu = marks.end[1] - marks.start[1]
    return TrialResult(
        broker=spec.broker,
        variant=spec.variant,
        messages=spec.messages,
        enqueue_rate=spec.messages / enqueue_wall,
        process_rate=spec.messages / process_wall,
        enqueue_cpu_per_1k=enqueue_cpu / spec.messages * 1000,
        process_cpu_per_1k=process_cpu / spec.messages * 1000,
        peak_rss_mb=_peak_rss_mb(),
        shutdown_seconds=shutdown_seconds,
        enqueue_thread_us=enqueue_threads,
        process_thread_us=cpu_by_role(marks.start_threads, marks.end_threads, spec.messages),
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    spec = TrialSpec(**json.loads(sys.argv[1]))
    result = run_trial(spec)
    print(json.dumps(asdict(result)), flush=True)
    # Skip interpreter shutdown: exporters aimed at a dead endpoint would retry for their timeout.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
