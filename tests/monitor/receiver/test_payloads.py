"""OTLP JSON bodies, partial success, and the bodies the receiver refuses without changing anything."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tasklens import semconv
from tasklens.monitor.ingest.receiver import JSON, PROTOBUF, OtlpReceiver, ReceiverLimits
from tasklens.monitor.store import RetentionPolicy, RunFilter, StoreReader, StoreWriter, TelemetryStore
from tests.monitor.receiver.conftest import Served, ServeFactory, served_receiver, serving
from tests.monitor.store.spans import SpanFactory

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def _json_traces(trace_id: str = TRACE_ID, span_id: str = SPAN_ID) -> dict[str, object]:
    start = time.time_ns() - 1_000_000_000
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-worker"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tasklens.dramatiq"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": "",
                                "name": "process reports",
                                "kind": 5,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 250_000_000),
                                "attributes": [
                                    {
                                        "key": semconv.MESSAGING_OPERATION_TYPE,
                                        "value": {"stringValue": "process"},
                                    },
                                    {
                                        "key": semconv.DRAMATIQ_ACTOR_NAME,
                                        "value": {"stringValue": "make_report"},
                                    },
                                    {
                                        "key": semconv.MESSAGING_DESTINATION_NAME,
                                        "value": {"stringValue": "reports"},
                                    },
                                    {"key": semconv.DRAMATIQ_MESSAGE_RETRIES, "value": {"intValue": "2"}},
                                ],
                                "status": {"code": 2, "message": "timed out"},
                                "unknownFieldFromTheFuture": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_json_spans_are_accepted_and_queryable(served: Served) -> None:
    response = httpx.post(f"{served.url}/v1/traces", json=_json_traces())

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {}
    assert served.store.writer.flush(timeout=10)
    (run,) = httpx.get(f"{served.url}/api/runs").json()["items"]
    assert (run["trace_id"], run["span_id"], run["actor"], run["queue"]) == (
        TRACE_ID,
        SPAN_ID,
        "make_report",
        "reports",
    )
    assert (run["status"], run["attempt"], run["service"]) == ("error", 3, "json-worker")
    assert run["duration"] == pytest.approx(0.25)


def test_gzip_json_is_accepted(served: Served) -> None:
    body = gzip.compress(json.dumps(_json_traces()).encode())

    response = httpx.post(
        f"{served.url}/v1/traces", content=body, headers={"Content-Type": JSON, "Content-Encoding": "gzip"}
    )

    assert response.status_code == 200
    assert served.store.writer.flush(timeout=10)
    assert httpx.get(f"{served.url}/api/traces/{TRACE_ID}").status_code == 200


def test_spans_with_invalid_ids_are_a_partial_success(served: Served) -> None:
    spans = SpanFactory()
    run = spans.run()
    request = spans.request()
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01\x02\x03"

    response = httpx.post(
        f"{served.url}/v1/traces", content=request.SerializeToString(), headers={"Content-Type": PROTOBUF}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "trace id" in answer.partial_success.error_message
    assert served.store.writer.flush(timeout=10)
    assert [
        span["name"] for span in httpx.get(f"{served.url}/api/traces/{run.trace_id}").json()["spans"]
    ] == ["process default"]


def test_json_partial_success_uses_the_json_mapping(served: Served) -> None:
    response = httpx.post(f"{served.url}/v1/traces", json=_json_traces(trace_id="00" * 16))

    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One receiver for every refused body: none of them may change what it stores."""
    limits = ReceiverLimits(max_body=64 * 1024, max_decompressed=1024 * 1024)
    with served_receiver(tmp_path_factory.mktemp("limited") / "t.db", limits=limits) as served:
        yield served


def _valid_body() -> bytes:
    spans = SpanFactory()
    spans.run()
    return spans.request().SerializeToString()


