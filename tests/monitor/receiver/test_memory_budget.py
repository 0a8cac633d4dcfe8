"""Many gzip bombs at once cost the monitor one memory budget, not one body each."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tasklens.monitor.ingest.receiver import DEFAULT_MEMORY_BUDGET, PROTOBUF
from tests.monitor.receiver.load import monitor_process
from tests.monitor.receiver.memory import MIB, peak_rss_mib, rss_mib

#: Bombs sent at once.
BOMBS = 64
#: What one inflates to: just under the 64 MiB the receiver once allowed.
INFLATED = 63 * MIB
#: Most the monitor's resident memory may grow above its idle size: the budget, plus the
#: interpreter's and allocator's own overhead for that many requests.
RSS_BOUND_MIB = DEFAULT_MEMORY_BUDGET / MIB + 150


@pytest.mark.slow
def test_gzip_bombs_at_once_stay_within_the_memory_budget(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\x00" * INFLATED, compresslevel=9)
    headers = {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}
    with monitor_process(tmp_path / "telemetry.db") as (process, url):
        httpx.post(f"{url}/v1/traces", content=b"", headers={"Content-Type": PROTOBUF}, timeout=30)
        idle = rss_mib(process.pid)

        def send(_: int) -> int:
            return httpx.post(f"{url}/v1/traces", content=bomb, headers=headers, timeout=120).status_code

        with ThreadPoolExecutor(BOMBS) as pool:
            statuses = list(pool.map(send, range(BOMBS)))
        peak = peak_rss_mib(process.pid)
        after = httpx.get(f"{url}/healthz", timeout=30)
        settled = rss_mib(process.pid)

    assert len(bomb) < 128 * 1024
    assert peak - idle < RSS_BOUND_MIB, f"RSS grew by {peak - idle:.0f} MiB (idle {idle:.0f} MiB)"
    # And it is given back: what is left is well under one budget.
    assert settled - idle < DEFAULT_MEMORY_BUDGET / MIB / 2, f"{settled - idle:.0f} MiB kept"
    # Each is refused: too large once inflated (413), or not now, the budget being taken (503).
    assert set(statuses) <= {413, 503}, statuses
    assert after.status_code == 200
