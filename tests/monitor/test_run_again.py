"""Running a failed Celery task again from the monitor: a real Celery worker on Redis sends its
spans (arguments captured) to a real ``tasklens monitor`` with a store; the action republishes
the failed task once, through Celery, and the new run is in the failed run's trace."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.celery_fixtures import wait_for
from tests.monitor.celery_fleet import AUTH, Fleet, run_again, send
from tests.monitor.celery_fleet import celery_fleet as celery_fleet  # the fixture

pytestmark = pytest.mark.redis

#: Concurrent clicks on one failed run.
CLICKS = 8


@pytest.fixture(scope="module")
def fleet(celery_fleet: Fleet) -> Fleet:
    return celery_fleet


def test_without_the_token_it_is_refused_and_nothing_runs(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:refused"
    send(fleet, "flaky", key, 1)
    run = fleet.failed_run("flaky", key)
    for headers in (None, {"Authorization": "Bearer wrong"}):
        response = run_again(fleet, run, headers)
        assert response.status_code == 401
        assert "token" in response.json()["error"]
    # A marker task after: once it ran, a republished task would have too.
    marker = f"{fleet.prefix}:marker-refused"
    send(fleet, "flaky", marker, 1)
    wait_for(lambda: fleet.runs.llen(marker) == 1, "the marker task")
    assert fleet.runs.lrange(key, 0, -1) == [b"1"]


def test_run_again_republishes_the_task_with_its_arguments_in_the_failed_runs_trace(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:again"
    send(fleet, "flaky", key, 7, label="seven")
    run = fleet.failed_run("flaky", key)

    response = run_again(fleet, run)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["task"], body["queue"]) == ("flaky", fleet.app.queue)

    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again")
    assert fleet.runs.lrange(key, 0, -1) == [b"7", b"7"]

    def new_run() -> dict[str, Any] | None:
        trace = httpx.get(f"{fleet.monitor}/api/traces/{run['trace_id']}", headers=AUTH).json()
        return next(
            (
                span
                for span in trace["spans"]
                if span["kind"] == "CONSUMER"
                and span["attributes"].get("messaging.message.id") == body["task_id"]
            ),
            None,
        )

    span = wait_for(new_run, "the new run in the failed run's trace")
    assert span["status"] != "ERROR"
    assert '"label":"seven"' in span["attributes"]["celery.task.args"]

    again = run_again(fleet, run)
    assert again.status_code == 409
    assert body["task_id"] in again.json()["error"]


def test_concurrent_double_clicks_publish_once(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:clicks"
    send(fleet, "flaky", key, 3)
    run = fleet.failed_run("flaky", key)

    with ThreadPoolExecutor(CLICKS) as pool:
        statuses = sorted(
            response.status_code for response in pool.map(lambda _: run_again(fleet, run), range(CLICKS))
        )
    assert statuses == [200] + [409] * (CLICKS - 1)

    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again")
    marker = f"{fleet.prefix}:marker-clicks"
    send(fleet, "flaky", marker, 1)
    wait_for(lambda: fleet.runs.llen(marker) == 1, "the marker task")
    assert fleet.runs.llen(key) == 2


def test_runs_whose_arguments_cannot_be_replayed_are_refused_with_the_reason(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:secret"
    send(fleet, "secretive", key, password="hunter2")
    run = fleet.failed_run("secretive", key)
    response = run_again(fleet, run)
    assert response.status_code == 409
    assert "redacted" in response.json()["error"]

    ok_key = f"{fleet.prefix}:ok"
    send(fleet, "flaky", ok_key, 1)
    send(fleet, "flaky", ok_key, 2)  # the second run of the key succeeds
    wait_for(lambda: fleet.runs.llen(ok_key) == 2, "two runs")
    succeeded = wait_for(
        lambda: next(
            iter(
                httpx.get(
                    f"{fleet.monitor}/api/runs", params={"actor": "flaky", "status": "ok"}, headers=AUTH
                ).json()["items"]
            ),
            None,
        ),
        "a successful run in the monitor",
    )
    response = run_again(fleet, succeeded)
    assert response.status_code == 409
    assert "did not fail" in response.json()["error"]

    missing = run_again(fleet, {"trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "1"})
    assert missing.status_code == 404
    assert httpx.post(f"{fleet.monitor}/api/runs/xyz/abc/run-again", headers=AUTH).status_code == 422


def test_the_action_is_in_the_openapi_schema_behind_the_token(fleet: Fleet) -> None:
    schema = httpx.get(f"{fleet.monitor}/openapi.json", headers=AUTH).json()
    operation = schema["paths"]["/api/runs/{trace_id}/{span_id}/run-again"]["post"]
    assert {} not in operation.get("security", [])
    assert "409" in operation["responses"]


def test_without_an_app_the_task_goes_through_an_app_made_for_the_broker_url(
    fleet: Fleet, redis_url: str
) -> None:
    from tasklens.monitor.http.run_again import CelerySender, FailedRun
    from tasklens.monitor.settings import MonitorSettings

    key = f"{fleet.prefix}:bare"
    settings = MonitorSettings(
        broker_url=redis_url, library="celery", transport_options={"global_keyprefix": fleet.app.prefix}
    )
    sender = CelerySender(settings)
    failed = FailedRun(
        trace_id="ab" * 16, span_id="cd" * 8, task="flaky", queue=fleet.app.queue, args=[key, 4], kwargs={}
    )
    try:
        sender.send(failed, "bare-run-again-1")
        sender.send(failed, "bare-run-again-2")
    finally:
        sender.close()
    wait_for(lambda: fleet.runs.llen(key) == 2, "both tasks to run on the worker")

    def runs_in_the_given_trace() -> list[dict[str, Any]]:
        trace = httpx.get(f"{fleet.monitor}/api/traces/{'ab' * 16}", headers=AUTH)
        spans = trace.json()["spans"] if trace.status_code == 200 else []
        found = [s for s in spans if s["kind"] == "CONSUMER"]
        return found if len(found) == 2 else []

    spans = wait_for(runs_in_the_given_trace, "the two runs, children of the given span")
    assert {span["parent_span_id"] for span in spans} == {"cd" * 8}
    assert {span["attributes"]["messaging.message.id"] for span in spans} == {
        "bare-run-again-1",
        "bare-run-again-2",
    }