def _chunks(total: int) -> list[bytes]:
    """A body sent in chunks, without a ``Content-Length``."""
    return [b"\x0a" * 8192] * (total // 8192)


REFUSED = [
    pytest.param(PROTOBUF, None, b"\xff\xff\xff\xff", 400, id="malformed-protobuf"),
    pytest.param(PROTOBUF, None, _valid_body()[:-7], 400, id="truncated-protobuf"),
    pytest.param(JSON, None, b'{"resourceSpans": [', 400, id="malformed-json"),
    pytest.param(
        JSON,
        None,
        b'{"resourceSpans": 5, "resourceMetrics": 5, "resourceLogs": 5}',
        400,
        id="json-of-the-wrong-shape",
    ),
    pytest.param(JSON, None, b"[1, 2]", 400, id="json-not-an-object"),
    pytest.param(
        JSON, None, json.dumps(_json_traces(trace_id="zz" * 16)).encode(), 400, id="json-non-hex-id"
    ),
    pytest.param(PROTOBUF, "gzip", gzip.compress(_valid_body())[:-12], 400, id="truncated-gzip"),
    pytest.param(PROTOBUF, "gzip", _valid_body(), 400, id="not-gzip"),
    pytest.param(PROTOBUF, "gzip", gzip.compress(b"\x00" * (8 * 1024 * 1024)), 413, id="gzip-bomb"),
    pytest.param(PROTOBUF, None, b"\x0a" * (65 * 1024), 413, id="oversized"),
    pytest.param(PROTOBUF, None, _chunks(128 * 1024), 413, id="oversized-chunked"),
    pytest.param("text/plain", None, _valid_body(), 415, id="unsupported-content-type"),
    pytest.param(PROTOBUF, "br", _valid_body(), 415, id="unsupported-encoding"),
]


@pytest.mark.parametrize(("content_type", "encoding", "body", "status"), REFUSED)
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics", "/v1/logs"])
def test_refused_bodies_get_their_status_and_change_nothing(
    limited: Served, path: str, content_type: str, encoding: str | None, body: bytes, status: int
) -> None:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding

    response = httpx.post(f"{limited.url}{path}", content=body, headers=headers)

    assert response.status_code == status
    if response.headers["content-type"] == PROTOBUF:
        error = status_pb2.Status.FromString(response.content)
        assert (error.code, bool(error.message)) == (
            code_pb2.RESOURCE_EXHAUSTED if status == 413 else code_pb2.INVALID_ARGUMENT,
            True,
        )
    else:
        assert response.headers["content-type"] == JSON
        assert response.json()["message"]
    assert limited.store.writer.flush(timeout=10)
    assert limited.store.reader.runs(RunFilter())["items"] == []
    assert limited.store.reader.processes(3600)["items"] == []
    assert [family.name for family in limited.metrics.collect()] == ["tasklens_receiver_dropped_series"]


def test_a_store_that_is_behind_answers_503_with_retry_after(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "t.db", RetentionPolicy(), max_pending=1)  # never drains
    store = TelemetryStore(writer, StoreReader(tmp_path / "t.db"))
    app = FastAPI()
    app.include_router(OtlpReceiver(store, limits=ReceiverLimits(commit_timeout=0.2)).router())
    headers = {"Content-Type": PROTOBUF}
    try:
        with serving(app) as url:
            first = httpx.post(f"{url}/v1/traces", content=_valid_body(), headers=headers)
            # The first batch is still queued (its request gave up waiting): the queue is full.
            second = httpx.post(f"{url}/v1/traces", content=_valid_body(), headers=headers)
    finally:
        store.close()

    # Never committed, so never acknowledged.
    assert first.status_code == 503
    assert "did not commit" in status_pb2.Status.FromString(first.content).message
    assert second.status_code == 503
    assert "behind" in status_pb2.Status.FromString(second.content).message
    for response in (first, second):
        assert int(response.headers["retry-after"]) > 0
        assert status_pb2.Status.FromString(response.content).code == code_pb2.UNAVAILABLE


def test_an_export_is_answered_only_once_its_spans_are_committed(served: Served) -> None:
    spans = SpanFactory()
    made = [spans.run() for _ in range(50)]
    body = spans.request().SerializeToString()

    response = httpx.post(f"{served.url}/v1/traces", content=body, headers={"Content-Type": PROTOBUF})

    assert response.status_code == 200
    # No flush: a fresh reader connection sees every span as soon as the export is answered.
    reader = StoreReader(served.store.path)
    try:
        for run in made:
            assert reader.trace(run.trace_id) is not None
    finally:
        reader.close()


def test_a_span_no_store_holds_is_a_partial_success_and_costs_no_other_request(served: Served) -> None:
    spans = SpanFactory()
    good = [spans.run() for _ in range(3)]
    good_request = spans.request()
    spans.run()
    bad_request = spans.request()
    bad_request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**63

    bad = httpx.post(
        f"{served.url}/v1/traces", content=bad_request.SerializeToString(), headers={"Content-Type": PROTOBUF}
    )
    ok = httpx.post(
        f"{served.url}/v1/traces",
        content=good_request.SerializeToString(),
        headers={"Content-Type": PROTOBUF},
    )

    assert (bad.status_code, ok.status_code) == (200, 200)
    answer = ExportTraceServiceResponse.FromString(bad.content)
    assert answer.partial_success.rejected_spans == 1
    assert "out of range" in answer.partial_success.error_message
    assert served.store.writer.flush(timeout=10)
    for run in good:
        assert httpx.get(f"{served.url}/api/traces/{run.trace_id}").status_code == 200


def _nested_value(depth: int) -> str:
    """An OTLP JSON attribute value: a kvlist ``depth`` deep, written without recursion."""
    return '{"kvlistValue":{"values":[{"key":"k","value":' * depth + '{"stringValue":"x"}' + "}]}}" * depth


@pytest.mark.parametrize("depth", [60, 400, 10_000])
@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_deeply_nested_json_is_a_400_not_a_server_error(
    served: Served, caplog: pytest.LogCaptureFixture, signal: str, depth: int
) -> None:
    field = "resourceSpans" if signal == "traces" else "resourceLogs"
    body = f'{{"{field}":[{{"resource":{{"attributes":[{{"key":"a","value":{_nested_value(depth)}}}]}}}}]}}'

    response = httpx.post(f"{served.url}/v1/{signal}", content=body, headers={"Content-Type": JSON})

    assert response.status_code == 400
    assert "nested" in response.json()["message"] or "deep" in response.json()["message"]
    assert not [record for record in caplog.records if record.exc_info]


def test_a_request_that_does_not_fit_the_memory_budget_now_is_a_503(served: Served) -> None:
    budget = served.receiver.budget
    assert budget.take(budget.total)  # as if other requests held all of it
    try:
        response = httpx.post(
            f"{served.url}/v1/traces", content=_valid_body(), headers={"Content-Type": PROTOBUF}
        )
    finally:
        budget.give_back(budget.total)

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert status_pb2.Status.FromString(response.content).code == code_pb2.UNAVAILABLE
    assert budget.used == 0


def test_a_request_that_could_never_fit_the_memory_budget_is_a_413(serve: ServeFactory) -> None:
    served = serve(limits=ReceiverLimits(memory_budget=256 * 1024))
    spans = SpanFactory()
    for _ in range(100):
        spans.run()
    body = spans.request().SerializeToString()
    assert len(body) * 16 > 256 * 1024

    response = httpx.post(f"{served.url}/v1/traces", content=body, headers={"Content-Type": PROTOBUF})

    assert response.status_code == 413
    assert "memory budget" in status_pb2.Status.FromString(response.content).message
    assert served.receiver.budget.used == 0


@pytest.mark.parametrize("field", ["parent", "link-trace", "link-span"])
def test_spans_whose_parent_or_link_ids_have_the_wrong_length_are_a_partial_success(
    served: Served, field: str
) -> None:
    spans = SpanFactory()
    kept, refused = spans.run(), spans.run()
    request = spans.request()
    for span in request.resource_spans[0].scope_spans[0].spans:
        if span.trace_id.hex() != refused.trace_id:
            continue
        if field == "parent":
            span.parent_span_id = b"\x01\x02\x03"
        else:
            link = span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
            if field == "link-trace":
                link.trace_id = b"\x01" * 15
            else:
                link.span_id = b"\x02" * 9

    response = httpx.post(
        f"{served.url}/v1/traces", content=request.SerializeToString(), headers={"Content-Type": PROTOBUF}
    )

    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2  # the send span and the process span of the trace
    assert "wrong length" in partial.error_message
    assert httpx.get(f"{served.url}/api/traces/{kept.trace_id}").status_code == 200
