"""Runs the trials: every variant on every broker, each in a fresh process, interleaved by round.

A round runs each broker's variants one after another (A B C ... then A B C ... again), so that
slow drifts of the machine (other load, thermal, the broker's own state) spread over all variants
instead of landing on one. Each broker's part of a round opens with a short unrecorded trial.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.sink import SinkProcess, SinkStats
from benchmarks.trial import TrialSpec
from benchmarks.variants import BASELINE, Endpoints, get_variant

__all__ = ["Outcome", "closed_port_endpoint", "run_rounds", "run_trial_process"]

#: The directory that holds the ``benchmarks`` package; trials run from there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Messages in the unrecorded trial that opens each broker's part of a round.
WARM_UP_MESSAGES = 2_000

#: How long one trial process may run before it is killed, in seconds.
TRIAL_TIMEOUT = 900.0


@dataclass
class Outcome:
    """One trial's measurements (or its error), tagged with its round.

    Parameters:
      exported_kib(float): OTLP bytes the sink received during the trial, in KiB.
      seconds(float): Wall-clock time of the whole trial process.
    """

    round: int
    broker: str
    variant: str
    result: dict[str, float] | None
    error: str | None
    exported_kib: float
    seconds: float


def closed_port_endpoint() -> str:
    """A base URL on 127.0.0.1 whose port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def trial_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` variable, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def run_trial_process(module: str, spec: object, env: dict[str, str]) -> tuple[dict | None, str | None]:
    """Run ``python -m <module> '<spec as JSON>'``; return its last stdout line parsed, or an error."""
    command = [sys.executable, "-m", module, json.dumps(asdict(spec))]  # type: ignore[call-overload]
    try:
        completed = subprocess.run(
            command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TRIAL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {TRIAL_TIMEOUT:.0f} s"
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = completed.stderr.strip().splitlines()[-5:]
        return None, f"exit {completed.returncode}: " + " | ".join(tail)
    return json.loads(lines[-1]), None


def _exported_bytes(before: SinkStats, after: SinkStats) -> int:
    return sum(after[key] - before.get(key, 0) for key in after if key.endswith(":bytes"))


def run_rounds(
    *,
    brokers: Sequence[str],
    variants: Sequence[str],
    rounds: int,
    messages: dict[str, int],
    threads: int,
    report: Callable[[Outcome], None],
    round_done: Callable[[int, list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """Run ``rounds`` interleaved rounds; call ``report`` after each trial and ``round_done`` with
    every outcome so far after each round; return every outcome."""
    outcomes: list[Outcome] = []
    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=closed_port_endpoint())
        for round_index in range(1, rounds + 1):
            for broker in brokers:
                # The first trial on a broker after a pause ran slower than the same trial later
                # (RabbitMQ most of all), which would land on the baseline: run one, unrecorded.
                warm_up = TrialSpec(
                    broker=broker,
                    variant=BASELINE,
                    messages=min(WARM_UP_MESSAGES, messages[broker]),
                    threads=threads,
                    sink=endpoints.sink,
                    unreachable=endpoints.unreachable,
                )
                run_trial_process("benchmarks.trial", warm_up, trial_environment({}))
                for name in variants:
                    spec = TrialSpec(
                        broker=broker,
                        variant=name,
                        messages=max(1, int(messages[broker] * get_variant(name).messages_scale)),
                        threads=threads,
                        sink=endpoints.sink,
                        unreachable=endpoints.unreachable,
                    )
                    env = trial_environment(get_variant(name).environment(endpoints))
                    before, started = sink.stats(), time.perf_counter()
                    result, error = run_trial_process("benchmarks.trial", spec, env)
                    seconds = time.perf_counter() - started
                    outcome = Outcome(
                        round=round_index,
                        broker=broker,
                        variant=name,
                        result=result,
                        error=error,
                        exported_kib=_exported_bytes(before, sink.stats()) / 1024,
                        seconds=seconds,
                    )
                    outcomes.append(outcome)
                    report(outcome)
            if round_done is not None:
                round_done(round_index, list(outcomes))
    return outcomes
