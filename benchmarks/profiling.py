"""Where an instrumented trial spends its time, per message, by owner of the code.

``python -m benchmarks.profiling --broker redis --variant tasklens`` runs one trial under
``py-spy record --gil`` (only the thread holding the GIL is sampled, so a sample is a slice of
Python CPU time, not a thread waiting for its turn) and splits the samples:

- by path: the producer's ``actor.send`` (enqueue), the worker threads' ``process_message``
  (process), the SDK's export threads (export), Dramatiq's consumer threads (fetch and ack),
  everything else (start-up, flushes, ...);
- by owner, from the innermost frame that belongs to a known package: tasklens's optional span
  encoder and exporter, the rest of tasklens's own code, the OpenTelemetry API/SDK, the stock
  exporter (OTLP encoding, protobuf, requests/urllib3), Dramatiq and the broker clients, the
  harness.

Each cell is microseconds per message: samples / rate / messages. The tasklens lines at the
end are the hot spots in tasklens's own code, by innermost tasklens frame (file:line). The raw
collapsed stacks are kept next to the summary for flame graphs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from benchmarks.runner import PROJECT_ROOT, closed_port_endpoint, trial_environment
from benchmarks.sink import SinkProcess
from benchmarks.trial import DEFAULT_WARMUP, TrialSpec
from benchmarks.variants import Endpoints, get_variant

__all__ = ["Profile", "attribute", "main", "parse_collapsed"]

#: Owners, as (name, path fragments); the first match from the innermost frame outwards wins.
OWNERS = (
    ("tasklens export", ("/tasklens/telemetry/span_encoder.py", "/tasklens/telemetry/span_exporter.py")),
    ("tasklens", ("/src/tasklens/", "/site-packages/tasklens/")),
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
    ("dramatiq+client", ("/dramatiq/", "/redis/", "/pika/", "/prometheus_client/")),
    ("harness", ("/benchmarks/",)),
)

#: Paths, as (name, function names); a sample belongs to the first path with a frame in its stack
#: whose function ends with one of the names (py-spy drops the leading underscore of a class).
PATHS = (
    ("enqueue", ("Actor.send",)),
    ("process", ("WorkerThread.process_message",)),
    ("consumer", ("ConsumerThread.run",)),
    ("export", ("BatchProcessor.worker", "PeriodicExportingMetricReader._ticker", "BatchProcessor._export")),
)

#: Where profiles are written unless ``--output`` says otherwise.
PROFILES = Path(__file__).resolve().parent / "results" / "profiles"

Frame = tuple[str, str]  # (function, "file:line")
Profile = dict[str, Counter[str]]


def _frame(text: str) -> Frame:
    function, _, location = text.rpartition(" (")
    return function, location.rstrip(")")


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[Frame], int]]:
    """Stacks (root first) and counts from py-spy's ``raw`` (collapsed) output."""
    stacks = []
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        body, _, count = line.rpartition(" ")
        if not count.isdigit():  # a frame whose name py-spy could not render on one line
            continue
        stacks.append(([_frame(part) for part in body.split(";")], int(count)))
    return stacks


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


def attribute(stacks: list[tuple[list[Frame], int]]) -> tuple[Profile, Counter[str], Profile]:
    """Samples per path and owner; tasklens samples per innermost tasklens function, and per line."""
    owners: Profile = defaultdict(Counter)
    hot: Counter[str] = Counter()
    lines: Profile = defaultdict(Counter)
    for stack, count in stacks:
        path, owner = _path(stack), _owner(stack)
        owners[path][owner] += count
        if owner.startswith("tasklens"):
            function, location = next(f for f in reversed(stack) if "tasklens/" in f[1])
            file, _, line = location.split("/src/", 1)[-1].split("/site-packages/", 1)[-1].rpartition(":")
            hot[f"{path:<8} {function} ({file})"] += count
            lines[f"{path:<8} {function} ({file})"][line] += count
    return dict(owners), hot, lines


