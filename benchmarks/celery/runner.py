"""Runs the Celery trials: every variant on every broker and pool, each in a fresh process,
interleaved by round, as :mod:`benchmarks.runner` does for Dramatiq.

A round runs each (broker, pool) setting's variants one after another, so that slow drifts of
the machine spread over all of them. Each setting's part of a round opens with a short
unrecorded trial (the first trial after a pause runs slower, and would land on the baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.celery.trial import CeleryTrialSpec
from benchmarks.celery.variants import BASELINE, get_variant
from benchmarks.runner import closed_port_endpoint, run_trial_process, trial_environment
from benchmarks.sink import SinkProcess, SinkStats
from benchmarks.variants import Endpoints

__all__ = ["CeleryOutcome", "Setting", "run_rounds"]

#: Tasks in the unrecorded trial that opens each setting's part of a round.
WARM_UP_TASKS = 200


@dataclass(frozen=True)
class Setting:
    """A broker and a worker pool: one table of the report.

    Parameters:
      broker(str): ``redis`` or ``rabbitmq``.
      pool(str): ``prefork`` or ``threads``.
    """

    broker: str
    pool: str

    @property
    def key(self) -> str:
        return f"{self.broker}/{self.pool}"


@dataclass
class CeleryOutcome:
    """One trial's measurements (or its error), tagged with its round and setting.

    Parameters:
      exported_kib(float): OTLP bytes the sink received during the trial (both processes), in KiB.
      seconds(float): Wall-clock time of the whole trial.
    """

    round: int
    broker: str
    pool: str
    variant: str
    result: dict[str, float] | None
    error: str | None
    exported_kib: float
    seconds: float

    @property
    def setting(self) -> str:
        return Setting(self.broker, self.pool).key


def _exported_bytes(before: SinkStats, after: SinkStats) -> int:
    return sum(after[key] - before.get(key, 0) for key in after if key.endswith(":bytes"))


def run_rounds(
    *,
    settings: Sequence[Setting],
    variants: Sequence[str],
    rounds: int,
    tasks: int,
    warmup: int,
    warm_up: bool,
    report: Callable[[CeleryOutcome], None],
) -> list[CeleryOutcome]:
    """Run ``rounds`` interleaved rounds; call ``report`` after each trial; return every outcome.

    ``warmup`` tasks open every trial outside its windows; ``warm_up`` runs the unrecorded trial.
    """
    outcomes: list[CeleryOutcome] = []
    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=closed_port_endpoint())
        for round_index in range(1, rounds + 1):
            for setting in settings:
                if warm_up:
                    spec = CeleryTrialSpec(
                        broker=setting.broker,
                        pool=setting.pool,
                        variant=BASELINE,
                        tasks=min(WARM_UP_TASKS, tasks),
                        sink=endpoints.sink,
                        unreachable=endpoints.unreachable,
                    )
                    run_trial_process("benchmarks.celery.trial", spec, trial_environment({}))
                for name in variants:
                    spec = CeleryTrialSpec(
                        broker=setting.broker,
                        pool=setting.pool,
                        variant=name,
                        tasks=tasks,
                        sink=endpoints.sink,
                        unreachable=endpoints.unreachable,
                        warmup=warmup,
                    )
                    env = trial_environment(get_variant(name).environment(endpoints))
                    before, started = sink.stats(), time.perf_counter()
                    result, error = run_trial_process("benchmarks.celery.trial", spec, env)
                    outcome = CeleryOutcome(
                        round=round_index,
                        broker=setting.broker,
                        pool=setting.pool,
                        variant=name,
                        result=result,
                        error=error,
                        exported_kib=_exported_bytes(before, sink.stats()) / 1024,
                        seconds=time.perf_counter() - started,
                    )
                    outcomes.append(outcome)
                    report(outcome)
    return outcomes
