"""DramatiqInstrumentor: the global broker, later brokers, entry point, twice, uninstrument."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from tasklens.dramatiq import DramatiqInstrumentor, OpenTelemetryMiddleware
from tests.dramatiq.conftest import Telemetry


def _ours(broker: dramatiq.Broker) -> list[OpenTelemetryMiddleware]:
    return [m for m in broker.middleware if isinstance(m, OpenTelemetryMiddleware)]


@pytest.fixture
def instrumentor(telemetry: Telemetry) -> Iterator[DramatiqInstrumentor]:
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(StubBroker())
    instrumentor = DramatiqInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()
    dramatiq.broker.global_broker = previous


def test_instruments_global_and_later_brokers_once(
    instrumentor: DramatiqInstrumentor, telemetry: Telemetry
) -> None:
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    global_broker = dramatiq.get_broker()
    later = StubBroker()
    for broker in (global_broker, later):
        assert len(_ours(broker)) == 1
        assert broker.middleware[0] is instrumentor.middleware

    @dramatiq.actor(broker=later, queue_name="later")
    def job() -> None:
        pass

    job.send()
    later.emit_after("process_boot")
    worker = dramatiq.Worker(later, worker_timeout=50)
    worker.start()
    try:
        [process] = telemetry.wait_for_spans("process later", 1)
    finally:
        worker.stop()
    assert process.attributes["dramatiq.actor.name"] == "job"


def test_uninstrument_removes_everything(instrumentor: DramatiqInstrumentor, telemetry: Telemetry) -> None:
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    broker = dramatiq.get_broker()
    assert "enqueue" in broker.__dict__
    instrumentor.uninstrument()
    assert _ours(broker) == []
    assert "enqueue" not in broker.__dict__
    assert _ours(StubBroker()) == []

    @dramatiq.actor(broker=broker, queue_name="plain")
    def job() -> None:
        pass

    job.send()
    assert telemetry.spans() == []


def test_broker_with_its_own_middleware_is_left_alone(
    instrumentor: DramatiqInstrumentor, telemetry: Telemetry
) -> None:
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    own = OpenTelemetryMiddleware()
    broker = StubBroker(middleware=[own])
    assert _ours(broker) == [own]


def test_registered_as_opentelemetry_instrumentor_entry_point() -> None:
    [entry] = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "dramatiq"]
    assert entry.load() is DramatiqInstrumentor


def test_brokers_of_every_kind_created_later_are_traced(
    instrumentor: DramatiqInstrumentor,
    telemetry: Telemetry,
    broker_kind: str,
    request: pytest.FixtureRequest,
    unique_name: str,
) -> None:
    from tests.dramatiq.conftest import BrokerRig, _make_broker

    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    broker, cleanups = _make_broker(broker_kind, request, unique_name)
    rig = BrokerRig(broker_kind, broker, unique_name, cleanups)
    try:
        assert broker.middleware[0] is instrumentor.middleware

        @rig.actor
        def job() -> None:
            pass

        message = job.send()
        [process] = rig.process(telemetry, 1)
        [send] = telemetry.spans("send ")
        assert process.parent is not None and process.parent.span_id == send.context.span_id
        assert process.attributes["messaging.message.id"] == message.message_id
    finally:
        for cleanup in cleanups:
            cleanup()
        broker.close()
