"""An export answered 200 is in the store, even when the monitor is killed right after."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.monitor.receiver.load import Exporter, missing_batches, monitor_process

#: Exporting threads against the monitor at once.
EXPORTERS = 6
#: Batches acknowledged before the monitor is killed.
ACKNOWLEDGED_BEFORE_KILL = 60
#: Longest the load may take to reach that, in seconds.
LOAD_DEADLINE = 120.0


@pytest.mark.slow
def test_every_acknowledged_batch_survives_sigkill(tmp_path: Path) -> None:
    store = tmp_path / "telemetry.db"
    with monitor_process(store, "--retention", "1d") as (process, url):
        exporters = [Exporter(url) for _ in range(EXPORTERS)]
        for exporter in exporters:
            exporter.start()
        deadline = time.monotonic() + LOAD_DEADLINE
        while sum(len(e.acknowledged) for e in exporters) < ACKNOWLEDGED_BEFORE_KILL:
            assert time.monotonic() < deadline, "the monitor acknowledged too few batches"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        for exporter in exporters:
            exporter.stop.set()
            exporter.join(timeout=60)
    acknowledged = [trace_id for exporter in exporters for trace_id in exporter.acknowledged]

    # Restarting the monitor on the same store opens it as it was left.
    with monitor_process(store) as (_, url):
        pass
    lost = missing_batches(store, acknowledged)

    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged batches lost"
