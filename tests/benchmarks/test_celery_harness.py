"""The Celery benchmark harness runs end to end, through ``python -m benchmarks``, and writes its
tables (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_quick_celery_run_prints_its_tables_and_writes_results(redis_url: str, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks", "--library", "celery", "--quick",
        "--celery-brokers", "redis", "--celery-pools", "prefork",
        "--celery-variants", "otel-celery,tasklens", "--output", str(tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Celery on redis, prefork pool: 40 tasks" in completed.stdout
    assert "opentelemetry-instrumentation-celery" in completed.stdout
    results = json.loads((tmp_path / "celery-latest.json").read_text())
    summary = results["summary"]["redis/prefork"]
    assert set(summary) == {"uninstrumented", "otel-celery", "tasklens"}
    for entry in summary.values():
        assert entry["errors"] == [] and entry["median"]["process_rate"] > 0
    # Both instrumented trials' telemetry reached the sink; the uninstrumented one sent none.
    assert summary["uninstrumented"]["exported_kib"] == 0
    assert summary["tasklens"]["exported_kib"] > 0 and summary["otel-celery"]["exported_kib"] > 0
    assert {c["variant"] for c in results["targets"]} == {"tasklens"}
    assert "| variant |" in (tmp_path / "celery-latest.md").read_text()


@pytest.mark.redis
@pytest.mark.timeout(90)
def test_the_producer_alone_prints_a_line_per_trial_and_the_ratios(redis_url: str) -> None:
    command = [
        sys.executable, "-m", "benchmarks.celery.send_path", "--broker", "redis",
        "--rounds", "1", "--tasks", "20", "--variants", "tasklens",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "round 1 redis uninstrumented" in completed.stdout
    assert "round 1 redis tasklens" in completed.stdout
    [ratios] = [line for line in completed.stdout.splitlines() if line.strip().startswith("tasklens ")]
    rate, cpu = (float(value) for value in ratios.split()[-3::2])
    assert rate > 0 and cpu > 0
