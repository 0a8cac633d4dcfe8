"""What one ``actor.send()`` costs on each broker, with tasklens's send path taken apart.

``python -m benchmarks.send_path`` runs one producer thread per set-up and broker: ``warmup``
sends, then ``sends`` timed ones, best of ``repeats``, and prints wall and thread CPU µs per send.
The set-ups isolate the parts of tasklens's send path, all with the API's no-op providers:

- ``uninstrumented``: Dramatiq's default middleware only;
- ``options only``: a middleware that adds the two options tasklens adds (``otel_context`` as a
  W3C carrier, ``otel_ready_at``): the cost of a larger message through ``Message.encode`` and the
  broker client, with none of tasklens's code;
- ``enqueue wrapper only``: tasklens's ``broker.enqueue`` guard and nothing else;
- ``tasklens, no-op API``: ``OpenTelemetryMiddleware`` with the no-op tracer and meter (the
  no-op span has no context, so only ``otel_ready_at`` is added);
- ``tasklens, no-op API + carrier``: the same, plus the ``otel_context`` carrier an SDK span
  would make, to separate the carrier's bytes from the hooks.

Each set-up runs in a process of its own so that no broker patch leaks into the next.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.runner import PROJECT_ROOT

__all__ = ["main", "measure"]

#: The set-ups compared, in order.
SETUPS = (
    "uninstrumented",
    "options only",
    "enqueue wrapper only",
    "tasklens, no-op API",
    "tasklens, no-op API + carrier",
)

#: A carrier of the size an SDK span's context makes.
CARRIER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def _broker(kind: str) -> Any:
    from benchmarks.brokers import open_broker

    if kind == "stub":
        from dramatiq.brokers.stub import StubBroker

        return StubBroker(), "tlbench_stub", None
    trial = open_broker(kind)
    return trial.broker, trial.queue_name, trial


def measure(kind: str, setup: str, sends: int, warmup: int, repeats: int) -> dict[str, float]:
    """Best wall and thread-CPU µs per send for ``setup`` on broker ``kind``."""
    import dramatiq
    from opentelemetry import metrics, trace

    from tasklens import semconv
    from tasklens.dramatiq import OpenTelemetryMiddleware

    broker, queue_name, trial = _broker(kind)

    class AddOptions(dramatiq.Middleware):
        def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
            message.options[semconv.CONTEXT_OPTION] = dict(CARRIER)
            message.options[semconv.READY_AT_OPTION] = int(time.time() * 1000)

    class AddCarrier(dramatiq.Middleware):
        def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
            message.options[semconv.CONTEXT_OPTION] = dict(CARRIER)

    middleware = OpenTelemetryMiddleware(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    if setup == "options only":
        broker.add_middleware(AddOptions())
    elif setup == "enqueue wrapper only":
        middleware.bind(broker)
    elif setup.startswith("tasklens"):
        broker.add_middleware(middleware)
        if setup.endswith("+ carrier"):
            broker.add_middleware(AddCarrier())
    actor = dramatiq.actor(lambda: None, broker=broker, queue_name=queue_name, actor_name="noop")
    try:
        for _ in range(warmup):
            actor.send()
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(sends):
                actor.send()
            walls.append((time.perf_counter() - wall) / sends * 1e6)
            cpus.append((time.thread_time() - cpu) / sends * 1e6)
    finally:
        if trial is not None:
            trial.delete()
        else:
            broker.close()
    return {"wall": min(walls), "cpu": min(cpus)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.send_path", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--brokers", default="stub,redis,rabbitmq")
    parser.add_argument("--sends", type=int, default=3_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is printed")
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help=f"comma-separated, from: {'; '.join(SETUPS)}"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.one:
        kind, setup = json.loads(arguments.one)
        result = measure(kind, setup, arguments.sends, arguments.warmup, arguments.repeats)
        print(json.dumps(result), flush=True)
        return 0
    brokers = [b for b in arguments.brokers.split(",") if b]
    setups = [name for name in SETUPS if name in {part.strip() for part in arguments.setups.split(";")}]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(arguments.rounds):
        for kind in brokers:
            for setup in setups:
                command = [
                    sys.executable, "-m", "benchmarks.send_path", "--one", json.dumps([kind, setup]),
                    "--sends", str(arguments.sends), "--warmup", str(arguments.warmup),
                    "--repeats", str(arguments.repeats),
                ]  # fmt: skip
                completed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
                if completed.returncode != 0:
                    print(f"{kind} {setup}: {completed.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                results.setdefault((kind, setup), []).append(json.loads(completed.stdout.splitlines()[-1]))
    print(
        f"µs per send, one producer thread, {arguments.sends:,} sends after {arguments.warmup} warm-up, "
        f"best of {arguments.repeats}, median of {arguments.rounds} rounds (wall / thread CPU)"
    )
    print(f"{'set-up':<32}" + "".join(f"{kind:>18}" for kind in brokers))
    for setup in setups:
        cells = []
        for kind in brokers:
            samples = results.get((kind, setup))
            if not samples:
                cells.append(f"{'-':>18}")
                continue
            wall = statistics.median(s["wall"] for s in samples)
            cpu = statistics.median(s["cpu"] for s in samples)
            cells.append(f"{f'{wall:.1f} / {cpu:.1f}':>18}")
        print(f"{setup:<32}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
