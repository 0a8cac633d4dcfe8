"""Turns trial outcomes into medians and ratios, tables, targets, ``latest.json`` and a chart.

Every ratio is taken against the uninstrumented trial of the same broker and the same round, and
the median over rounds is reported (with the min and max, so the spread is visible).
"""

from __future__ import annotations

import json
import platform
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.runner import Outcome
from benchmarks.variants import BASELINE, VARIANTS

__all__ = ["METRICS", "TARGETS", "Target", "check_targets", "markdown_tables", "print_tables", "summarize"]

#: The measured quantities, as (key, column title, format).
METRICS = (
    ("enqueue_rate", "enqueue msg/s", "{:,.0f}"),
    ("process_rate", "process msg/s", "{:,.0f}"),
    ("enqueue_cpu_per_1k", "CPU s/1k enqueue", "{:.3f}"),
    ("process_cpu_per_1k", "CPU s/1k process", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MiB", "{:.0f}"),
)

Summary = dict[str, dict[str, dict[str, Any]]]


def summarize(outcomes: Sequence[Outcome]) -> Summary:
    """Per broker and variant: medians of every metric and of its per-round ratio to the baseline."""
    baselines = {
        (o.broker, o.round): o.result for o in outcomes if o.variant == BASELINE and o.result is not None
    }
    grouped: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[(outcome.broker, outcome.variant)].append(outcome)

    summary: Summary = defaultdict(dict)
    for (broker, variant), group in grouped.items():
        good = [o for o in group if o.result is not None]
        entry: dict[str, Any] = {
            "label": VARIANTS[variant].label,
            "group": VARIANTS[variant].group,
            "rounds": len(good),
            "errors": [o.error for o in group if o.error],
            "exported_kib": _median([o.exported_kib for o in good]),
            "median": {},
            "ratio": {},
            "ratio_range": {},
        }
        for key, _, _ in METRICS:
            entry["median"][key] = _median([o.result[key] for o in good if o.result])
            ratios = [
                o.result[key] / baselines[(broker, o.round)][key]
                for o in good
                if o.result and (broker, o.round) in baselines
            ]
            entry["ratio"][key] = _median(ratios)
            entry["ratio_range"][key] = [min(ratios), max(ratios)] if ratios else None
        summary[broker][variant] = entry
    return dict(summary)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _cell(entry: dict[str, Any], key: str, fmt: str) -> str:
    value, ratio = entry["median"][key], entry["ratio"][key]
    if value is None:
        return "failed"
    return f"{fmt.format(value)} ({ratio:.2f})" if ratio is not None else fmt.format(value)


def _rows(variants: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [
        [entry["label"], *(_cell(entry, key, fmt) for key, _, fmt in METRICS)] for entry in variants.values()
    ]


def print_tables(summary: Summary, messages: dict[str, int], rounds: int) -> None:
    """One table per broker on stdout: medians, each with its ratio to the baseline in brackets."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    for broker, variants in summary.items():
        title = f"{broker}: {messages[broker]:,} messages, median of {rounds} rounds (ratio to baseline)"
        table = Table(title=title)
        table.add_column("variant")
        for _, title, _ in METRICS:
            table.add_column(title, justify="right")
        for row in _rows(variants):
            table.add_row(*row)
        console.print(table)


def markdown_tables(summary: Summary, messages: dict[str, int], rounds: int) -> str:
    """The same tables as :func:`print_tables`, as Markdown."""
    lines: list[str] = []
    for broker, variants in summary.items():
        lines.append(f"**{broker}**: {messages[broker]:,} messages, median of {rounds} rounds")
        lines.append("")
        lines.append("| variant | " + " | ".join(title for _, title, _ in METRICS) + " |")
        lines.append("|---|" + "---:|" * len(METRICS))
        lines.extend("| " + " | ".join(row) + " |" for row in _rows(variants))
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked on the median ratios of one run.

    Parameters:
      variant(str): The variant the goal is about.
      brokers(dict[str, tuple[float, float]]): Minimum (enqueue, process) ratio per broker.
      versus(str | None): Instead of fixed minimums, be at least as fast as this variant.
    """

    description: str
    variant: str
    brokers: dict[str, tuple[float, float]] | None = None
    versus: str | None = None


#: The issue's targets that a benchmark run can check (the 5 µs one needs a profile).
TARGETS = (
    Target("metrics only >= 0.95", "tasklens-metrics", {"redis": (0.95, 0.95), "rabbitmq": (0.95, 0.95)}),
    Target("10% sampling >= 0.93", "tasklens-sampled", {"redis": (0.93, 0.93), "rabbitmq": (0.93, 0.93)}),
    Target(
        "100% sampling: Redis >= 0.75/0.85, RabbitMQ >= 0.60/0.75",
        "tasklens",
        {"redis": (0.75, 0.85), "rabbitmq": (0.60, 0.75)},
    ),
    Target(
        "100% sampling with the SDK's own span exporter (same bars)",
        "tasklens-stock-exporter",
        {"redis": (0.75, 0.85), "rabbitmq": (0.60, 0.75)},
    ),
    Target("unreachable endpoint no worse than a working one", "tasklens-unreachable", versus="tasklens"),
    Target("metrics only ahead of the Prometheus middleware", "tasklens-metrics", versus="prometheus"),
    Target("full tracing ahead of the community instrumentor", "tasklens", versus="otel-dramatiq"),
)


def check_targets(summary: Summary) -> list[dict[str, Any]]:
    """Each target per broker: the measured (enqueue, process) ratios, the bar, and whether it is met."""
    checks: list[dict[str, Any]] = []
    for target in TARGETS:
        for broker, variants in summary.items():
            entry = variants.get(target.variant)
            if entry is None:
                continue
            measured = (entry["ratio"]["enqueue_rate"], entry["ratio"]["process_rate"])
            if target.versus is not None:
                other = variants.get(target.versus)
                if other is None:
                    continue
                bar = (other["ratio"]["enqueue_rate"], other["ratio"]["process_rate"])
            elif target.brokers and broker in target.brokers:
                bar = target.brokers[broker]
            else:
                continue
            met = None not in measured + bar and all(m >= b for m, b in zip(measured, bar, strict=True))
            checks.append(
                {"target": target.description, "broker": broker, "measured": measured, "bar": bar, "met": met}
            )
    return checks


def format_checks(checks: Sequence[dict[str, Any]]) -> str:
    """One line per target and broker: ``met``/``NOT met``, measured vs bar (enqueue / process)."""

    def pair(values: Sequence[float | None]) -> str:
        return " / ".join("?" if v is None else f"{v:.2f}" for v in values)

    return "\n".join(
        f"{'met    ' if c['met'] else 'NOT met'}  {c['broker']:<8}  {c['target']}: "
        f"{pair(c['measured'])} vs {pair(c['bar'])}"
        for c in checks
    )


def write_json(
    path: Path,
    *,
    summary: Summary,
    outcomes: Sequence[Outcome],
    checks: Sequence[dict[str, Any]],
    settings: dict[str, Any],
    memory: dict[str, Any] | None,
) -> None:
    """Everything a run measured, raw and summarized, as JSON."""
    from importlib.metadata import version

    packages = (
        "dramatiq",
        "opentelemetry-sdk",
        "opentelemetry-instrumentor-dramatiq",
        "prometheus-client",
        "tasklens",
    )
    document = {
        "settings": settings,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "versions": {name: _version(version, name) for name in packages},
        "summary": summary,
        "targets": list(checks),
        "memory": memory,
        "trials": [asdict(o) for o in outcomes],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _version(lookup: Any, name: str) -> str | None:
    try:
        return str(lookup(name))
    except Exception:
        return None


def write_chart(path: Path, summary: Summary) -> None:
    """Bars of the median enqueue and process ratios per variant, one panel per broker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(summary), figsize=(7 * len(summary), 5.5), squeeze=False)
    for axis, (broker, variants) in zip(axes[0], summary.items(), strict=True):
        names = [name for name in variants if name != BASELINE]
        positions = range(len(names))
        for offset, (key, title, colour) in enumerate(
            (("enqueue_rate", "enqueue", "#4c72b0"), ("process_rate", "process", "#dd8452"))
        ):
            values = [variants[name]["ratio"][key] or 0.0 for name in names]
            spreads = [
                variants[name]["ratio_range"][key] or [v, v] for name, v in zip(names, values, strict=True)
            ]
            errors = [
                [v - lo for v, (lo, _) in zip(values, spreads, strict=True)],
                [hi - v for v, (_, hi) in zip(values, spreads, strict=True)],
            ]
            axis.bar(
                [p + (offset - 0.5) * 0.4 for p in positions],
                values,
                0.4,
                yerr=errors,
                capsize=3,
                label=title,
                color=colour,
            )
        for target in TARGETS:
            if target.brokers and broker in target.brokers and target.variant in names:
                position = names.index(target.variant)
                for offset, bar in zip((-0.2, 0.2), target.brokers[broker], strict=True):
                    axis.hlines(
                        bar,
                        position + offset - 0.2,
                        position + offset + 0.2,
                        colors="black",
                        linestyles="dashed",
                    )
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks(list(positions))
        axis.set_xticklabels(names, rotation=30, ha="right")
        axis.set_ylim(0, 1.2)
        axis.set_ylabel("throughput / uninstrumented (median, min-max; dashed: target)")
        axis.set_title(broker)
        axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
