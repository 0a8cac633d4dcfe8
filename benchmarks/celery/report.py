"""Turns Celery trial outcomes into medians and ratios, tables, target checks and JSON.

Every ratio is taken against the uninstrumented trial of the same broker, pool and round, and the
median over rounds is reported (with the min and max in the JSON). The targets compare tasklens
with the contrib peer in every column, on the median ratios: higher throughput, lower CPU and
memory.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.celery.runner import CeleryOutcome
from benchmarks.celery.variants import BASELINE, PEER, VARIANTS

__all__ = ["METRICS", "check_targets", "format_checks", "markdown_tables", "print_tables", "summarize"]

#: The measured quantities, as (key, column title, format, whether higher is better).
METRICS = (
    ("enqueue_rate", "enqueue task/s", "{:,.0f}", True),
    ("process_rate", "process task/s", "{:,.0f}", True),
    ("enqueue_cpu_per_1k", "CPU s/1k enqueue", "{:.3f}", False),
    ("process_cpu_per_1k", "CPU s/1k process", "{:.3f}", False),
    ("worker_rss_mib", "worker RSS MiB", "{:.0f}", False),
)

#: The variants whose every column must beat the peer's.
TARGET_VARIANTS = ("tasklens", "tasklens-metrics", "tasklens-stock-sdk")

Summary = dict[str, dict[str, dict[str, Any]]]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(outcomes: Sequence[CeleryOutcome]) -> Summary:
    """Per setting and variant: medians of every metric and of its per-round ratio to the baseline."""
    baselines = {
        (o.setting, o.round): o.result for o in outcomes if o.variant == BASELINE and o.result is not None
    }
    grouped: dict[tuple[str, str], list[CeleryOutcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[(outcome.setting, outcome.variant)].append(outcome)

    summary: Summary = defaultdict(dict)
    for (setting, variant), group in grouped.items():
        good = [o for o in group if o.result is not None]
        entry: dict[str, Any] = {
            "label": VARIANTS[variant].label,
            "group": VARIANTS[variant].group,
            "rounds": len(good),
            "errors": [o.error for o in group if o.error],
            "exported_kib": _median([o.exported_kib for o in good]),
            "shutdown_seconds": _median([o.result["shutdown_seconds"] for o in good if o.result]),
            "median": {},
            "ratio": {},
            "ratio_range": {},
        }
        for key, *_ in METRICS:
            entry["median"][key] = _median([o.result[key] for o in good if o.result])
            ratios = [
                o.result[key] / baselines[(setting, o.round)][key]
                for o in good
                if o.result and (setting, o.round) in baselines and baselines[(setting, o.round)][key]
            ]
            entry["ratio"][key] = _median(ratios)
            entry["ratio_range"][key] = [min(ratios), max(ratios)] if ratios else None
        summary[setting][variant] = entry
    return dict(summary)


def _cell(entry: dict[str, Any], key: str, fmt: str) -> str:
    value, ratio = entry["median"][key], entry["ratio"][key]
    if value is None:
        return "failed"
    return f"{fmt.format(value)} ({ratio:.2f})" if ratio is not None else fmt.format(value)


def _rows(variants: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [
        [entry["label"], *(_cell(entry, key, fmt) for key, _, fmt, _ in METRICS)]
        for entry in variants.values()
    ]


def _title(setting: str, tasks: int, rounds: int) -> str:
    broker, pool = setting.split("/")
    return f"Celery on {broker}, {pool} pool: {tasks:,} tasks, median of {rounds} rounds"


def print_tables(summary: Summary, tasks: int, rounds: int) -> None:
    """One table per setting on stdout: medians, each with its ratio to the baseline in brackets."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for setting, variants in summary.items():
        table = Table(title=_title(setting, tasks, rounds) + " (ratio to baseline)")
        table.add_column("variant")
        for _, title, _, _ in METRICS:
            table.add_column(title, justify="right")
        for row in _rows(variants):
            table.add_row(*row)
        console.print(table)


def markdown_tables(summary: Summary, tasks: int, rounds: int) -> str:
    """The same tables as :func:`print_tables`, as Markdown."""
    lines: list[str] = []
    for setting, variants in summary.items():
        lines.append(f"**{_title(setting, tasks, rounds)}**")
        lines.append("")
        lines.append("| variant | " + " | ".join(title for _, title, _, _ in METRICS) + " |")
        lines.append("|---|" + "---:|" * len(METRICS))
        lines.extend("| " + " | ".join(row) + " |" for row in _rows(variants))
        lines.append("")
    return "\n".join(lines)


def check_targets(summary: Summary) -> list[dict[str, Any]]:
    """For each tasklens variant and setting: is every column ahead of the peer's?

    Columns are compared on their median ratios to the baseline (as the Dramatiq targets are),
    which cancel the drift between rounds that raw medians keep.
    """
    checks: list[dict[str, Any]] = []
    for setting, variants in summary.items():
        peer = variants.get(PEER)
        if peer is None:
            continue
        for name in TARGET_VARIANTS:
            entry = variants.get(name)
            if entry is None:
                continue
            behind = []
            for key, title, _, higher_is_better in METRICS:
                ours, theirs = entry["ratio"][key], peer["ratio"][key]
                ahead = (
                    ours is not None
                    and theirs is not None
                    and (ours >= theirs if higher_is_better else ours <= theirs)
                )
                if not ahead:
                    behind.append(title)
            checks.append(
                {
                    "target": f"{entry['label']} ahead of the peer in every column",
                    "setting": setting,
                    "variant": name,
                    "behind": behind,
                    "met": not behind,
                }
            )
    return checks


def format_checks(checks: Sequence[dict[str, Any]]) -> str:
    """One line per target and setting: ``met``/``NOT met`` and the columns where it is behind."""
    return "\n".join(
        f"{'met    ' if c['met'] else 'NOT met'}  {c['setting']:<16}  {c['target']}"
        + ("" if c["met"] else f" (behind in: {', '.join(c['behind'])})")
        for c in checks
    )


def markdown_checks(checks: Sequence[dict[str, Any]]) -> str:
    """The target checks as a Markdown table."""
    lines = ["| target | setting | met | behind the peer in |", "|---|---|---|---|"]
    lines.extend(
        f"| {c['target']} | {c['setting']} | {'met' if c['met'] else '**not met**'} | "
        f"{', '.join(c['behind']) or 'none'} |"
        for c in checks
    )
    return "\n".join(lines) + "\n"


def write_json(
    path: Path,
    *,
    summary: Summary,
    outcomes: Sequence[CeleryOutcome],
    checks: Sequence[dict[str, Any]],
    settings: dict[str, Any],
) -> None:
    """Everything a run measured, raw and summarized, as JSON."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    packages = ("celery", "kombu", "opentelemetry-sdk", "opentelemetry-instrumentation-celery", "tasklens")
    document = {
        "settings": settings,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "versions": {name: installed(name) for name in packages},
        "summary": summary,
        "targets": list(checks),
        "trials": [asdict(o) for o in outcomes],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
