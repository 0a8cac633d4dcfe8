"""Trace trees for the terminal: each trace as nested spans with timing, status and events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from rich.text import Text
from rich.tree import Tree

from tasklens import semconv

__all__ = ["trace_trees"]

#: Span events worth a line of their own under the span.
_SHOWN_EVENTS = (
    semconv.EVENT_RETRY_SCHEDULED,
    semconv.EVENT_DEAD_LETTERED,
    semconv.EVENT_SKIPPED,
    "exception",
)


def _label(span: ReadableSpan, trace_start: int) -> Text:
    start_ms = ((span.start_time or 0) - trace_start) / 1e6
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    label = Text(span.name, style="bold")
    label.append(f"  {span.kind.name.lower()}", style="cyan")
    label.append(f"  +{start_ms:.1f} ms, {duration_ms:.1f} ms", style="dim")
    attributes = span.attributes or {}
    if semconv.DRAMATIQ_ACTOR_NAME in attributes:
        label.append(f"  actor={attributes[semconv.DRAMATIQ_ACTOR_NAME]!s}")
    if semconv.CELERY_TASK_NAME in attributes:
        label.append(f"  task={attributes[semconv.CELERY_TASK_NAME]!s}")
    if semconv.DRAMATIQ_MESSAGE_RETRIES in attributes and span.name.startswith(semconv.OPERATION_PROCESS):
        retries = attributes[semconv.DRAMATIQ_MESSAGE_RETRIES]
        label.append(f" attempt={retries + 1 if isinstance(retries, int) else '?'}")
    if semconv.DRAMATIQ_MESSAGE_DELAY in attributes:
        label.append(f" delay={attributes[semconv.DRAMATIQ_MESSAGE_DELAY]!s} ms")
    if span.status.status_code is StatusCode.ERROR:
        label.append(f"  ERROR {attributes.get(semconv.ERROR_TYPE, '')!s}", style="bold red")
    return label


def _event_label(span: ReadableSpan) -> Iterable[Text]:
    for event in span.events:
        if event.name not in _SHOWN_EVENTS:
            continue
        details = ", ".join(
            f"{k}={v!s}" for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"
        )
        yield Text(f"• {event.name}" + (f" ({details})" if details else ""), style="yellow")


def trace_trees(spans: Sequence[ReadableSpan]) -> list[Tree]:
    """One rich Tree per trace, roots first, children in start order."""
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)
    trees = []
    for trace_id, members in sorted(
        by_trace.items(), key=lambda item: min(s.start_time or 0 for s in item[1])
    ):
        members.sort(key=lambda s: s.start_time or 0)
        ids = {s.context.span_id for s in members}
        children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
        for span in members:
            parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
            children[parent].append(span)
        tree = Tree(Text(f"trace {trace_id:032x}", style="magenta"))
        _add_children(tree, None, children, members[0].start_time or 0)
        trees.append(tree)
    return trees


def _add_children(
    node: Tree, parent: int | None, children: dict[int | None, list[ReadableSpan]], trace_start: int
) -> None:
    for span in children.get(parent, []):
        branch = node.add(_label(span, trace_start))
        for line in _event_label(span):
            branch.add(line)
        _add_children(branch, span.context.span_id, children, trace_start)
