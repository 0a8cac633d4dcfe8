"""Where an instrumented Celery trial spends its time, per task, by owner of the code.

``python -m benchmarks.celery.profiling --broker redis --pool threads --variant tasklens`` runs
one trial under ``py-spy record --gil --subprocesses`` (the producer, the ``celery worker`` and
its pool processes; in each process only the thread holding its GIL is sampled, so a sample is a
slice of Python CPU time) and splits the samples:

- by path: the producer's ``apply_async`` (enqueue), the task's run in the worker, from
  ``trace_task`` down (process: signals, the task body, the instrumentation's receivers), the
  SDK's export threads (export), everything else (the worker's consumer loop, start-up, ...);
- by owner, from the innermost frame that belongs to a known package.

Each cell is microseconds per task: samples / rate / tasks (warm-up included, as the profile
covers the whole trial). The tasklens and contrib lines at the end are the hot spots, by
innermost function of that owner. The raw collapsed stacks are kept next to the summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

from benchmarks.celery.trial import DEFAULT_WARMUP, CeleryTrialSpec
from benchmarks.celery.variants import get_variant
from benchmarks.profiling import PROFILES, Frame, parse_collapsed
from benchmarks.runner import PROJECT_ROOT, closed_port_endpoint, trial_environment
from benchmarks.sink import SinkProcess
from benchmarks.variants import Endpoints

__all__ = ["attribute", "main"]

#: Owners, as (name, path fragments); the first match from the innermost frame outwards wins.
OWNERS = (
    ("tasklens", ("/src/tasklens/", "/site-packages/tasklens/")),
    ("contrib", ("/opentelemetry/instrumentation/celery/",)),
    (
        "exporter",
        (
            "/opentelemetry/exporter/",
            "/opentelemetry/proto/",
            "/google/protobuf/",
            "/requests/",
            "/urllib3/",
            "/http/client.py",
        ),
    ),
    ("otel api/sdk", ("/opentelemetry/",)),
    ("celery+client", ("/celery/", "/kombu/", "/billiard/", "/vine/", "/redis/", "/amqp/")),
    ("harness", ("/benchmarks/",)),
)

#: Paths, as (name, function names); a sample belongs to the first path with a frame in its stack
#: whose function ends with one of the names.
PATHS = (
    ("enqueue", ("Task.apply_async",)),
    ("process", ("trace_task",)),
    ("export", ("BatchProcessor.worker", "PeriodicExportingMetricReader._ticker", "BatchProcessor._export")),
)

#: Owners whose hot spots the summary lists.
HOT_OWNERS = ("tasklens", "contrib")


def _owner(stack: list[Frame]) -> str:
    for _, location in reversed(stack):
        for owner, fragments in OWNERS:
            if any(fragment in location for fragment in fragments):
                return owner
    return "other"


def _path(stack: list[Frame]) -> str:
    for path, names in PATHS:
        if any(function.endswith(names) for function, _ in stack):
            return path
    return "other"


def _short(location: str) -> str:
    return location.split("/src/", 1)[-1].split("/site-packages/", 1)[-1]


def attribute(stacks: list[tuple[list[Frame], int]]) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """Samples per path and owner; and per innermost function of each owner in :data:`HOT_OWNERS`."""
    owners: dict[str, Counter[str]] = defaultdict(Counter)
    hot: Counter[str] = Counter()
    for stack, count in stacks:
        path, owner = _path(stack), _owner(stack)
        owners[path][owner] += count
        if owner in HOT_OWNERS:
            fragments = dict(OWNERS)[owner]
            function, location = next(
                f for f in reversed(stack) if any(fragment in f[1] for fragment in fragments)
            )
            hot[f"{path:<8} {owner}: {function} ({_short(location).rpartition(':')[0]})"] += count
    return dict(owners), hot


def _format(profile: dict[str, Counter[str]], hot: Counter[str], *, rate: int, tasks: int, title: str) -> str:
    scale = 1e6 / rate / tasks  # samples -> microseconds per task
    columns = [name for name, _ in OWNERS] + ["other"]
    lines = [title, "", "µs per task (GIL-holding Python time, all processes) by path and owner", ""]
    lines.append(f"{'path':<8}" + "".join(f"{name:>15}" for name in columns) + f"{'total':>10}")
    for path in [name for name, _ in PATHS] + ["other"]:
        counts = profile.get(path, Counter())
        cells = "".join(f"{counts[name] * scale:>15.1f}" for name in columns)
        lines.append(f"{path:<8}{cells}{sum(counts.values()) * scale:>10.1f}")
    lines += ["", "Hot spots (innermost function of the owner), µs per task", ""]
    lines.extend(f"{count * scale:>7.2f}  {where}" for where, count in hot.most_common(20))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.celery.profiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--broker", default="redis")
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--variant", default="tasklens")
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--output", type=Path, default=PROFILES)
    arguments = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    arguments.output.mkdir(parents=True, exist_ok=True)
    stem = arguments.output / f"celery-{arguments.variant}-{arguments.broker}-{arguments.pool}"
    raw = stem.with_suffix(".collapsed.txt")

    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=closed_port_endpoint())
        spec = CeleryTrialSpec(
            broker=arguments.broker,
            pool=arguments.pool,
            variant=arguments.variant,
            tasks=arguments.tasks,
            sink=endpoints.sink,
            unreachable=endpoints.unreachable,
        )
        command = [
            py_spy, "record", "--gil", "--nonblocking", "--full-filenames", "--subprocesses",
            "--rate", str(arguments.rate), "--format", "raw", "--output", str(raw), "--",
            sys.executable, "-m", "benchmarks.celery.trial", json.dumps(asdict(spec)),
        ]  # fmt: skip
        env = trial_environment(get_variant(arguments.variant).environment(endpoints))
        completed = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if completed.returncode != 0 or not raw.exists():
        print(completed.stderr[-2000:], file=sys.stderr)
        return 1
    result = json.loads(
        next(line for line in reversed(completed.stdout.splitlines()) if line.startswith("{"))
    )
    profile, hot = attribute(parse_collapsed(raw.read_text().splitlines()))
    tasks = arguments.tasks + DEFAULT_WARMUP
    title = (
        f"{arguments.variant} on {arguments.broker}, {arguments.pool} pool: {tasks:,} tasks sent and run, "
        f"py-spy --gil --subprocesses at {arguments.rate} Hz; trial: enqueue "
        f"{result['enqueue_rate']:,.0f}/s, process {result['process_rate']:,.0f}/s"
    )
    text = _format(profile, hot, rate=arguments.rate, tasks=tasks, title=title)
    stem.with_suffix(".summary.txt").write_text(text)
    print(text)
    print(f"Wrote {stem}.summary.txt and {raw.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
