"""The monitor on a real Celery broker (Redis): a real Prometheus stores what the broker holds,
and the REST API, /readyz and /api/health say the same."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.celery_fixtures import celery_redis_truth
from tests.monitor.processes import free_port, require_program, running_monitor, stop, wait_for_http
from tests.monitor.test_prometheus import QUERY_DEADLINE, prometheus_config, query

#: The labels of every Celery series of a queue.
CELERY = 'messaging_system="celery"'


def test_prometheus_api_and_health_hold_what_the_broker_holds(
    redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    prometheus = require_program("prometheus")
    with (
        celery_redis_truth(redis_url, unique_name, tmp_path) as truth,
        running_monitor(
            "--broker", truth.app.url, "--transport-option", truth.transport_option, "--cache-ttl", "0.5"
        ) as monitor_url,
    ):
        queues = httpx.get(f"{monitor_url}/api/queues", timeout=10).json()
        workers = httpx.get(f"{monitor_url}/api/workers", timeout=10).json()
        ready = httpx.get(f"{monitor_url}/readyz", timeout=10)
        health = httpx.get(f"{monitor_url}/api/health", timeout=10).json()
        openapi = httpx.get(f"{monitor_url}/openapi.json", timeout=10).json()

        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(monitor_url.removeprefix("http://")))
        port = free_port()
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        prometheus_url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{prometheus_url}/-/ready", process)
            depths = {
                queue: _stored(
                    prometheus_url,
                    f'tasklens_queue_depth{{{CELERY},messaging_destination_name="{queue}"}}',
                    "state",
                    3,
                )
                for queue in (truth.app.queue, truth.prio_queue)
            }
            steps = _stored(
                prometheus_url,
                f'tasklens_queue_priority_ready{{{CELERY},messaging_destination_name="{truth.prio_queue}"}}',
                "priority",
                4,
            )
            # Absent while the monitor still listens for the first heartbeats: unknown, not 0.
            stored_workers = _stored(prometheus_url, f"tasklens_workers{{{CELERY}}}", "messaging_system", 1)
        finally:
            stop(process)
        held = truth.read()

    for queue, expected in held.items():
        # dead is unknown on Redis: no series, not 0.
        assert depths[queue] == {s: expected[s] for s in ("ready", "delayed", "in_flight")}
    assert steps == {str(step): n for step, n in held[truth.prio_queue]["priorities"].items()}
    assert stored_workers == {"celery": 1}

    assert queues["messaging_system"] == "celery"
    by_name = {entry["name"]: entry for entry in queues["queues"]}
    for queue, expected in held.items():
        entry = by_name[queue]
        assert (entry["ready"], entry["delayed"], entry["in_flight"], entry["dead"]) == (
            expected["ready"],
            expected["delayed"],
            expected["in_flight"],
            None,
        )
        assert entry["priorities"] == {str(step): n for step, n in expected["priorities"].items()}
    assert by_name[truth.app.queue]["oldest_unacked_age"] is not None
    assert {entry["messaging_system"] for entry in queues["queues"]} == {"celery"}
    assert [item["hostname"] for item in workers["items"]] == [truth.hostname]
    assert workers["items"][0]["pool"] in ("threads", None)
    assert ready.status_code == 200
    assert health["status"] == "healthy" and health["messaging_system"] == "celery"
    queue_schema = openapi["components"]["schemas"]["QueueOut"]["properties"]
    assert {"priorities", "oldest_unacked_age", "visibility_timeout"} <= set(queue_schema)
    assert "items" in openapi["components"]["schemas"]["WorkersOut"]["properties"]


def _stored(prometheus_url: str, expression: str, label: str, series: int) -> dict[str, int]:
    deadline = time.monotonic() + QUERY_DEADLINE
    while True:
        result = query(prometheus_url, expression)
        if len(result) == series:
            return {s["metric"][label]: int(s["value"][1]) for s in result}  # type: ignore[index]
        assert time.monotonic() < deadline, f"Prometheus stored {result!r} for {expression}"
        time.sleep(0.25)
