"""A real Prometheus scrapes the monitor; what it stored equals what is in Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import redis

from tests.monitor.ground_truth import populated_queue
from tests.monitor.processes import free_port, require_program, running_monitor, stop, wait_for_http

#: How long Prometheus may take to scrape and store the first samples, in seconds.
QUERY_DEADLINE = 45.0


def prometheus_config(target: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tasklens
    static_configs:
      - targets: ["{target}"]
"""


def query(base_url: str, expression: str) -> list[dict[str, object]]:
    response = httpx.get(f"{base_url}/api/v1/query", params={"query": expression}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


def test_prometheus_stores_the_true_queue_depth(redis_url: str, unique_name: str, tmp_path: Path) -> None:
    prometheus = require_program("prometheus")
    with (
        populated_queue(redis_url, unique_name, ready=4, delayed=3, dead=2, in_flight=True) as queue,
        running_monitor("--broker", queue.url, "--cache-ttl", "0.5") as monitor_url,
    ):
        client = redis.Redis.from_url(redis_url)
        keys = f"{queue.namespace}:{queue.queue}"
        ready = client.llen(keys)
        truth = {
            "ready": ready,
            "delayed": client.hlen(f"{keys}.DQ.msgs"),
            "in_flight": client.hlen(f"{keys}.msgs") - ready,
            "dead": client.zcard(f"{keys}.XQ"),
        }
        client.close()
        assert truth == {"ready": 4, "delayed": 3, "in_flight": 1, "dead": 2}

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
            stderr=subprocess.PIPE,
        )
        prometheus_url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{prometheus_url}/-/ready", process)
            stored = _stored_depths(prometheus_url, queue.queue)
            up = query(prometheus_url, "tasklens_broker_up")
        finally:
            stop(process)
            if process.stderr is not None:
                process.stderr.close()

    assert stored == truth
    assert up[0]["value"][1] == "1"  # type: ignore[index]


def _stored_depths(prometheus_url: str, queue: str) -> dict[str, int]:
    expression = f'tasklens_queue_depth{{messaging_destination_name="{queue}",messaging_system="dramatiq"}}'
    deadline = time.monotonic() + QUERY_DEADLINE
    while True:
        result = query(prometheus_url, expression)
        if len(result) == 4:
            return {
                series["metric"]["state"]: int(series["value"][1])  # type: ignore[index]
                for series in result
            }
        assert time.monotonic() < deadline, f"Prometheus stored {result!r}"
        time.sleep(0.25)
