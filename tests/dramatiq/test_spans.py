"""Span shape: names, kinds, parents, links, attributes present at start, statuses."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tasklens import semconv
from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.dramatiq.conftest import BrokerRig, Telemetry


def test_send_and_process_spans_are_parent_and_child(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def greet(name: str) -> None:
        pass

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        message = greet.send("ada")

    [process] = rig.process(telemetry, 1)
    [send] = telemetry.spans("send ")
    queue = rig.queue_name
    assert send.name == f"send {queue}" and send.kind is SpanKind.PRODUCER
    assert process.name == f"process {queue}" and process.kind is SpanKind.CONSUMER
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.context.trace_id == request.get_span_context().trace_id
    assert process.status.status_code is StatusCode.UNSET
    assert process.attributes[semconv.MESSAGING_MESSAGE_ID] == message.message_id
    assert process.attributes[semconv.DRAMATIQ_MESSAGE_RETRIES] == 0


def test_attributes_are_given_to_the_sampler_at_start(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def greet(name: str) -> None:
        pass

    message = greet.send_with_options(args=("ada",), delay=10)
    rig.process(telemetry, 1)

    queue = rig.queue_name
    sent = telemetry.sampler.seen[f"send {queue}"]
    assert sent[semconv.MESSAGING_SYSTEM] == "dramatiq"
    assert sent[semconv.MESSAGING_OPERATION_TYPE] == "send"
    assert sent[semconv.MESSAGING_OPERATION_NAME] == "send"
    assert sent[semconv.MESSAGING_DESTINATION_NAME] == queue
    assert sent[semconv.MESSAGING_MESSAGE_ID] == message.message_id
    assert sent[semconv.DRAMATIQ_ACTOR_NAME] == "greet"
    assert sent[semconv.DRAMATIQ_MESSAGE_DELAY] == 10
    processed = telemetry.sampler.seen[f"process {queue}"]
    assert processed[semconv.MESSAGING_OPERATION_TYPE] == "process"
    assert processed[semconv.MESSAGING_OPERATION_NAME] == "process"
    assert processed[semconv.MESSAGING_DESTINATION_NAME] == queue
    assert processed[semconv.MESSAGING_MESSAGE_ID] == message.message_id
    assert processed[semconv.DRAMATIQ_ACTOR_NAME] == "greet"
    assert processed[semconv.DRAMATIQ_MESSAGE_RETRIES] == 0
    if rig.kind != "stub":
        assert sent[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert isinstance(sent[semconv.SERVER_PORT], int)
        assert not any("guest" in str(value) for value in sent.values())


def test_failed_actor_gives_error_status_and_exception_event(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor(max_retries=0)
    def explode() -> None:
        raise ValueError("boom")

    explode.send()
    [process] = rig.process(telemetry, 1)
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes[semconv.ERROR_TYPE] == "ValueError"
    exception = next(e for e in process.events if e.name == "exception")
    assert exception.attributes["exception.type"].endswith("ValueError")
    assert exception.attributes["exception.message"] == "boom"


def test_use_links_starts_a_new_trace_linked_to_the_send(make_rig, telemetry: Telemetry) -> None:
    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, use_links=True
        )
    )

    @rig.actor
    def greet() -> None:
        pass

    greet.send()
    [process] = rig.process(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]


def test_current_span_inside_a_sync_actor_is_the_process_span(rig: BrokerRig, telemetry: Telemetry) -> None:
    seen: dict[str, int] = {}
    tracer = telemetry.tracer_provider.get_tracer("user")

    @rig.actor
    def work() -> None:
        seen["current"] = trace.get_current_span().get_span_context().span_id
        with tracer.start_as_current_span("user work"):
            pass

    work.send()
    [process] = rig.process(telemetry, 1)
    [user] = telemetry.spans("user work")
    assert seen["current"] == process.context.span_id
    assert user.parent is not None and user.parent.span_id == process.context.span_id


def test_current_span_inside_an_async_actor_is_the_process_span(rig: BrokerRig, telemetry: Telemetry) -> None:
    seen: dict[str, int] = {}
    tracer = telemetry.tracer_provider.get_tracer("user")

    @rig.actor
    async def work() -> None:
        seen["current"] = trace.get_current_span().get_span_context().span_id
        with tracer.start_as_current_span("user async work"):
            pass

    work.send()
    [process] = rig.process(telemetry, 1)
    [user] = telemetry.spans("user async work")
    assert seen["current"] == process.context.span_id
    assert user.parent is not None and user.parent.span_id == process.context.span_id


def test_message_from_an_uninstrumented_producer_gets_a_new_trace(make_rig, telemetry: Telemetry) -> None:
    producer = make_rig(None)
    actor_fn = producer.actor(lambda: None, actor_name="plain")
    actor_fn.send()
    # The same broker now consumes with the middleware, as a separate worker process would.
    producer.broker.add_middleware(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    [process] = producer.process(telemetry, 1)
    assert telemetry.spans("send ") == []
    assert process.parent is None
    assert process.status.status_code is StatusCode.UNSET


def test_spans_are_the_same_wherever_the_middleware_sits(
    make_rig, telemetry: Telemetry, broker_kind: str
) -> None:
    """Appended last or placed first: retries stay under the process span and skips are seen."""
    for first in (False, True):
        telemetry.exporter.clear()
        rig = make_rig(
            OpenTelemetryMiddleware(
                tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
            ),
            first=first,
        )
        calls: list[int] = []

        @rig.actor(max_retries=1, min_backoff=10, max_backoff=20, actor_name=f"flaky_{first}")
        def flaky(calls: list[int] = calls) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first attempt fails")

        flaky.send()
        first_attempt, second_attempt = sorted(
            rig.process(telemetry, 2), key=lambda s: s.attributes[semconv.DRAMATIQ_MESSAGE_RETRIES]
        )
        retry_send = next(
            s
            for s in telemetry.spans("send ")
            if s.parent and s.parent.span_id == first_attempt.context.span_id
        )
        assert (
            second_attempt.parent is not None and second_attempt.parent.span_id == retry_send.context.span_id
        )
        assert retry_send.end_time <= first_attempt.end_time
        assert isinstance(rig.broker.middleware[0], OpenTelemetryMiddleware)
        rig.broker.close()
