"""The experimental span encoder produces the same OTLP request as the stock one."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.span_encoder import MAX_VALUES_PER_KEY, SpanEncoder
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceState


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, batch: Any) -> SpanExportResult:
        self.spans.extend(batch)
        return SpanExportResult.SUCCESS


def _provider(resource: Resource | None = None) -> tuple[TracerProvider, _Keep]:
    keep = _Keep()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "enc"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    return provider, keep


def _assert_same(spans: list[Any], encoder: SpanEncoder | None = None) -> None:
    stock = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    ours = ExportTraceServiceRequest.FromString((encoder or SpanEncoder()).encode(spans))
    assert ours == stock


def test_every_optional_part_of_a_span() -> None:
    provider, keep = _provider()
    tracer = provider.get_tracer("scope", "1.2", schema_url="https://opentelemetry.io/schemas/1.26.0")
    parent = tracer.start_span("parent", kind=SpanKind.SERVER)
    remote = trace.SpanContext(
        0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1), trace_state=TraceState([("k", "v")])
    )
    child = tracer.start_span(
        "child",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.CONSUMER,
        attributes={
            "s": "é",
            "b": False,
            "i": -(2**40),
            "f": 0.25,
            "ints": (1, -2, 3),
            "strs": ("a", ""),
            "empty": "",
        },
        links=[Link(parent.get_span_context(), {"why": "because"}), Link(remote)],
    )
    child.add_event("retry", {"count": 2})
    child.add_event("bare")
    child.set_status(Status(StatusCode.ERROR, "broken"))
    child.end()
    parent.set_status(Status(StatusCode.OK))
    parent.end()
    plain = provider.get_tracer("other").start_span("plain", kind=SpanKind.PRODUCER)
    plain.end()

    _assert_same(keep.spans)


def test_spans_from_several_resources_in_one_batch() -> None:
    spans = []
    for name in ("a", "b"):
        provider, keep = _provider(Resource.create({"service.name": name}))
        for kind in (SpanKind.INTERNAL, SpanKind.CLIENT):
            provider.get_tracer(name).start_span("op", kind=kind).end()
        spans += keep.spans
    _assert_same(spans)


@pytest.mark.parametrize("spans", [1, MAX_VALUES_PER_KEY + 50])
def test_high_cardinality_attributes_stay_correct_after_the_cache_gives_up(spans: int) -> None:
    provider, keep = _provider()
    tracer = provider.get_tracer("scope")
    for n in range(spans):
        tracer.start_span("op", attributes={"id": f"message-{n}", "queue": "q", "n": n}).end()
    encoder = SpanEncoder()
    _assert_same(keep.spans, encoder)
    _assert_same(keep.spans, encoder)  # again, now from the caches
