"""The endpoint's settings and HTTP surface, in this process, with Dramatiq's StubBroker worker."""

from __future__ import annotations

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from tasklens.worker_health import WorkerHealthSettings
from tasklens.worker_health.dramatiq_probe import DramatiqWorkerProbe
from tasklens.worker_health.server import WorkerHealthServer


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKLENS_WORKER_HEALTH", raising=False)
    assert WorkerHealthSettings.resolve(None) is None
    assert WorkerHealthSettings.resolve(False) is None
    monkeypatch.setenv("TASKLENS_WORKER_HEALTH", "1")
    assert WorkerHealthSettings.resolve(None) == WorkerHealthSettings(8099, "127.0.0.1", 600.0)
    monkeypatch.setenv("TASKLENS_WORKER_HEALTH_PORT", "9001")
    monkeypatch.setenv("TASKLENS_WORKER_HEALTH_MAX_BUSY", "30")
    assert WorkerHealthSettings.resolve(None) == WorkerHealthSettings(9001, "127.0.0.1", 30.0)
    assert WorkerHealthSettings.resolve(7000).port == 7000  # type: ignore[union-attr]
    monkeypatch.setenv("TASKLENS_WORKER_HEALTH_PORT", "eighty")
    with pytest.raises(ValueError, match="TASKLENS_WORKER_HEALTH_PORT='eighty' is not a number"):
        WorkerHealthSettings.resolve(True)


def test_the_endpoint_answers_from_the_worker_state() -> None:
    server = WorkerHealthServer("127.0.0.1", 0)
    probe = DramatiqWorkerProbe(max_busy=60)
    server.add(probe)
    server.start()
    broker = StubBroker()
    broker.add_middleware(probe)

    @dramatiq.actor(broker=broker)
    def noop() -> None:
        pass

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    base = f"http://127.0.0.1:{server.port}"
    try:
        before = httpx.get(f"{base}/healthz")
        assert before.status_code == 503
        assert before.json()["reasons"] == ["no worker has started in this process"]
        worker.start()
        noop.send()
        broker.join(noop.queue_name)
        worker.join()
        body = httpx.get(f"{base}/healthz").json()
        assert body["status"] == "healthy" and body["checks"]["processed"] == 1
        missing = httpx.get(f"{base}/status")
        assert missing.status_code == 404 and "/healthz" in missing.json()["error"]
    finally:
        worker.stop()
        server.stop()
    assert WorkerHealthServer("127.0.0.1", 0).verdict().healthy is False


def test_the_exec_probe_reports_an_unreachable_worker() -> None:
    from tests.monitor.processes import free_port, run_tasklens

    result = run_tasklens("health", "--worker", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.startswith("tasklens: unhealthy: worker health endpoint http://127.0.0.1:")
    assert run_tasklens("health", "--worker", "ftp://x").returncode == 2


def test_a_sibling_process_that_stopped_reporting_fails_the_verdict(tmp_path) -> None:
    import json
    import os
    import time

    from tasklens.worker_health.siblings import SiblingBoard
    from tasklens.worker_health.verdict import WorkerVerdict

    class Started(DramatiqWorkerProbe):
        def verdict(self) -> WorkerVerdict:
            return WorkerVerdict.of("dramatiq", [], {"pid": os.getpid()})

        @property
        def started(self) -> bool:
            return True

    server = WorkerHealthServer("127.0.0.1", 0)
    server.add(Started(max_busy=60))
    server.boards = [SiblingBoard(tmp_path)]
    assert server.verdict().healthy and server.verdict().checks["sibling_processes"] == []

    # A live process (this one's parent stands in for a sibling) whose last report is old.
    sibling = os.getppid()
    healthy = {"status": "healthy", "library": "dramatiq", "reasons": [], "checks": {}}
    (tmp_path / f"{sibling}.json").write_text(
        json.dumps({"pid": sibling, "at": time.time() - 60, "verdict": healthy})
    )
    verdict = server.verdict()
    assert not verdict.healthy
    assert verdict.reasons == [f"worker process {sibling} has not reported for 60 s"]

    # An exited process's entry is dropped.
    (tmp_path / f"{sibling}.json").unlink()
    (tmp_path / "999999999.json").write_text(
        json.dumps({"pid": 999999999, "at": time.time(), "verdict": healthy})
    )
    assert server.verdict().healthy
    assert not (tmp_path / "999999999.json").exists()
