"""With ``--forward``, what the receiver accepts reaches the upstream; a down upstream costs nothing."""

from __future__ import annotations

import gzip
import socket

import httpx

from tasklens.monitor.ingest.forwarder import OtlpForwarder
from tasklens.monitor.ingest.receiver import PROTOBUF
from tasklens.monitor.store import RunFilter
from tests.monitor.receiver.conftest import ServeFactory
from tests.monitor.store.spans import SpanFactory


def test_accepted_payloads_are_forwarded_as_received_and_refused_ones_are_not(serve: ServeFactory) -> None:
    upstream = serve("upstream.db")
    forwarder = OtlpForwarder(upstream.url)
    forwarder.start()
    local = serve("local.db", forwarder=forwarder)
    spans = SpanFactory()
    plain = spans.run()
    plain_body = spans.request().SerializeToString()
    zipped = spans.run()
    zipped_body = gzip.compress(spans.request().SerializeToString())

    refused = httpx.post(f"{local.url}/v1/traces", content=b"\xff\xff", headers={"Content-Type": PROTOBUF})
    first = httpx.post(f"{local.url}/v1/traces", content=plain_body, headers={"Content-Type": PROTOBUF})
    second = httpx.post(
        f"{local.url}/v1/traces",
        content=zipped_body,
        headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
    )
    forwarder.close(timeout=10)

    assert (refused.status_code, first.status_code, second.status_code) == (400, 200, 200)
    assert (forwarder.stats.forwarded, forwarder.stats.failed, forwarder.stats.dropped) == (2, 0, 0)
    assert upstream.store.writer.flush(timeout=10)
    forwarded = {item["trace_id"] for item in upstream.store.reader.runs(RunFilter())["items"]}
    assert forwarded == {plain.trace_id, zipped.trace_id}


def test_an_unreachable_upstream_never_fails_ingest(serve: ServeFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    forwarder = OtlpForwarder(f"http://127.0.0.1:{closed_port}", queue_size=1, timeout=2)
    forwarder.start()
    local = serve(forwarder=forwarder)
    spans = SpanFactory()
    made = [spans.run().trace_id for _ in range(5)]
    body = spans.request().SerializeToString()

    statuses = [
        httpx.post(f"{local.url}/v1/traces", content=body, headers={"Content-Type": PROTOBUF}).status_code
        for _ in range(5)
    ]
    forwarder.close(timeout=10)

    assert statuses == [200] * 5
    assert forwarder.stats.forwarded == 0
    assert forwarder.stats.failed + forwarder.stats.dropped == 5
    assert local.store.writer.flush(timeout=10)
    assert {item["trace_id"] for item in local.store.reader.runs(RunFilter())["items"]} == set(made)
