"""The alert conditions, from broker snapshots and the task metrics a real instrumented worker
(Dramatiq's StubBroker and Worker with tasklens's middleware) exports."""

from __future__ import annotations

import time

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tasklens.brokers.base import BrokerSnapshot, BrokerUnavailable, QueueStats
from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.monitor.alerts.config import build_alert_config
from tasklens.monitor.alerts.dispatch import Dispatcher
from tasklens.monitor.alerts.engine import AlertEngine
from tasklens.monitor.alerts.evaluation import Evaluator, TaskCounts, task_counts
from tasklens.monitor.alerts.notifiers import Notification, Notifier
from tasklens.monitor.ingest.received_metrics import ReceivedMetrics
from tasklens.monitor.watch.snapshots import ReadResult


def read(*queues: QueueStats, workers: int | None = 1) -> ReadResult:
    return ReadResult(BrokerSnapshot(list(queues), workers, time.time(), 0.01), None, 0.01, time.monotonic())


def stats(name: str = "q", **counts: object) -> QueueStats:
    values = {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0, "oldest_age": 0.0, **counts}
    return QueueStats(name, **values)  # type: ignore[arg-type]


def only(rule: str, **settings: object):
    tables = [
        (name, {"enabled": "false"})
        for name in (
            "backlog",
            "oldest_message_age",
            "error_rate",
            "dead_letters_growing",
            "retry_storm",
            "no_live_workers",
            "broker_unreachable",
        )
        if name != rule
    ]
    return build_alert_config(rules=[*tables, (rule, {"for": "0s", **settings})]).rules


