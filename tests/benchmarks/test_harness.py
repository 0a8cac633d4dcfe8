"""The benchmark harness runs end to end and prints its table (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
@pytest.mark.timeout(180)
def test_a_tiny_run_prints_a_table_and_writes_results(redis_url: str, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks",
        "--brokers", "redis", "--variants", "tasklens-metrics",
        "--messages", "50", "--rounds", "1", "--memory-messages", "0", "--store-spans", "2000",
        "--output", str(tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "uninstrumented" in completed.stdout
    assert "tasklens.setup() metrics only" in completed.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(results["summary"]["redis"]) == {"uninstrumented", "tasklens-metrics"}
    assert (tmp_path / "ratios.png").stat().st_size > 0
    assert "Dashboard store (SQLite, 2,000 stored spans)" in completed.stdout
    store = json.loads((tmp_path / "store.json").read_text())
    assert store["stored_spans"] == 2000 and store["ingest"]["spans_per_second"] > 0
