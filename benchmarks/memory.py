"""The memory check: does a long-running instrumented worker stay flat?

One process, on Redis, runs a ``dramatiq.Worker`` (8 threads) while its main thread sends
``messages`` no-op messages in chunks of ``every``; after each chunk is processed it collects
garbage and samples the resident set size and the number of live SDK span objects and Dramatiq
messages. Growth is reported from the first sample (after the first chunk, once caches and pools
are warm) to the last. Run on its own: ``python -m benchmarks.memory '<json spec>'``; the runner
starts it as ``python -m benchmarks`` does.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MemorySpec", "measure_memory", "summarize_memory"]

#: How long one chunk may take to be processed, in seconds.
CHUNK_TIMEOUT = 300.0


@dataclass
class MemorySpec:
    """What the memory check runs.

    Parameters:
      variant(str): The variant the worker runs with (tasklens, traces and metrics, by default).
      messages(int): Messages in total.
      every(int): Messages per chunk; one sample per chunk.
      threads(int): Worker threads.
      sink(str): The OTLP sink's base URL.
      unreachable(str): A base URL that refuses connections.
      broker(str): ``redis`` or ``rabbitmq``.
    """

    variant: str
    messages: int
    every: int
    threads: int
    sink: str
    unreachable: str
    broker: str = "redis"


def _live_objects() -> dict[str, int]:
    counts = {"live_spans": 0, "live_messages": 0}
    for obj in gc.get_objects():
        module = type(obj).__module__
        if module == "opentelemetry.sdk.trace":
            counts["live_spans"] += type(obj).__name__ in ("Span", "ReadableSpan")
        elif module == "dramatiq.message" or module == "dramatiq.broker":
            counts["live_messages"] += type(obj).__name__ in ("Message", "MessageProxy")
    return counts


def measure_memory(spec: MemorySpec) -> dict[str, Any]:
    """Run the check in this process; return its samples."""
    import dramatiq
    import psutil
    from dramatiq import Worker

    from benchmarks.brokers import open_broker
    from benchmarks.variants import Endpoints, get_variant

    variant = get_variant(spec.variant)
    variant.prepare(Endpoints(sink=spec.sink, unreachable=spec.unreachable))
    trial_broker = open_broker(spec.broker)
    broker = trial_broker.broker
    dramatiq.set_broker(broker)
    variant.attach(broker)
    counter = itertools.count(1)
    progress = {"done": 0}
    reached = threading.Condition()

    def noop() -> None:
        done = next(counter)
        if done % spec.every == 0:
            with reached:
                progress["done"] = done
                reached.notify_all()

    actor = dramatiq.actor(noop, broker=broker, queue_name=trial_broker.queue_name, actor_name="noop")
    variant.boot(broker)
    process = psutil.Process()
    samples: list[dict[str, Any]] = []
    worker = Worker(broker, worker_threads=spec.threads)
    worker.start()
    started = time.perf_counter()
    try:
        for sent in range(spec.every, spec.messages + 1, spec.every):
            for _ in range(spec.every):
                actor.send()
            with reached:
                if not reached.wait_for(lambda sent=sent: progress["done"] >= sent, CHUNK_TIMEOUT):
                    raise RuntimeError(f"chunk ending at {sent} not processed in {CHUNK_TIMEOUT:.0f} s")
            gc.collect()
            samples.append(
                {
                    "messages": sent,
                    "seconds": round(time.perf_counter() - started, 2),
                    "rss_mib": process.memory_info().rss / 2**20,
                    **_live_objects(),
                }
            )
    finally:
        worker.stop()
        trial_broker.delete()
        variant.close()
    return {"spec": asdict(spec), "samples": samples}


def summarize_memory(result: dict[str, Any]) -> dict[str, Any]:
    """Add the RSS growth from the first sample to the last, total and per 10,000 messages."""
    samples = result["samples"]
    first, last = samples[0], samples[-1]
    growth = last["rss_mib"] - first["rss_mib"]
    span = max(last["messages"] - first["messages"], 1)
    return {
        **result,
        "rss_growth_mib": growth,
        "rss_growth_mib_per_10k": growth / span * 10_000,
        "max_live_spans": max(s["live_spans"] for s in samples),
        "max_live_messages": max(s["live_messages"] for s in samples),
    }


def format_memory(result: dict[str, Any]) -> str:
    """The samples as a small text table, and the growth."""
    lines = ["messages   seconds   RSS MiB   live spans   live messages"]
    for s in result["samples"]:
        lines.append(
            f"{s['messages']:>8,}   {s['seconds']:>7.1f}   {s['rss_mib']:>7.1f}   "
            f"{s['live_spans']:>10}   {s['live_messages']:>13}"
        )
    first, last = result["samples"][0]["messages"], result["samples"][-1]["messages"]
    lines.append(
        f"RSS growth from {first:,} to {last:,} messages: {result['rss_growth_mib']:+.1f} MiB "
        f"({result['rss_growth_mib_per_10k']:+.2f} MiB per 10k)"
    )
    return "\n".join(lines)


def main() -> None:
    spec = MemorySpec(**json.loads(sys.argv[1]))
    print(json.dumps(measure_memory(spec)), flush=True)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