@pytest.fixture
def worker_metrics() -> ReceivedMetrics:
    """What a worker exported after a failing actor ran: 3 attempts (2 retries), all failed, and
    one successful message on another queue."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    broker = StubBroker()
    broker.add_middleware(OpenTelemetryMiddleware(meter_provider=meter_provider))

    @dramatiq.actor(broker=broker, queue_name="payments", max_retries=2, min_backoff=1, max_backoff=1)
    def charge() -> None:
        raise RuntimeError("card declined")

    @dramatiq.actor(broker=broker, queue_name="emails")
    def welcome() -> None:
        pass

    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        charge.send()
        welcome.send()
        broker.join("payments", fail_fast=False)
        broker.join("emails")
        worker.join()
    finally:
        worker.stop()
    received = ReceivedMetrics()
    received.update(encode_metrics(reader.get_metrics_data()))
    return received


def test_task_counts_come_from_the_received_metrics(worker_metrics: ReceivedMetrics) -> None:
    counts = task_counts(worker_metrics)
    assert counts.consumed == {"payments": 3.0, "emails": 1.0}
    assert counts.failed == {"payments": 3.0}
    assert counts.retries == {"payments": 2.0}


def test_error_rate_and_retry_storm(worker_metrics: ReceivedMetrics) -> None:
    for rule, value in (("error_rate", 1.0), ("retry_storm", 2 / 3)):
        evaluator = Evaluator(only(rule))
        assert evaluator.evaluate(100.0, read(), TaskCounts()).findings == []
        findings = evaluator.evaluate(110.0, read(), task_counts(worker_metrics)).findings
        assert [(f.rule, f.queue) for f in findings] == [(rule, "payments")]
        assert findings[0].value == pytest.approx(value)
        # The same totals later: nothing new was processed in the window, so nothing holds.
        assert evaluator.evaluate(110.0 + 400, read(), task_counts(worker_metrics)).findings == []


def test_a_threshold_is_a_strict_bound(worker_metrics: ReceivedMetrics) -> None:
    evaluator = Evaluator(only("error_rate", threshold="1"))
    evaluator.evaluate(100.0, read(), TaskCounts())
    assert evaluator.evaluate(110.0, read(), task_counts(worker_metrics)).findings == []


def test_dead_letters_growing_over_the_window() -> None:
    evaluator = Evaluator(only("dead_letters_growing", window="10m"))
    assert evaluator.evaluate(0.0, read(stats(dead=5)), TaskCounts()).findings == []
    assert evaluator.evaluate(10.0, read(stats(dead=5)), TaskCounts()).findings == []
    findings = evaluator.evaluate(20.0, read(stats(dead=8)), TaskCounts()).findings
    assert [(f.rule, f.queue, f.value) for f in findings] == [("dead_letters_growing", "q", 3.0)]
    # Ten minutes without a new dead letter: no growth over the window any more.
    assert evaluator.evaluate(700.0, read(stats(dead=8)), TaskCounts()).findings == []


def test_queue_conditions() -> None:
    snapshot = read(
        stats("old", ready=5, oldest_age=400.0), stats("fresh", ready=1, oldest_age=2.0), workers=0
    )
    assert [
        f.key for f in Evaluator(only("oldest_message_age")).evaluate(0, snapshot, TaskCounts()).findings
    ] == ["oldest_message_age:old"]
    assert [
        f.key for f in Evaluator(only("backlog", threshold=2)).evaluate(0, snapshot, TaskCounts()).findings
    ] == ["backlog:old"]
    keys = [f.key for f in Evaluator(only("no_live_workers")).evaluate(0, snapshot, TaskCounts()).findings]
    assert sorted(keys) == ["no_live_workers:fresh", "no_live_workers:old"]
    # RabbitMQ reports consumers per queue: a queue with its own consumer is served.
    served = read(stats("a", ready=1, consumers=1), stats("b", ready=1, consumers=0), workers=1)
    assert [f.key for f in Evaluator(only("no_live_workers")).evaluate(0, served, TaskCounts()).findings] == [
        "no_live_workers:b"
    ]


class Recorder(Notifier):
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    @property
    def target(self) -> str:
        return "recorder"

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def test_an_alert_fires_only_after_its_for_duration_and_unknown_is_not_resolved() -> None:
    now = [1000.0]
    recorder = Recorder()
    config = build_alert_config(
        rules=[("backlog", {"threshold": "0", "for": "30s"})]
        + [
            (name, {"enabled": "false"})
            for name in ("oldest_message_age", "no_live_workers", "dead_letters_growing")
        ],
        reminder="0",
    )
    dispatcher = Dispatcher([recorder])
    engine = AlertEngine(config, broker="redis://x", dispatcher=dispatcher, clock=lambda: now[0])
    dispatcher.start()
    try:
        engine.evaluate(read(stats(ready=1)), TaskCounts())
        assert engine.firing() == [] and list(engine.pending()) == ["backlog:q"]
        now[0] += 31
        engine.evaluate(read(stats(ready=1)), TaskCounts())
        assert [a.key for a in engine.firing()] == ["backlog:q"]
        # The broker stops answering: the backlog is unknown, so the alert neither resolves nor
        # fires again; broker_unreachable (for 2 minutes by default) is pending.
        down = ReadResult(None, BrokerUnavailable("down"), 1.0, time.monotonic())
        now[0] += 10
        engine.evaluate(down, TaskCounts())
        assert [a.key for a in engine.firing()] == ["backlog:q"]
        assert "broker_unreachable:" in engine.pending()
        now[0] += 10
        engine.evaluate(read(stats(ready=0)), TaskCounts())
        assert engine.firing() == [] and [a.key for a in engine.history()] == ["backlog:q"]
    finally:
        dispatcher.close()
    assert [n.event for n in recorder.sent] == ["firing", "resolved"]


def test_an_alert_of_a_rule_switched_off_resolves_after_a_restart(tmp_path) -> None:
    state = str(tmp_path / "alerts.json")
    recorder = Recorder()
    first = build_alert_config(rules=[("backlog", {"threshold": "0", "for": "0s"})], state_path=state)
    engine = AlertEngine(first, broker="redis://x", dispatcher=Dispatcher([]))
    engine.evaluate(read(stats(ready=1)), TaskCounts())
    assert [a.key for a in engine.firing()] == ["backlog:q"]

    # Restarted with the rule off and the broker down: the alert cannot fire any more.
    second = build_alert_config(rules=[("backlog", {"enabled": "false"})], state_path=state)
    dispatcher = Dispatcher([recorder])
    restarted = AlertEngine(second, broker="redis://x", dispatcher=dispatcher)
    assert [a.key for a in restarted.firing()] == ["backlog:q"]
    dispatcher.start()
    try:
        restarted.evaluate(ReadResult(None, BrokerUnavailable("down"), 1.0, time.monotonic()), TaskCounts())
    finally:
        dispatcher.close()
    assert restarted.firing() == []
    assert [n.event for n in recorder.sent] == ["resolved"]
