"""Mixed fleets: a producer instrumented by opentelemetry-instrumentation-celery and a tasklens
worker, and the reverse, share one trace (the same W3C headers carry the context)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor as ContribInstrumentor
from opentelemetry.trace import SpanKind

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tests.celery.conftest import WAIT_S, AppRig
from tests.dramatiq.conftest import Telemetry


@pytest.fixture
def contrib(telemetry: Telemetry) -> Iterator[ContribInstrumentor]:
    instrumentor = ContribInstrumentor()
    yield instrumentor
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def test_contrib_producer_and_tasklens_worker_share_the_trace(
    rig: AppRig, telemetry: Telemetry, contrib: ContribInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.job")
    def job() -> None:
        pass

    contrib.instrument(tracer_provider=telemetry.tracer_provider)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        job.delay()
    contrib.uninstrument()
    [producer] = [s for s in telemetry.spans() if s.kind is SpanKind.PRODUCER]
    assert not producer.name.startswith("send "), "the producer span is contrib's"

    CeleryInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        [process] = rig.run(telemetry, 1)
    finally:
        CeleryInstrumentor().uninstrument()
    assert process.attributes[semconv.MESSAGING_SYSTEM] == "celery"
    assert process.context.trace_id == request.get_span_context().trace_id
    assert process.parent is not None and process.parent.span_id == producer.context.span_id


def test_tasklens_producer_and_contrib_worker_share_the_trace(
    rig: AppRig, telemetry: Telemetry, contrib: ContribInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.job")
    def job() -> None:
        pass

    CeleryInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    tracer = telemetry.tracer_provider.get_tracer("test")
    try:
        with tracer.start_as_current_span("request") as request:
            job.delay()
    finally:
        CeleryInstrumentor().uninstrument()
    [send] = telemetry.spans("send ")

    contrib.instrument(tracer_provider=telemetry.tracer_provider)
    with rig.worker():
        telemetry.wait_for_spans("run/", 1, WAIT_S)
    [consumer] = [s for s in telemetry.spans() if s.kind is SpanKind.CONSUMER]
    assert consumer.name.startswith("run/"), "the consumer span is contrib's"
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.parent is not None and consumer.parent.span_id == send.context.span_id
