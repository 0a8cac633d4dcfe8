"""No span, log record or data point carries more than the limits; what was cut is reported."""

from __future__ import annotations

import time

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tasklens.monitor.ingest.attribute_limits import (
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_VALUE_LENGTH,
    AttributeLimits,
)
from tasklens.monitor.ingest.receiver import PROTOBUF
from tests.monitor.receiver.conftest import Served

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def _post(served: Served, signal: str, request: object) -> httpx.Response:
    return httpx.post(
        f"{served.url}/v1/{signal}",
        content=request.SerializeToString(),  # type: ignore[attr-defined]
        headers={"Content-Type": PROTOBUF},
        timeout=60,
    )


def _huge_span() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    now = time.time_ns()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=TRACE_ID,
            span_id=bytes.fromhex("b7ad6b7169203331"),
            name="process huge",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
        )
    )
    for index in range(100_000):
        span.attributes.add(key=f"attribute.{index}").value.int_value = index
    span.attributes[0].value.string_value = "x" * 1_000_000
    span.attributes.add(key="k" * 10_000).value.string_value = "long key"
    for index in range(1000):
        span.events.add(name=f"event {index}", time_unix_nano=now)
    return request


def test_a_span_with_a_hundred_thousand_attributes_is_kept_within_the_limits(served: Served) -> None:
    response = _post(served, "traces", _huge_span())

    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 0
    assert "99873 attribute(s) over the limit of 128" in partial.error_message
    assert "1 value(s) cut to 4096 characters" in partial.error_message
    assert "872 event(s) over the limit of 128" in partial.error_message
    (span,) = httpx.get(f"{served.url}/api/traces/{TRACE_ID.hex()}").json()["spans"]
    assert len(span["attributes"]) == DEFAULT_MAX_ATTRIBUTES
    assert span["attributes"]["attribute.0"] == "x" * DEFAULT_MAX_VALUE_LENGTH
    assert len(span["events"]) == DEFAULT_MAX_ATTRIBUTES


def test_a_log_record_body_and_attributes_are_cut_to_the_limits(served: Served) -> None:
    request = ExportLogsServiceRequest()
    record = (
        request.resource_logs.add()
        .scope_logs.add()
        .log_records.add(time_unix_nano=time.time_ns(), trace_id=TRACE_ID)
    )
    record.body.string_value = "y" * 100_000
    for index in range(1000):
        record.attributes.add(key=f"a{index}").value.bool_value = True

    response = _post(served, "logs", request)

    assert response.status_code == 200
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 0
    assert "872 attribute(s)" in partial.error_message
    (log,) = httpx.get(f"{served.url}/api/traces/{TRACE_ID.hex()}").json()["logs"]
    assert log["body"] == "y" * DEFAULT_MAX_VALUE_LENGTH
    assert len(log["attributes"]) == DEFAULT_MAX_ATTRIBUTES


def test_nested_values_are_cut_at_every_level_and_counted_on_the_item() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    array = span.attributes.add(key="list").value.array_value
    for index in range(500):
        array.values.add().string_value = "z" * 5000 if index == 0 else "ok"
    kvlist = span.attributes.add(key="map").value.kvlist_value
    for index in range(300):
        kvlist.values.add(key=f"k{index}").value.int_value = index

    dropped = AttributeLimits().apply(request)

    assert len(span.attributes[0].value.array_value.values) == DEFAULT_MAX_ATTRIBUTES
    assert len(span.attributes[0].value.array_value.values[0].string_value) == DEFAULT_MAX_VALUE_LENGTH
    assert len(span.attributes[1].value.kvlist_value.values) == DEFAULT_MAX_ATTRIBUTES
    assert (dropped.attributes, dropped.values) == (500 - 128 + 300 - 128, 1)
    # Items cut from inside a value are not attributes of the span: its own count stays.
    assert span.dropped_attributes_count == 0


def test_a_request_within_the_limits_gets_no_note(served: Served) -> None:
    request = ExportTraceServiceRequest()
    now = time.time_ns()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=TRACE_ID,
            span_id=b"\x01" * 8,
            name="small",
            start_time_unix_nano=now,
            end_time_unix_nano=now,
        )
    )
    span.attributes.add(key="a").value.string_value = "b"

    response = _post(served, "traces", request)

    assert response.status_code == 200
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
