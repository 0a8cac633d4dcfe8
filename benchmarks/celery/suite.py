"""The Celery tables of ``make bench``: what instrumenting a Celery worker costs.

For every broker (Redis, RabbitMQ) and pool (``prefork -c 2``, ``threads -c 8``), every
variant of :mod:`benchmarks.celery.variants` runs a trial (:mod:`benchmarks.celery.trial`) in a
fresh process, in interleaved rounds, against the OTLP sink the Dramatiq tables use. Prints one
table per setting and the targets (tasklens ahead of ``opentelemetry-instrumentation-celery`` in
every column), and writes ``celery-latest.json`` and ``celery-latest.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.celery.report import (
    check_targets,
    format_checks,
    markdown_checks,
    markdown_tables,
    print_tables,
    summarize,
    write_json,
)
from benchmarks.celery.runner import CeleryOutcome, Setting, run_rounds
from benchmarks.celery.trial import DEFAULT_WARMUP
from benchmarks.celery.variants import BASELINE, DEFAULT_VARIANTS, get_variant
from benchmarks.celery.worker import CONCURRENCY

__all__ = ["add_arguments", "resummarize", "run"]

#: Tasks per timed window in a full run.
DEFAULT_TASKS = 1_000

#: Tasks per timed window, and warm-up tasks, with ``--quick``.
QUICK_TASKS, QUICK_WARMUP = 40, 20

#: The brokers and pools a run covers unless told otherwise.
BROKERS, POOLS = ("redis", "rabbitmq"), tuple(CONCURRENCY)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Celery options, on the parser of ``python -m benchmarks`` or ``python -m benchmarks.celery``."""
    group = parser.add_argument_group("Celery")
    group.add_argument("--celery-brokers", default=",".join(BROKERS), help="comma-separated: redis,rabbitmq")
    group.add_argument("--celery-pools", default=",".join(POOLS), help="comma-separated: prefork,threads")
    group.add_argument(
        "--celery-variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from: {', '.join(DEFAULT_VARIANTS)} (the baseline is always run)",
    )
    group.add_argument("--celery-tasks", type=int, help=f"tasks per timed window (default {DEFAULT_TASKS:,})")


def _print_progress(outcome: CeleryOutcome) -> None:
    if outcome.result is None:
        line = f"FAILED: {outcome.error}"
    else:
        r = outcome.result
        line = (
            f"enqueue {r['enqueue_rate']:>7,.0f}/s  process {r['process_rate']:>7,.0f}/s  "
            f"exported {outcome.exported_kib:>8,.0f} KiB"
        )
    print(
        f"round {outcome.round} {outcome.setting:<16} {outcome.variant:<19} {line}"
        f"  ({outcome.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _split(value: str) -> list[str]:
    return [item for item in value.split(",") if item]


def run(arguments: argparse.Namespace) -> int:
    """Run the Celery tables with ``arguments`` (``rounds``, ``quick``, ``output`` and the Celery
    options); 0 when every trial succeeded."""
    quick = getattr(arguments, "quick", False)
    tasks = arguments.celery_tasks or (QUICK_TASKS if quick else DEFAULT_TASKS)
    warmup = QUICK_WARMUP if quick else DEFAULT_WARMUP
    rounds = 1 if quick else arguments.rounds
    pools = _split(arguments.celery_pools)
    for pool in pools:
        if pool not in CONCURRENCY:
            raise SystemExit(f"unknown pool {pool!r}; expected one of {', '.join(CONCURRENCY)}")
    settings = [Setting(broker, pool) for broker in _split(arguments.celery_brokers) for pool in pools]
    variants = [BASELINE, *(v for v in _split(arguments.celery_variants) if v != BASELINE)]
    for name in variants:
        get_variant(name)

    started = time.perf_counter()
    outcomes = run_rounds(
        settings=settings,
        variants=variants,
        rounds=rounds,
        tasks=tasks,
        warmup=warmup,
        warm_up=not quick,
        report=_print_progress,
    )
    elapsed = time.perf_counter() - started
    run_settings = {
        "settings": [s.key for s in settings],
        "concurrency": {pool: CONCURRENCY[pool] for pool in pools},
        "variants": variants,
        "rounds": rounds,
        "tasks": tasks,
        "warmup": warmup,
        "elapsed_seconds": round(elapsed, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _report(outcomes, run_settings, arguments.output)
    print(f"\nCelery: {elapsed / 60:.1f} min.")
    return 0 if all(o.result is not None for o in outcomes) else 1


def _report(outcomes: list[CeleryOutcome], run_settings: dict[str, Any], output: Path) -> None:
    tasks, rounds = run_settings["tasks"], run_settings["rounds"]
    summary = summarize(outcomes)
    checks = check_targets(summary)
    print_tables(summary, tasks, rounds)
    print(format_checks(checks))
    output.mkdir(parents=True, exist_ok=True)
    document = output / "celery-latest.json"
    write_json(document, summary=summary, outcomes=outcomes, checks=checks, settings=run_settings)
    markdown = markdown_tables(summary, tasks, rounds) + "\n" + markdown_checks(checks)
    (output / "celery-latest.md").write_text(markdown)
    print(f"Wrote {output}/celery-latest.json, celery-latest.md")


def resummarize(document: Path, output: Path) -> int:
    """Rebuild the tables, targets and files from the trials kept in a ``celery-latest.json``."""
    stored = json.loads(document.read_text())
    outcomes = [CeleryOutcome(**trial) for trial in stored["trials"]]
    _report(outcomes, stored["settings"], output)
    return 0
