"""Faults: failed enqueues, malformed contexts, and nothing left open or attached."""

from __future__ import annotations

import threading

import dramatiq
import pytest
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, StatusCode

from tasklens import semconv
from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.dramatiq.conftest import BrokerRig, Telemetry


def test_unencodable_message_fails_the_send_span_and_raises_unchanged(
    rig: BrokerRig, telemetry: Telemetry
) -> None:
    @rig.actor
    def take(value: object) -> None:
        pass

    with pytest.raises(TypeError):
        take.send(object())
    [send] = telemetry.spans("send ")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[semconv.ERROR_TYPE] == "TypeError"
    assert telemetry.counter.started == telemetry.counter.ended
    assert telemetry.metric_total(semconv.SENT_MESSAGES.name, error__type="TypeError") == 1


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_unreachable_broker_fails_the_send_span(kind: str, telemetry: Telemetry) -> None:
    middleware = OpenTelemetryMiddleware(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    if kind == "redis":
        import redis
        from dramatiq.brokers.redis import RedisBroker

        broker: dramatiq.Broker = RedisBroker(url="redis://127.0.0.1:1/0", socket_connect_timeout=1)
        expected: type[BaseException] = redis.exceptions.ConnectionError
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url="amqp://guest:secret@127.0.0.1:1/%2F?connection_attempts=1")
        expected = dramatiq.errors.BrokerConnectionError
    broker.add_middleware(middleware)

    @dramatiq.actor(broker=broker, queue_name="unreachable")
    def job() -> None:
        pass

    with pytest.raises(expected):
        job.send()
    [send] = telemetry.spans("send ")
    assert send.kind is SpanKind.PRODUCER
    assert send.status.status_code is StatusCode.ERROR
    [exception] = [e for e in send.events if e.name == "exception"]
    assert exception.attributes["exception.type"].rsplit(".", 1)[-1] == send.attributes[semconv.ERROR_TYPE]
    assert "secret" not in str(dict(send.attributes))
    assert telemetry.counter.started == telemetry.counter.ended


BAD_CARRIERS = {
    "not a dict": "traceparent=00-abc",
    "a list": [["traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]],
    "garbage traceparent": {"traceparent": "zz-not-a-trace-parent-at-all"},
    "non-string values": {"traceparent": 12345, "tracestate": {"a": 1}},
    "a megabyte of junk": {"traceparent": "x" * 1_000_000, "baggage": "y" * 1_000_000},
}


@pytest.mark.parametrize("carrier", list(BAD_CARRIERS.values()), ids=list(BAD_CARRIERS))
def test_malformed_context_is_ignored(rig: BrokerRig, telemetry: Telemetry, carrier: object) -> None:
    ran = threading.Event()

    @rig.actor
    def job() -> None:
        ran.set()

    message = job.message()
    message.options[semconv.CONTEXT_OPTION] = carrier
    # Enqueue without the send span overwriting the carrier, as a foreign producer would.
    rig.broker.middleware.remove(
        next(m for m in rig.broker.middleware if isinstance(m, OpenTelemetryMiddleware))
    )
    rig.broker.enqueue(message)
    rig.broker.add_middleware(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    [process] = rig.process(telemetry, 1)
    assert ran.is_set()
    assert process.parent is None
    assert process.status.status_code is StatusCode.UNSET
    assert process.context.is_valid


def test_seed_style_carrier_is_honoured(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def job() -> None:
        pass

    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    message = job.message()
    message.options[semconv.CONTEXT_OPTION] = {"traceparent": f"00-{trace_id}-{span_id}-01"}
    rig.broker.middleware.remove(
        next(m for m in rig.broker.middleware if isinstance(m, OpenTelemetryMiddleware))
    )
    rig.broker.enqueue(message)
    rig.broker.add_middleware(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    [process] = rig.process(telemetry, 1)
    assert format(process.context.trace_id, "032x") == trace_id
    assert format(process.parent.span_id, "016x") == span_id


def test_no_span_or_context_is_left_behind(rig: BrokerRig, telemetry: Telemetry) -> None:
    leftovers: list[object] = []
    count = 60

    @rig.actor(max_retries=1, min_backoff=5, max_backoff=10)
    def job(n: int) -> None:
        if n % 3 == 0:
            raise RuntimeError("fails once, then again")

    @rig.actor
    def probe() -> None:
        pass

    for n in range(count):
        job.send(n)
    worker = rig.worker(worker_threads=4)
    try:
        expected = count + count // 3  # every third message is retried once
        telemetry.wait_for_spans("process ", expected)
        worker.join()

        # What is current on a worker thread between messages: nothing of ours.
        original = rig.broker.emit_before

        def spy(signal: str, *args: object, **kwargs: object) -> None:
            if signal == "process_message":
                leftovers.append(otel_context.get_current())
            original(signal, *args, **kwargs)

        rig.broker.emit_before = spy  # type: ignore[method-assign]
        for _ in range(8):
            probe.send()
        telemetry.wait_for_spans("process ", expected + 8)
        worker.join()
    finally:
        worker.stop()
    assert leftovers and all(ctx == {} or not ctx for ctx in leftovers)
    assert telemetry.counter.started == telemetry.counter.ended


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


def test_an_exception_that_cannot_describe_itself_still_ends_the_span(
    rig: BrokerRig, telemetry: Telemetry
) -> None:
    @rig.actor(max_retries=0)
    def strange() -> None:
        raise Unprintable()

    @rig.actor
    def after() -> None:
        pass

    strange.send()
    after.send()
    spans = rig.process(telemetry, 2)
    [failed] = [s for s in spans if s.attributes[semconv.DRAMATIQ_ACTOR_NAME] == "strange"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[semconv.ERROR_TYPE] == "Unprintable"
    assert telemetry.counter.started == telemetry.counter.ended