def _format(
    profile: Profile, hot: Counter[str], lines_of: Profile, *, rate: int, messages: int, title: str
) -> str:
    scale = 1e6 / rate / messages  # samples -> microseconds per message
    columns = [name for name, _ in OWNERS] + ["other"]
    lines = [title, "", "µs per message (GIL-holding Python time) by path and owner", ""]
    lines.append(f"{'path':<8}" + "".join(f"{name:>17}" for name in columns) + f"{'total':>10}")
    for path in [name for name, _ in PATHS] + ["other"]:
        counts = profile.get(path, Counter())
        cells = "".join(f"{counts[name] * scale:>17.1f}" for name in columns)
        lines.append(f"{path:<8}{cells}{sum(counts.values()) * scale:>10.1f}")
    lines += [
        "",
        "Hot spots in tasklens's own code (innermost tasklens function; busiest lines), µs per message",
        "",
    ]
    for where, count in hot.most_common(20):
        busiest = ", ".join(f"{line}: {n * scale:.2f}" for line, n in lines_of[where].most_common(4))
        lines.append(f"{count * scale:>7.2f}  {where}  [{busiest}]")
    return "\n".join(lines) + "\n"


def _source_revision() -> str:
    """The commit the profiled tasklens code is at, marked when src/ has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()

    dirty = (
        " (with uncommitted changes in src/tasklens)" if git("status", "--porcelain", "src/tasklens") else ""
    )
    return (git("rev-parse", "--short", "HEAD") or "unknown commit") + dirty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--broker", default="redis")
    parser.add_argument("--variant", default="tasklens")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--output", type=Path, default=PROFILES)
    parser.add_argument(
        "--resummarize", action="store_true", help="rewrite every summary in --output from its kept stacks"
    )
    arguments = parser.parse_args(argv)
    if arguments.resummarize:
        for raw in sorted(arguments.output.glob("*.collapsed.txt")):
            summary = raw.with_name(raw.name.replace(".collapsed.txt", ".summary.txt"))
            title = "\n".join(summary.read_text().splitlines()[:2]) if summary.exists() else raw.stem
            messages = int(title.split(": ", 1)[1].split(" messages", 1)[0].replace(",", ""))
            profile, hot, lines_of = attribute(parse_collapsed(raw.read_text().splitlines()))
            summary.write_text(
                _format(profile, hot, lines_of, rate=arguments.rate, messages=messages, title=title)
            )
        return 0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    arguments.output.mkdir(parents=True, exist_ok=True)
    stem = arguments.output / f"{arguments.variant}-{arguments.broker}"
    raw = stem.with_suffix(".collapsed.txt")

    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=closed_port_endpoint())
        spec = TrialSpec(
            broker=arguments.broker,
            variant=arguments.variant,
            messages=arguments.messages,
            threads=arguments.threads,
            sink=endpoints.sink,
            unreachable=endpoints.unreachable,
        )
        command = [
            py_spy, "record", "--gil", "--nonblocking", "--full-filenames", "--threads",
            "--rate", str(arguments.rate), "--format", "raw", "--output", str(raw), "--",
            sys.executable, "-m", "benchmarks.trial", json.dumps(asdict(spec)),
        ]  # fmt: skip
        env = trial_environment(get_variant(arguments.variant).environment(endpoints))
        completed = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if completed.returncode != 0 or not raw.exists():
        print(completed.stderr[-2000:], file=sys.stderr)
        return 1
    # py-spy writes its own progress lines to stdout after the trial's JSON line.
    result = json.loads(
        next(line for line in reversed(completed.stdout.splitlines()) if line.startswith("{"))
    )
    profile, hot, lines_of = attribute(parse_collapsed(raw.read_text().splitlines()))
    messages = arguments.messages + DEFAULT_WARMUP
    title = (
        f"{arguments.variant} on {arguments.broker}: {messages:,} messages sent and processed, "
        f"py-spy --gil at {arguments.rate} Hz; trial: enqueue {result['enqueue_rate']:,.0f}/s, "
        f"process {result['process_rate']:,.0f}/s"
    )
    title += f"\ntasklens at {_source_revision()}"
    text = _format(profile, hot, lines_of, rate=arguments.rate, messages=messages, title=title)
    stem.with_suffix(".summary.txt").write_text(text)
    print(text)
    print(f"Wrote {stem}.summary.txt and {raw.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
