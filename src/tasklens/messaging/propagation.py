"""The trace context into and out of a message: a W3C carrier (``traceparent``, ``tracestate``).

Both libraries carry the producer's context the same way: a dict of string headers written by
the global propagator when the send span starts, read back when processing starts. A carrier
that is missing, foreign or malformed gives no parent, never an error.

When the global propagator is the SDK's default (``tracecontext,baggage``) and there is no
baggage to carry, the ``traceparent`` header is written and parsed here directly: the same
carrier the default propagator makes, without its two propagator layers, getter and regular
expression (about 4 µs per send and 5 µs per processed message). Anything else (another
propagator, baggage, ``tracestate``, a header that is not in the exact version-00 form) goes
through the global propagator, so what it accepts and rejects is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TRACEPARENT", "TRACESTATE", "carrier_fields", "extract", "inject"]

#: The W3C header that carries the trace and span ids and the sampling flag.
TRACEPARENT = "traceparent"
#: The W3C header that carries vendor state along with ``traceparent``.
TRACESTATE = "tracestate"
#: The header the W3C baggage propagator writes.
BAGGAGE = "baggage"

#: ``traceparent`` exactly as the default propagator writes it (version 00, lowercase hex).
_TRACEPARENT_V00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

#: How the default propagator writes ``traceparent``.
_TRACEPARENT_FORMAT = "00-%032x-%016x-%02x"

#: The propagator types of the SDK's default global propagator, in order.
_DEFAULT_PROPAGATORS = (TraceContextTextMapPropagator, W3CBaggagePropagator)

#: The last global propagator seen, and whether it is the default one.
_checked: tuple[TextMapPropagator | None, bool] = (None, False)


def _is_default(textmap: TextMapPropagator) -> bool:
    global _checked
    seen, default = _checked
    if textmap is seen:
        return default
    parts = getattr(textmap, "_propagators", None) if type(textmap) is CompositePropagator else None
    default = parts is not None and tuple(type(part) for part in parts) == _DEFAULT_PROPAGATORS
    _checked = (textmap, default)
    return default


#: The last global propagator seen, and the carrier fields it reads and writes.
_fields: tuple[TextMapPropagator | None, frozenset[str]] = (None, frozenset())


def carrier_fields() -> frozenset[str]:
    """The header names the global propagator reads and writes (computed once per propagator:
    a composite one builds a new set on every ``fields`` read)."""
    global _fields
    textmap = propagate.get_global_textmap()
    seen, names = _fields
    if textmap is not seen:
        names = frozenset(textmap.fields)
        _fields = (textmap, names)
    return names


def inject(span: Span) -> dict[str, str]:
    """The carrier for ``span``'s context: empty when there is nothing to propagate."""
    if _is_default(propagate.get_global_textmap()) and not baggage.get_all():
        span_context = span.get_span_context()
        if not span_context.is_valid:
            return {}
        # %-formatting: a third cheaper than the equivalent f-string with three format specs.
        header = _TRACEPARENT_FORMAT % (span_context.trace_id, span_context.span_id, span_context.trace_flags)
        carrier = {TRACEPARENT: header}
        if span_context.trace_state:
            carrier[TRACESTATE] = span_context.trace_state.to_header()
        return carrier
    carrier = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def extract(carrier: Any) -> otel_context.Context | None:
    """The producer's context from a message's carrier; None when absent or unusable."""
    if not isinstance(carrier, dict) or not carrier:
        return None
    header = carrier.get(TRACEPARENT)
    if (
        type(header) is str
        and TRACESTATE not in carrier
        and BAGGAGE not in carrier
        and _is_default(propagate.get_global_textmap())
    ):
        match = _TRACEPARENT_V00.fullmatch(header)
        if match is not None:
            trace_id, span_id, flags = match.groups()
            remote = SpanContext(
                int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16))
            )
            if not remote.is_valid:
                return None
            return trace.set_span_in_context(NonRecordingSpan(remote), otel_context.Context())
    try:
        extracted = propagate.extract(carrier)
    except Exception:  # a foreign carrier never breaks processing
        return None
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted
