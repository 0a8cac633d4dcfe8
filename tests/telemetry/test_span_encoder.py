"""The fast span encoder produces exactly the stock encoder's request, for any span."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from tasklens.telemetry.span_encoder import encode_spans
from tasklens.telemetry.span_exporter import FastOTLPSpanExporter
from tests.otlp_receiver import OtlpReceiver

texts = st.text(max_size=12)
scalars = st.one_of(
    texts,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
values = st.one_of(
    scalars,
    st.lists(texts, max_size=3).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3).map(tuple),
    st.lists(st.booleans(), max_size=3).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=3).map(tuple),
)
attributes = st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=6)
contexts = st.builds(
    lambda trace_id, span_id, remote, state: SpanContext(
        trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(1), trace_state=TraceState(state)
    ),
    st.integers(min_value=1, max_value=2**128 - 1),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(["a", "vendor", "k9"]), st.sampled_from(["1", "xyz"])), max_size=2),
)
span_specs = st.fixed_dictionaries(
    {
        "name": texts,
        "kind": st.sampled_from(list(SpanKind)),
        "attributes": attributes,
        "events": st.lists(st.tuples(texts, attributes), max_size=3),
        "links": st.lists(st.tuples(contexts, attributes), max_size=2),
        "parent": st.one_of(st.none(), contexts),
        "status": st.one_of(
            st.just(Status(StatusCode.UNSET)),
            st.just(Status(StatusCode.OK)),
            texts.map(lambda d: Status(StatusCode.ERROR, d)),
        ),
        "scope": st.sampled_from(
            [("tasklens.dramatiq", "0.1.0", "https://opentelemetry.io/schemas/1.37.0"), ("user", None, None)]
        ),
        "resource": st.sampled_from([0, 1]),
    }
)

RESOURCES = [
    Resource.create({"service.name": "billing", "service.instance.id": "a1"}),
    Resource(
        {"service.name": "other", "deployment.environment": "test", "numbers": (1, 2)}, "https://example/s"
    ),
]


EXPORTER = InMemorySpanExporter()
#: Small limits, so that dropped attributes, events and links are encoded too.
LIMITS = SpanLimits(max_attributes=5, max_events=2, max_links=1)
PROVIDERS = [TracerProvider(resource=resource, span_limits=LIMITS) for resource in RESOURCES]
for _provider in PROVIDERS:
    _provider.add_span_processor(SimpleSpanProcessor(EXPORTER))


def _make_spans(specs: list[dict]) -> list[ReadableSpan]:
    EXPORTER.clear()
    for spec in specs:
        name, version, schema = spec["scope"]
        tracer = PROVIDERS[spec["resource"]].get_tracer(name, version, schema_url=schema)
        parent = set_span_in_context(NonRecordingSpan(spec["parent"])) if spec["parent"] else None
        span = tracer.start_span(
            spec["name"],
            context=parent,
            kind=spec["kind"],
            attributes=spec["attributes"],
            links=[Link(context, attrs) for context, attrs in spec["links"]],
        )
        for event_name, event_attributes in spec["events"]:
            span.add_event(event_name, event_attributes)
        span.set_status(spec["status"])
        span.end()
    return list(EXPORTER.get_finished_spans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(span_specs, min_size=1, max_size=6))
def test_request_equals_the_stock_encoders(specs: list[dict]) -> None:
    spans = _make_spans(specs)
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == stock_encode(spans)


def test_repeated_batches_reuse_cached_bytes_and_stay_equal() -> None:
    spec = {
        "name": "process default",
        "kind": SpanKind.CONSUMER,
        "attributes": {
            "messaging.system": "dramatiq",
            "messaging.message.id": "m1",
            "dramatiq.message.retries": 0,
        },
        "events": [("dramatiq.retry.scheduled", {"dramatiq.retry.count": 1})],
        "links": [],
        "parent": None,
        "status": Status(StatusCode.ERROR, "boom"),
        "scope": ("tasklens.dramatiq", "0.1.0", None),
        "resource": 0,
    }
    for _ in range(3):
        spans = _make_spans(
            [spec, {**spec, "attributes": {**spec["attributes"], "messaging.message.id": "m2"}}]
        )
        assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == stock_encode(spans)


@pytest.fixture
def receivers() -> Iterator[tuple[OtlpReceiver, OtlpReceiver]]:
    with OtlpReceiver() as first, OtlpReceiver() as second:
        yield first, second


def test_exporter_delivers_what_the_stock_exporter_delivers(
    receivers: tuple[OtlpReceiver, OtlpReceiver],
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = _make_spans(
        [
            {
                "name": f"process q{n}",
                "kind": SpanKind.CONSUMER,
                "attributes": {"messaging.destination.name": f"q{n}", "n": n},
                "events": [("exception", {"exception.type": "ValueError"})],
                "links": [],
                "parent": None,
                "status": Status(StatusCode.ERROR, "bad"),
                "scope": ("tasklens.dramatiq", "0.1.0", None),
                "resource": n % 2,
            }
            for n in range(20)
        ]
    )
    from opentelemetry.sdk.trace.export import SpanExportResult

    fast_receiver, stock_receiver = receivers
    fast = FastOTLPSpanExporter(endpoint=f"{fast_receiver.endpoint}/v1/traces")
    stock = OTLPSpanExporter(endpoint=f"{stock_receiver.endpoint}/v1/traces")
    assert fast.export(spans) is SpanExportResult.SUCCESS
    assert stock.export(spans) is SpanExportResult.SUCCESS
    for receiver in receivers:
        assert receiver.wait_for(lambda r: len(r.spans()) == 20, timeout=10)
    by_id = lambda r: sorted(r.spans(), key=lambda s: s.span_id)  # noqa: E731
    assert by_id(fast_receiver) == by_id(stock_receiver)


def test_exporter_reports_failure_when_the_endpoint_refuses() -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans = _make_spans(
        [
            {
                "name": "x",
                "kind": SpanKind.INTERNAL,
                "attributes": {},
                "events": [],
                "links": [],
                "parent": None,
                "status": Status(StatusCode.UNSET),
                "scope": ("user", None, None),
                "resource": 0,
            }
        ]
    )
    exporter = FastOTLPSpanExporter(endpoint="http://127.0.0.1:1/v1/traces", timeout=1)
    assert exporter.export(spans) is SpanExportResult.FAILURE


@pytest.mark.parametrize(
    ("name", "fast"), [("tasklens_otlp", True), ("otlp", True), ("otlp_proto_http", False)]
)
def test_chosen_by_exporter_name(
    receivers: tuple[OtlpReceiver, OtlpReceiver], monkeypatch: pytest.MonkeyPatch, name: str, fast: bool
) -> None:
    """setup()'s ``otlp`` and ``tasklens_otlp`` use the encoder; ``otlp_proto_http`` is the SDK's own."""
    from tasklens.telemetry import span_exporter
    from tasklens.telemetry.providers import build_resource, build_tracer_provider
    from tasklens.telemetry.settings import TelemetrySettings

    receiver, _ = receivers
    batches: list[int] = []

    def counting_encode(spans: list[ReadableSpan]) -> bytes:
        batches.append(len(spans))
        return encode_spans(spans)

    monkeypatch.setattr(span_exporter, "encode_spans", counting_encode)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.endpoint}/v1/traces")
    settings = TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": name})
    provider = build_tracer_provider(settings, build_resource(settings))
    provider.get_tracer("test").start_span("chosen by name").end()
    provider.force_flush()
    assert receiver.wait_for(lambda r: [s.name for s in r.spans()] == ["chosen by name"], timeout=10)
    assert batches == ([1] if fast else [])
    provider.shutdown()
