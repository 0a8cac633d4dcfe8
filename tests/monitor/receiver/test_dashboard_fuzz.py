"""The dashboard data API, fuzzed with schemathesis against a monitor with a filled store: no 5xx,
every error is JSON, and what the schema allows is accepted."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import schemathesis
from schemathesis.checks import allow_header_conformance, negative_data_rejection

from tasklens.brokers.base import QueueStats
from tasklens.monitor import MonitorSettings, create_app
from tasklens.monitor.store import RetentionPolicy, TelemetryStore, span_rows
from tests.monitor.conftest import AUTH, TOKEN
from tests.monitor.fake_broker import FAKE_URL, FakeInspector
from tests.monitor.store.spans import SpanFactory

#: The routes of the dashboard data API.
DASHBOARD_PATHS = r"^/api/(overview|actors|runs|traces|queues/history|processes)"

#: The Host schemathesis gives the requests it sends to an ASGI app.
ASGI_HOST = "testserver"


def filled_store(path: Path) -> None:
    store = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=None))
    spans = SpanFactory()
    for i in range(20):
        spans.run(f"actor_{i % 3}", f"queue_{i % 2}", error=ValueError("boom") if i % 4 == 0 else None)
    store.writer.write_spans(span_rows(spans.request()))
    store.close()


#: Removed when the test session's interpreter exits.
_STORE_DIRECTORY = tempfile.TemporaryDirectory(prefix="tasklens-fuzz-")


def fuzzed_app() -> object:
    path = Path(_STORE_DIRECTORY.name) / "telemetry.db"
    filled_store(path)
    inspector = FakeInspector()
    inspector.add_queue(QueueStats("queue_0", ready=3, delayed=2, in_flight=1, dead=0, oldest_age=1.0))
    settings = MonitorSettings(
        broker_url=FAKE_URL,
        auth_token=TOKEN,
        allowed_hosts=(ASGI_HOST,),
        cache_ttl=0.0,
        broker_timeout=2.0,
        store_path=str(path),
    )
    return create_app(settings, open_inspector=lambda: inspector)


schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app()).include(path_regex=DASHBOARD_PATHS)


@schema.parametrize()
@hypothesis.settings(max_examples=30, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_no_dashboard_request_gives_a_server_error(case: schemathesis.Case) -> None:
    # An empty filter (``queue=``) means no filter, as the web UI sends it; schemathesis also
    # writes an empty array that way and would count accepting it as accepting invalid data.
    response = case.call_and_validate(
        headers=AUTH, excluded_checks=[allow_header_conformance, negative_data_rejection]
    )

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()
