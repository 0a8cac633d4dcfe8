"""Whatever workers send, a scrape of /metrics parses, and its series stay bounded."""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasklens import semconv
from tasklens.monitor.ingest.received_metrics import MAX_SERIES_PER_METRIC, ReceivedMetrics, label_name
from tasklens.monitor.ingest.receiver import PROTOBUF
from tests.monitor.processes import require_program
from tests.monitor.receiver.conftest import Served

CONSUMED = "messaging_client_consumed_messages_total"
DROPPED = "tasklens_receiver_dropped_series_total"


def _counter_request(points: list[dict[str, Any]], instance: str = "w1") -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    for key, value in (("service.name", "billing-worker"), ("service.instance.id", instance)):
        resource_metrics.resource.attributes.add(key=key).value.string_value = value
    metric = resource_metrics.scope_metrics.add().metrics.add(name=semconv.CONSUMED_MESSAGES.name)
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    now = time.time_ns()
    for attributes in points:
        point = metric.sum.data_points.add(start_time_unix_nano=now - 10**9, time_unix_nano=now, as_int=1)
        for key, value in attributes.items():
            point.attributes.add(key=key).value.string_value = value
    return request


def _export(url: str, request: ExportMetricsServiceRequest, deadline: float = 60.0) -> None:
    """Send ``request`` as the SDK's exporter does: again after a 503 (store behind), never after
    any other answer; it must end in a 200."""
    body = request.SerializeToString()
    give_up = time.monotonic() + deadline
    while True:
        response = httpx.post(
            f"{url}/v1/metrics", content=body, headers={"Content-Type": PROTOBUF}, timeout=60
        )
        if response.status_code != 503 or time.monotonic() > give_up:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))  # the backoff it asks for
    assert response.status_code == 200, response.text


def _scrape(metrics: ReceivedMetrics) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return generate_latest(registry).decode()


def _check_with_promtool(text: str) -> None:
    promtool = require_program("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # promtool exits 1 for lint advice alone; an exposition it cannot parse says "error parsing".
    assert "error parsing" not in result.stdout + result.stderr, result.stdout + result.stderr


HOSTILE_KEYS = {
    "__name__": "x",
    "__meta_reserved": "m",
    "": "empty",
    "with space": "a",
    'quo"te': 'b"\n\\',
    "9lives": "c",
    "le": "d",
    "service.name": "e",
    "a.b": "1",
    "a_b": "2",
    "ünïcode": "u",
}


def test_hostile_attribute_keys_become_valid_labels_and_the_scrape_parses(served: Served) -> None:
    response = httpx.post(
        f"{served.url}/v1/metrics",
        content=_counter_request([HOSTILE_KEYS]).SerializeToString(),
        headers={"Content-Type": PROTOBUF},
    )
    assert response.status_code == 200

    text = _scrape(served.metrics)

    (sample,) = [
        s for family in text_string_to_metric_families(text) for s in family.samples if s.name == CONSUMED
    ]
    assert sample.labels == {
        "key__name__": "x",
        "key__meta_reserved": "m",
        "with_space": "a",
        "quo_te": 'b"\n\\',
        "key_9lives": "c",
        "key_le": "d",
        "key_service_name": "e",
        "a_b": "1;2",
        "_n_code": "u",
        "service_name": "billing-worker",
    }
    _check_with_promtool(text)


@pytest.mark.parametrize(("key", "label"), [("http.route", "http_route"), ("__x", "key__x"), ("", None)])
def test_label_names(key: str, label: str | None) -> None:
    assert label_name(key) == label


def test_series_beyond_the_limit_are_dropped_counted_and_logged_once(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    points = [{"task.id": str(index)} for index in range(20_000)]
    for instance in ("w1", "w2"):
        _export(served.url, _counter_request(points, instance))

    text = _scrape(served.metrics)

    samples = {
        (s.name, s.labels.get("task_id")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert len([key for key in samples if key[0] == CONSUMED]) == MAX_SERIES_PER_METRIC
    # The series kept sum both processes; every point of the others is counted as dropped.
    assert samples[(CONSUMED, "0")] == 2
    assert samples[(DROPPED, None)] == 2 * (20_000 - MAX_SERIES_PER_METRIC)
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "Dropping new series" in r.message
    ]
    assert len(warnings) == 1
    _check_with_promtool(text)
