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


def _histogram_counts(points: list) -> dict[tuple, tuple[int, tuple[int, ...] | None]]:
    return {
        tuple(sorted(p.attributes.items())): (p.count, tuple(p.explicit_bounds)) for p in points if p.count
    }


def test_pre_aggregated_histograms_export_what_the_sdk_histograms_do() -> None:
    """A provider whose histograms are aggregated per thread exports the same series and counts as
    one that keeps the SDK's histograms (a view that matches nothing keeps them)."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import View
    from opentelemetry.sdk.trace import TracerProvider

    from tasklens.dramatiq import OpenTelemetryMiddleware
    from tasklens.messaging.histogram import ThreadHistogram

    def run(meter_provider: MeterProvider) -> OpenTelemetryMiddleware:
        broker = StubBroker()
        broker.emit_after("process_boot")
        middleware = OpenTelemetryMiddleware(tracer_provider=TracerProvider(), meter_provider=meter_provider)
        broker.add_middleware(middleware)

        @dramatiq.actor(broker=broker, queue_name="hist", max_retries=1, min_backoff=1, max_backoff=2)
        def maybe(n: int) -> None:
            if n % 3 == 0:
                raise ValueError(n)

        for n in range(9):
            maybe.send(n)
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=3)
        worker.start()
        broker.join("hist", fail_fast=False)
        worker.join()
        worker.stop()
        broker.close()
        return middleware

    def points(reader: InMemoryMetricReader, name: str) -> list:
        data = reader.get_metrics_data()
        return [
            point
            for rm in data.resource_metrics  # type: ignore[union-attr]
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    sdk_reader, ours_reader = InMemoryMetricReader(), InMemoryMetricReader()
    sdk_provider = MeterProvider(metric_readers=[sdk_reader], views=[View(instrument_name="unrelated")])
    ours_provider = MeterProvider(metric_readers=[ours_reader])
    assert not isinstance(run(sdk_provider)._process_duration, ThreadHistogram)
    assert isinstance(run(ours_provider)._process_duration, ThreadHistogram)

    for spec in (semconv.CLIENT_OPERATION_DURATION, semconv.PROCESS_DURATION, semconv.MESSAGE_QUEUE_WAIT):
        expected = _histogram_counts(points(sdk_reader, spec.name))
        got = _histogram_counts(points(ours_reader, spec.name))
        assert expected and got == expected, spec.name
        for point in points(ours_reader, spec.name):
            assert sum(point.bucket_counts) == point.count and point.min <= point.max
    sdk_provider.shutdown()
    ours_provider.shutdown()
