"""``tasklens demo`` fills the dashboard with every kind of work and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

#: Every example actor the demo's traffic exercises.
ACTORS = {
    "send_welcome_email",
    "send_reminder",
    "charge_payment",
    "generate_report",
    "fetch_rows",
    "transform_rows",
    "store_rows",
    "resize_image",
    "build_gallery",
    "sync_inventory",
}
#: Every example Celery task: retrying, countdown, chain, chord, beat, failing for good.
CELERY_TASKS = {
    "celery_demo.fetch_rates",
    "celery_demo.send_digest",
    "celery_demo.crawl_page",
    "celery_demo.parse_page",
    "celery_demo.index_page",
    "celery_demo.render_thumbnail",
    "celery_demo.publish_album",
    "celery_demo.purge_sessions",
    "celery_demo.import_legacy_feed",
}


def _read_line(process: subprocess.Popen[str], pattern: str, deadline: float) -> re.Match[str]:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"the demo never printed {pattern!r}")


@pytest.mark.parametrize("where", ["redis", "in-process"])
def test_demo_produces_every_kind_of_run_and_exits_0_on_sigint(
    where: str, request: pytest.FixtureRequest
) -> None:
    args = [sys.executable, "-m", "tasklens", "demo", "--port", "0"]
    if where == "redis":
        request.getfixturevalue("redis_url")
    else:
        args.append("--no-redis")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        dashboard = _read_line(process, r"dashboard: (http://\S+)/#token=(\S+)", deadline)
        url, token = dashboard.group(1), dashboard.group(2)
        assert _read_line(process, r"Auth token.*: (\S+)", deadline).group(1) == token
        assert ("Redis at" in _read_line(process, r"Broker: (.*)", deadline).group(1)) == (where == "redis")
        celery = _read_line(process, r"Celery: (.*)", deadline).group(1)
        assert ("prefork worker on Redis" in celery) == (where == "redis")
        assert ("in-memory transport" in celery) == (where != "redis")
        seen: set[str] = set()
        dead = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
            while time.monotonic() < deadline and (seen != ACTORS | CELERY_TASKS or dead == 0):
                actors = client.get("/api/actors", params={"window": "15m"}).json()["items"]
                seen = {row["actor"] for row in actors if row["runs"] > 0}
                dead = sum(q["dead"] or 0 for q in client.get("/api/queues").json()["queues"])
                time.sleep(0.5)
            runs = client.get("/api/runs", params={"status": "error", "limit": 5}).json()["items"]
            failed_for_good = client.get(
                "/api/runs", params={"actor": "celery_demo.import_legacy_feed", "status": "error"}
            ).json()["items"]
            retried = client.get("/api/runs", params={"actor": "celery_demo.fetch_rates"}).json()["items"]
            logged = False
            while time.monotonic() < deadline and not logged:
                emails = client.get(
                    "/api/runs", params={"actor": "send_welcome_email", "status": "ok"}
                ).json()
                for run in emails["items"]:
                    logs = client.get(f"/api/traces/{run['trace_id']}").json()["logs"]
                    logged = logged or any("Welcome email sent" in str(log["body"]) for log in logs)
                time.sleep(0.5)
        assert seen == ACTORS | CELERY_TASKS
        assert failed_for_good and failed_for_good[0]["error_type"] == "ValueError"
        assert {run["attempt"] for run in retried} >= {1, 2, 3}  # two failed attempts, then success
        assert dead > 0
        assert runs and all(run["status"] == "error" for run in runs)
        assert logged, "the actors' log lines reach their traces"
        if where == "redis":
            # The monitor reads both brokers: Celery's queue and workers next to Dramatiq's.
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as client:
                queues = client.get("/api/queues").json()["queues"]
                systems = {q["messaging_system"] for q in queues}
                assert {"dramatiq", "celery"} <= systems
                assert "demo-celery" in {q["name"] for q in queues if q["messaging_system"] == "celery"}
                # The Celery worker's heartbeats, and the Dramatiq worker's announcement.
                libraries: set[object] = set()
                while time.monotonic() < deadline + 30 and libraries != {"celery", "dramatiq"}:
                    workers = client.get("/api/workers").json()["items"] or []
                    libraries = {w["messaging_system"] for w in workers}
                    time.sleep(0.5)
                assert libraries == {"celery", "dramatiq"}
        else:
            # In process, Celery's queue is read from the in-memory transport: its ready count,
            # with what cannot be read there unknown and said so, never 0.
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as client:
                queues = client.get("/api/queues").json()
                body = client.get("/api/workers").json()
            celery_queues = [q for q in queues["queues"] if q["messaging_system"] == "celery"]
            assert [q["name"] for q in celery_queues] == ["demo-celery"]
            (celery_queue,) = celery_queues
            assert isinstance(celery_queue["ready"], int)
            assert (celery_queue["in_flight"], celery_queue["delayed"], celery_queue["dead"]) == (None,) * 3
            parts = {b["messaging_system"]: b for b in body["brokers"]}
            assert set(parts) == {"dramatiq", "celery"} and all(b["up"] for b in parts.values())
            assert parts["celery"]["workers"] is None
            assert "in-memory transport" in parts["celery"]["workers_note"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
