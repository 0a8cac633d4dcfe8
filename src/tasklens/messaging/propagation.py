"""The trace context into and out of a message: a W3C carrier (``traceparent``, ``tracestate``).

Both libraries carry the producer's context the same way: a dict of string headers written by
the global propagator when the send span starts, read back when processing starts. A carrier
that is missing, foreign or malformed gives no parent, never an error.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span

__all__ = ["extract", "inject"]


def inject(span: Span) -> dict[str, str]:
    """The carrier for ``span``'s context: empty when there is nothing to propagate."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def extract(carrier: Any) -> otel_context.Context | None:
    """The producer's context from a message's carrier; None when absent or unusable."""
    if not isinstance(carrier, dict) or not carrier:
        return None
    try:
        extracted = propagate.extract(carrier)
    except Exception:  # a foreign carrier never breaks processing
        return None
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted
