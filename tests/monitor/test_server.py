"""``tasklens monitor`` as a user runs it: a real process, a real port, the real Redis."""

from __future__ import annotations

import httpx

from tests.monitor.ground_truth import PopulatedQueue, populated_queue
from tests.monitor.processes import free_port, run_tasklens, running_monitor


def test_exposed_bind_without_a_token_refuses_to_start() -> None:
    result = run_tasklens("monitor", "--host", "0.0.0.0", "--port", str(free_port()))

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "tasklens: refusing to listen on 0.0.0.0 without an auth token: pass --auth-token"
        " (or set TASKLENS_AUTH_TOKEN), or --insecure to serve it unprotected"
    ]


def test_unsupported_broker_url_refuses_to_start() -> None:
    result = run_tasklens("monitor", "--broker", "kafka://u:secret99@host:9092", "--port", str(free_port()))

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "kafka://u:***@host:9092" in result.stderr and "secret99" not in result.stderr


def test_serves_metrics_health_and_api_from_the_real_broker(redis_url: str, unique_name: str) -> None:
    with (
        populated_queue(redis_url, unique_name, ready=3, delayed=2, dead=1) as queue,
        running_monitor("--broker", queue.url) as base_url,
    ):
        metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
        queues = httpx.get(f"{base_url}/api/queues", timeout=10).json()
        ready = httpx.get(f"{base_url}/readyz", timeout=10)

    label = f'messaging_destination_name="{queue.queue}",messaging_system="dramatiq"'
    assert f'tasklens_queue_depth{{{label},state="ready"}} 3.0' in metrics
    assert f'tasklens_queue_depth{{{label},state="delayed"}} 2.0' in metrics
    assert f'tasklens_queue_depth{{{label},state="dead"}} 1.0' in metrics
    assert "tasklens_broker_up 1.0" in metrics
    assert ready.status_code == 200
    (stats,) = [entry for entry in queues["queues"] if entry["name"] == queue.queue]
    assert (stats["ready"], stats["delayed"], stats["dead"]) == (3, 2, 1)


def test_exposed_bind_with_a_token_guards_everything(queue: PopulatedQueue) -> None:
    env = {"TASKLENS_AUTH_TOKEN": "tok-567"}
    with running_monitor("--broker", queue.url, env=env, host="0.0.0.0") as base_url:
        metrics_without = httpx.get(f"{base_url}/metrics", timeout=10)
        metrics_with = httpx.get(
            f"{base_url}/metrics", headers={"Authorization": "Bearer tok-567"}, timeout=10
        )
        purge_without = httpx.delete(f"{base_url}/api/queues/x/dead-letters", timeout=10)

    assert metrics_without.status_code == 401
    assert metrics_with.status_code == 200
    assert purge_without.status_code == 401


def test_dead_letter_actions_over_http_with_the_token(queue: PopulatedQueue) -> None:
    auth = {"Authorization": "Bearer act-890"}
    with running_monitor("--broker", queue.url, "--auth-token", "act-890") as base_url:
        listed = httpx.get(
            f"{base_url}/api/queues/{queue.queue}/dead-letters", headers=auth, timeout=10
        ).json()
        refused = httpx.post(f"{base_url}/api/queues/{queue.queue}/dead-letters/requeue", json={"all": True})
        requeued = httpx.post(
            f"{base_url}/api/queues/{queue.queue}/dead-letters/requeue",
            json={"message_ids": queue.dead_ids[:2]},
            headers=auth,
            timeout=10,
        )
        purged = httpx.delete(f"{base_url}/api/queues/{queue.queue}/dead-letters", headers=auth, timeout=10)

    assert listed["total"] == 5
    assert refused.status_code == 401
    assert requeued.json() == {"requeued": 2}
    assert purged.json() == {"purged": 3}
