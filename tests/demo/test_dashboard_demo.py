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
        seen: set[str] = set()
        dead = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
            while time.monotonic() < deadline and (seen != ACTORS or dead == 0):
                actors = client.get("/api/actors", params={"window": "15m"}).json()["items"]
                seen = {row["actor"] for row in actors if row["runs"] > 0}
                dead = sum(q["dead"] or 0 for q in client.get("/api/queues").json()["queues"])
                time.sleep(0.5)
            runs = client.get("/api/runs", params={"status": "error", "limit": 5}).json()["items"]
            logged = False
            while time.monotonic() < deadline and not logged:
                emails = client.get(
                    "/api/runs", params={"actor": "send_welcome_email", "status": "ok"}
                ).json()
                for run in emails["items"]:
                    logs = client.get(f"/api/traces/{run['trace_id']}").json()["logs"]
                    logged = logged or any("Welcome email sent" in str(log["body"]) for log in logs)
                time.sleep(0.5)
        assert seen == ACTORS
        assert dead > 0
        assert runs and all(run["status"] == "error" for run in runs)
        assert logged, "the actors' log lines reach their traces"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
