"""Metrics: exact counts for a known scenario, bounded attributes, semantic-convention buckets."""

from __future__ import annotations

from tasklens import semconv
from tests.dramatiq.conftest import BrokerRig, Telemetry


def test_counters_and_histograms_match_the_scenario(rig: BrokerRig, telemetry: Telemetry) -> None:
    successes, failures, retries_each = 5, 2, 2

    @rig.actor
    def ok(n: int) -> None:
        pass

    @rig.actor(max_retries=retries_each, min_backoff=5, max_backoff=10)
    def bad(n: int) -> None:
        raise RuntimeError("always")

    for n in range(successes):
        ok.send(n)
    for n in range(failures):
        bad.send(n)
    attempts = successes + failures * (1 + retries_each)
    rig.process(telemetry, attempts)

    queue = rig.queue_name
    total = telemetry.metric_total
    sends = successes + failures + failures * retries_each  # user sends + retry sends
    assert total(semconv.SENT_MESSAGES.name, messaging__destination__name=queue) == sends
    assert total(semconv.CLIENT_OPERATION_DURATION.name) == sends
    assert total(semconv.CONSUMED_MESSAGES.name, dramatiq__actor__name="ok") == successes
    assert total(semconv.CONSUMED_MESSAGES.name, dramatiq__actor__name="bad", error__type="RuntimeError") == (
        failures * (1 + retries_each)
    )
    assert total(semconv.PROCESS_DURATION.name) == attempts
    assert total(semconv.MESSAGE_QUEUE_WAIT.name) == attempts
    assert total(semconv.MESSAGE_RETRIES.name, dramatiq__actor__name="bad") == failures * retries_each
    assert (
        total(semconv.MESSAGE_DEAD_LETTERED.name, dramatiq__dead_letter__reason="retries_exhausted")
        == failures
    )
    assert total(semconv.MESSAGES_IN_FLIGHT.name) == 0

    for spec in semconv.METRICS[:8]:
        for point in telemetry.metric_points(spec.name):
            assert semconv.MESSAGING_MESSAGE_ID not in point.attributes
            assert point.attributes[semconv.MESSAGING_SYSTEM] == "dramatiq"
    [duration] = telemetry.metric_points(semconv.PROCESS_DURATION.name)[:1]
    assert tuple(duration.explicit_bounds) == semconv.DURATION_BUCKETS_S


def test_in_flight_counts_the_messages_being_processed(rig: BrokerRig, telemetry: Telemetry) -> None:
    import threading

    started, release = threading.Event(), threading.Event()

    @rig.actor
    def hold() -> None:
        started.set()
        release.wait(10)

    hold.send()
    worker = rig.worker()
    try:
        assert started.wait(10)
        assert telemetry.metric_total(semconv.MESSAGES_IN_FLIGHT.name, dramatiq__actor__name="hold") == 1
        release.set()
        telemetry.wait_for_spans("process ", 1)
        worker.join()
        assert telemetry.metric_total(semconv.MESSAGES_IN_FLIGHT.name, dramatiq__actor__name="hold") == 0
    finally:
        release.set()
        worker.stop()
