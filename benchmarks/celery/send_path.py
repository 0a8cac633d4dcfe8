"""The producer's side alone: ``apply_async`` throughput and CPU per variant, without a worker.

``python -m benchmarks.celery.send_path --broker redis --rounds 4`` runs, per round, every
variant in a fresh process (``--one``) that instruments itself, sends 200 tasks, then times
``--tasks`` more (wall clock, process CPU, and the sending thread's own CPU), and deletes its
queue. No worker runs, so the machine has less to do and a round takes seconds: a quick check of
the enqueue columns of the full tables. Prints one line per trial and the median ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.celery.trial import DEFAULT_WARMUP
from benchmarks.celery.variants import BASELINE, DEFAULT_VARIANTS, get_variant
from benchmarks.runner import PROJECT_ROOT, trial_environment
from benchmarks.sink import SinkProcess
from benchmarks.variants import Endpoints

__all__ = ["main", "send"]


def send(variant: str, broker: str, tasks: int, sink: str) -> dict[str, float]:
    """In this process: instrument as ``variant`` says, send, and return what the timed part cost."""
    from benchmarks.celery.apps import NOOP_TASK, delete_queue, make_app, unique_queue_name

    get_variant(variant).instrument_producer(Endpoints(sink=sink, unreachable=sink))
    queue = unique_queue_name()
    app = make_app(broker, queue, on_run=lambda: None)
    task = app.tasks[NOOP_TASK]
    try:
        for _ in range(DEFAULT_WARMUP):
            task.apply_async()
        wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
        for _ in range(tasks):
            task.apply_async()
        wall, cpu, thread = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            time.thread_time() - thread,
        )
    finally:
        delete_queue(app, broker, queue)
    return {"rate": tasks / wall, "cpu_us": cpu / tasks * 1e6, "thread_cpu_us": thread / tasks * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.celery.send_path", description=__doc__)
    parser.add_argument("--broker", default="redis")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--one", metavar="SINK", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    variants = [BASELINE, *(v for v in arguments.variants.split(",") if v and v != BASELINE)]
    if arguments.one:
        print(json.dumps(send(variants[-1], arguments.broker, arguments.tasks, arguments.one)), flush=True)
        os._exit(0)

    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=sink.endpoint)
        for round_index in range(1, arguments.rounds + 1):
            for name in variants:
                env = trial_environment(get_variant(name).environment(endpoints))
                command = [
                    sys.executable, "-m", "benchmarks.celery.send_path", "--broker", arguments.broker,
                    "--tasks", str(arguments.tasks), "--variants", name, "--one", sink.endpoint,
                ]  # fmt: skip
                completed = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
                if completed.returncode != 0:
                    print(f"{name} FAILED: {completed.stderr.strip()[-500:]}", file=sys.stderr)
                    return 1
                result = json.loads(completed.stdout.strip().splitlines()[-1])
                results[name].append(result)
                print(
                    f"round {round_index} {arguments.broker} {name:<19} {result['rate']:>7,.0f}/s  "
                    f"CPU {result['cpu_us']:>6,.0f} µs/task (sending thread {result['thread_cpu_us']:,.0f})",
                    flush=True,
                )
    baseline = results[BASELINE]
    print(f"\nmedian ratios to {BASELINE} (rate / CPU per task), {arguments.rounds} rounds:")
    for name in variants[1:]:
        pairs = list(zip(results[name], baseline, strict=True))
        rate = statistics.median(r["rate"] / b["rate"] for r, b in pairs)
        cpu = statistics.median(r["cpu_us"] / b["cpu_us"] for r, b in pairs)
        print(f"  {name:<19} {rate:.2f} / {cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
