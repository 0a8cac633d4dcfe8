"""propagation: the carrier the default W3C propagator would write and read, and the global one otherwise."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tasklens.messaging import propagation

tracer = TracerProvider().get_tracer("test")


def _stock_inject(span: trace.Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _stock_extract(carrier: object) -> SpanContext | None:
    """What the global propagator makes of ``carrier``: the remote span context, or None."""
    if not isinstance(carrier, dict) or not carrier:
        return None
    try:
        span_context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    except Exception:
        return None
    return span_context if span_context.is_valid else None


def _extracted(carrier: object) -> SpanContext | None:
    context = propagation.extract(carrier)
    return None if context is None else trace.get_current_span(context).get_span_context()


def _same(a: SpanContext | None, b: SpanContext | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.trace_id, a.span_id, a.trace_flags, a.is_remote, a.trace_state.to_header()) == (
        b.trace_id,
        b.span_id,
        b.trace_flags,
        b.is_remote,
        b.trace_state.to_header(),
    )


def test_the_default_propagator_is_the_one_in_use() -> None:
    textmap = propagate.get_global_textmap()
    assert isinstance(textmap, CompositePropagator)


def test_inject_writes_what_the_global_propagator_writes() -> None:
    rng = random.Random(7)
    for flags in (0, 1):
        for _ in range(200):
            remote = SpanContext(
                rng.getrandbits(128) or 1,
                rng.getrandbits(64) or 1,
                is_remote=False,
                trace_flags=TraceFlags(flags),
            )
            span = NonRecordingSpan(remote)
            assert propagation.inject(span) == _stock_inject(span)
    with tracer.start_span("recorded") as span:
        assert propagation.inject(span) == _stock_inject(span)
        assert set(propagation.inject(span)) == {"traceparent"}


def test_inject_carries_tracestate_and_nothing_for_an_invalid_span() -> None:
    state = TraceState([("vendor", "value"), ("other", "1")])
    span = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1), trace_state=state))
    carrier = propagation.inject(span)
    assert carrier == _stock_inject(span)
    assert carrier["tracestate"] == "vendor=value,other=1"
    assert propagation.inject(trace.INVALID_SPAN) == {} == _stock_inject(trace.INVALID_SPAN)


def test_baggage_goes_through_the_global_propagator() -> None:
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_span("with baggage") as span:
            carrier = propagation.inject(span)
            assert carrier == _stock_inject(span)
            assert carrier["baggage"] == "tenant=acme"
    finally:
        otel_context.detach(token)
    extracted = propagation.extract(carrier)
    assert extracted is not None and baggage.get_baggage("tenant", extracted) == "acme"


def _carriers() -> Iterator[object]:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    yield {"traceparent": good}
    yield {"traceparent": good.replace("-01", "-00")}
    yield {"traceparent": good, "tracestate": "vendor=value"}
    yield {"traceparent": good, "tracestate": "not a valid state !!"}
    yield {"traceparent": good, "unrelated": "header"}
    yield {"traceparent": "  " + good}
    yield {"traceparent": good + "  "}
    yield {"traceparent": good + "-extra"}
    yield {"traceparent": "01" + good[2:] + "-future-fields"}
    yield {"traceparent": "ff" + good[2:]}
    yield {"traceparent": good.upper()}
    yield {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"}
    yield {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"}
    yield {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033_1-01"}
    yield {"traceparent": "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    yield {"traceparent": good[:-1]}
    yield {"traceparent": ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]}
    yield {"traceparent": 42}
    yield {"traceparent": ""}
    yield {"traceparent": "x" * 600}
    yield {"tracestate": "vendor=value"}
    yield {}
    yield None
    yield "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    yield ["traceparent"]
    rng = random.Random(11)
    alphabet = "0123456789abcdefABCDEF- _x"
    for _ in range(500):
        chars = list(good)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        yield {"traceparent": "".join(chars)}


@pytest.mark.parametrize("carrier", list(_carriers()), ids=repr)
def test_extract_accepts_and_rejects_what_the_global_propagator_does(carrier: object) -> None:
    assert _same(_extracted(carrier), _stock_extract(carrier))


def test_an_extracted_context_is_a_remote_parent_and_nothing_else() -> None:
    context = propagation.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert span_context.is_remote and span_context.trace_flags.sampled
    assert format(span_context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert dict(baggage.get_all(context)) == {}


class _OnlyTraceIdHeader(TextMapPropagator):
    """A propagator of its own: writes and reads ``x-trace`` only."""

    def inject(self, carrier, context=None, setter=None):  # type: ignore[no-untyped-def]
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            carrier["x-trace"] = f"{span_context.trace_id:x}:{span_context.span_id:x}"

    def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
        value = carrier.get("x-trace")
        if not value:
            return context or otel_context.Context()
        trace_id, span_id = (int(part, 16) for part in value.split(":"))
        remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
        return trace.set_span_in_context(NonRecordingSpan(remote), context or otel_context.Context())

    @property
    def fields(self) -> set[str]:
        return {"x-trace"}


@pytest.fixture
def custom_propagator() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(_OnlyTraceIdHeader())
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


@pytest.mark.usefixtures("custom_propagator")
def test_another_global_propagator_writes_and_reads_the_carrier() -> None:
    with tracer.start_span("custom") as span:
        carrier = propagation.inject(span)
    assert set(carrier) == {"x-trace"}
    extracted = _extracted(carrier)
    assert extracted is not None and extracted.span_id == span.get_span_context().span_id
    # A W3C header means nothing to that propagator.
    assert (
        propagation.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        is None
    )


def test_tracecontext_alone_is_not_the_default_and_still_works() -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    try:
        with tracer.start_span("w3c only") as span:
            carrier = propagation.inject(span)
        assert _same(_extracted(carrier), _stock_extract(carrier))
        assert _extracted(carrier) is not None
    finally:
        propagate.set_global_textmap(previous)
