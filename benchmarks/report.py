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

__all__ = [
    "METRICS",
    "TARGETS",
    "Target",
    "check_targets",
    "extra_markdown",
    "markdown_tables",
    "print_tables",
    "summarize",
]

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
        entry["threads"] = {
            phase: _median_roles([o.result.get(f"{phase}_thread_us") or {} for o in good if o.result])
            for phase in ("enqueue", "process")
        }
        summary[broker][variant] = entry
    return dict(summary)


def _median_roles(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    roles = sorted({role for sample in samples for role in sample})
    return {role: statistics.median(sample.get(role, 0.0) for sample in samples) for role in roles}


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
        lines.append(
            f"**{broker}**: {messages[broker]:,} messages (breakdown: half), median of {rounds} rounds"
        )
        lines.append("")
        lines.append("| variant | " + " | ".join(title for _, title, _ in METRICS) + " |")
        lines.append("|---|" + "---:|" * len(METRICS))
        lines.extend("| " + " | ".join(row) + " |" for row in _rows(variants))
        lines.append("")
    return "\n".join(lines)


#: Rows of the comparison table (the peers and tasklens, as users would run them).
COMPARISON = (
    "prometheus",
    "otel-dramatiq",
    "tasklens-sdk",
    "tasklens-sdk-sampled",
    "tasklens-sdk-metrics",
    "tasklens",
    "tasklens-sampled",
    "tasklens-metrics",
)

#: Rows of the breakdown table: tasklens's middleware with parts of the pipeline taken away.
BREAKDOWN = ("breakdown-noop", "breakdown-spans", "breakdown-batch", "breakdown-otlp", "tasklens")

#: Thread roles of the per-thread CPU table, per phase.
THREAD_ROLES = {
    "enqueue": ("producer", "export", "other"),
    "process": ("workers", "consumers", "export", "other"),
}


def ratio_table(summary: Summary, rows: Sequence[str]) -> list[list[str]]:
    """``variant | <broker> enqueue / process`` ratios (median), one column per broker."""
    table = []
    for name in rows:
        if not any(name in variants for variants in summary.values()):
            continue
        cells = []
        for variants in summary.values():
            entry = variants.get(name)
            if entry is None:
                cells.append("-")
                continue
            ratio = entry["ratio"]
            cells.append(
                " / ".join(
                    "?" if ratio[key] is None else f"{ratio[key]:.2f}"
                    for key in ("enqueue_rate", "process_rate")
                )
            )
        table.append([VARIANTS[name].label, *cells])
    return table


def thread_table(summary: Summary, broker: str) -> list[list[str]]:
    """CPU µs per message per thread role (median), enqueue roles then process roles."""
    rows = []
    for entry in summary[broker].values():
        threads = entry.get("threads") or {}
        cells = [
            f"{threads.get(phase, {}).get(role, 0.0):.1f}"
            for phase, roles in THREAD_ROLES.items()
            for role in roles
        ]
        rows.append([entry["label"], *cells])
    return rows


def thread_headers() -> list[str]:
    """Column titles of :func:`thread_table`."""
    return [f"{phase}: {role}" for phase, roles in THREAD_ROLES.items() for role in roles]


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def extra_markdown(summary: Summary, messages: dict[str, int], rounds: int) -> str:
    """The comparison, breakdown and per-thread CPU tables, as Markdown."""
    brokers = list(summary)
    ratio_headers = ["variant", *(f"{b} enqueue / process" for b in brokers)]
    lines = [f"Ratios to uninstrumented (enqueue / process), median of {rounds} rounds:", ""]
    lines += _markdown(ratio_headers, ratio_table(summary, COMPARISON))
    lines += ["", "Where the time goes (tasklens's middleware, parts of the SDK pipeline taken away):", ""]
    lines += _markdown(["tasklens middleware with ...", *ratio_headers[1:]], ratio_table(summary, BREAKDOWN))
    for broker in brokers:
        lines += ["", f"CPU µs per message per thread, {broker} (median of {rounds} rounds):", ""]
        lines += _markdown(["variant", *thread_headers()], thread_table(summary, broker))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked on the median ratios of one run.

    Parameters:
      variant(str): The variant the goal is about.
      brokers(dict[str, tuple[float, float]]): Minimum (enqueue, process) ratio per broker.
      versus(str | None): Instead of fixed minimums, be at least as fast as this variant.
      factor(float): With ``versus``, the bar is this fraction of the other variant's ratios.
    """

    description: str
    variant: str
    brokers: dict[str, tuple[float, float]] | None = None
    versus: str | None = None
    factor: float = 1.0


#: The targets a benchmark run can check, for the stock-SDK variant and for ``setup()``'s.
TARGETS = (
    Target("metrics only ahead of the Prometheus middleware", "tasklens-sdk-metrics", versus="prometheus"),
    Target("metrics only ahead of the Prometheus middleware", "tasklens-metrics", versus="prometheus"),
    Target("100% ahead of opentelemetry-instrumentor-dramatiq", "tasklens-sdk", versus="otel-dramatiq"),
    Target("100% ahead of opentelemetry-instrumentor-dramatiq", "tasklens", versus="otel-dramatiq"),
    Target(
        "100%: Redis >= 0.85/0.92, RabbitMQ >= 0.55/0.80",
        "tasklens-sdk",
        {"redis": (0.85, 0.92), "rabbitmq": (0.55, 0.80)},
    ),
    Target(
        "100%: Redis >= 0.85/0.92, RabbitMQ >= 0.55/0.80",
        "tasklens",
        {"redis": (0.85, 0.92), "rabbitmq": (0.55, 0.80)},
    ),
    Target(
        "10% sampled >= 0.95 x metrics only",
        "tasklens-sdk-sampled",
        versus="tasklens-sdk-metrics",
        factor=0.95,
    ),
    Target("10% sampled >= 0.95 x metrics only", "tasklens-sampled", versus="tasklens-metrics", factor=0.95),
    Target(
        "own code (no-op API) >= 0.95", "breakdown-noop", {"redis": (0.95, 0.95), "rabbitmq": (0.95, 0.95)}
    ),
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
                bar = tuple(
                    None if other["ratio"][key] is None else other["ratio"][key] * target.factor
                    for key in ("enqueue_rate", "process_rate")
                )
            elif target.brokers and broker in target.brokers:
                bar = target.brokers[broker]
            else:
                continue
            met = None not in measured + bar and all(m >= b for m, b in zip(measured, bar, strict=True))
            checks.append(
                {
                    "target": target.description,
                    "variant": target.variant,
                    "broker": broker,
                    "measured": measured,
                    "bar": bar,
                    "met": met,
                }
            )
    return checks


def format_checks(checks: Sequence[dict[str, Any]]) -> str:
    """One line per target and broker: ``met``/``NOT met``, measured vs bar (enqueue / process)."""

    def pair(values: Sequence[float | None]) -> str:
        return " / ".join("?" if v is None else f"{v:.2f}" for v in values)

    return "\n".join(
        f"{'met    ' if c['met'] else 'NOT met'}  {c['broker']:<8}  {c['variant']:<21} {c['target']}: "
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
