"""Every path a message can take: retries, dead letters, delays, pipelines, groups, skips, limits."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq import group, pipeline
from dramatiq.middleware import AgeLimit, TimeLimit
from opentelemetry.trace import StatusCode

from tasklens import semconv
from tests.dramatiq.conftest import BrokerRig, Telemetry


def _by_attempt(spans):
    return sorted(spans, key=lambda s: s.attributes[semconv.DRAMATIQ_MESSAGE_RETRIES])


def _events(span, name):
    return [e for e in span.events if e.name == name]


def _child_of(spans, parent):
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_retries_stay_in_one_trace_until_exhausted(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor(max_retries=2, min_backoff=10, max_backoff=20)
    def always_fails() -> None:
        raise RuntimeError("nope")

    always_fails.send()
    attempts = _by_attempt(rig.process(telemetry, 3))
    assert [s.attributes[semconv.DRAMATIQ_MESSAGE_RETRIES] for s in attempts] == [0, 1, 2]
    assert len({s.context.trace_id for s in attempts + telemetry.spans("send ")}) == 1
    assert all(s.status.status_code is StatusCode.ERROR for s in attempts)
    for attempt, retry_number in zip(attempts[:2], (1, 2), strict=True):
        [scheduled] = _events(attempt, semconv.EVENT_RETRY_SCHEDULED)
        assert scheduled.attributes[semconv.DRAMATIQ_RETRY_COUNT] == retry_number
        assert scheduled.attributes[semconv.DRAMATIQ_RETRY_DELAY] > 0
        assert _events(attempt, semconv.EVENT_DEAD_LETTERED) == []
    [dead] = _events(attempts[2], semconv.EVENT_DEAD_LETTERED)
    assert dead.attributes[semconv.DRAMATIQ_DEAD_LETTER_REASON] == "retries_exhausted"
    assert _events(attempts[2], semconv.EVENT_RETRY_SCHEDULED) == []


def test_exception_listed_in_throws_is_dead_lettered_without_retry(
    rig: BrokerRig, telemetry: Telemetry
) -> None:
    @rig.actor(max_retries=5, min_backoff=10, throws=(KeyError,))
    def lookup() -> None:
        raise KeyError("missing")

    lookup.send()
    [attempt] = rig.process(telemetry, 1)
    [dead] = _events(attempt, semconv.EVENT_DEAD_LETTERED)
    assert dead.attributes[semconv.DRAMATIQ_DEAD_LETTER_REASON] == "throws"
    assert _events(attempt, semconv.EVENT_RETRY_SCHEDULED) == []
    assert attempt.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert len(telemetry.spans("send ")) == 1


def test_retry_when_false_is_honoured(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor(retry_when=lambda retries, exc: not isinstance(exc, ValueError), min_backoff=10)
    def picky() -> None:
        raise ValueError("do not retry")

    picky.send()
    [attempt] = rig.process(telemetry, 1)
    assert _events(attempt, semconv.EVENT_RETRY_SCHEDULED) == []
    [dead] = _events(attempt, semconv.EVENT_DEAD_LETTERED)
    assert dead.attributes[semconv.DRAMATIQ_DEAD_LETTER_REASON] == "retries_exhausted"


def test_delayed_message_has_one_send_and_no_span_for_the_move(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def remind() -> None:
        pass

    remind.send_with_options(delay=50)
    [process] = rig.process(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert send.attributes[semconv.DRAMATIQ_MESSAGE_DELAY] == 50
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert telemetry.counter.started == telemetry.counter.ended == 2


@pytest.mark.parametrize("style", ["pipeline", "pipe operator"])
def test_pipeline_steps_chain_in_one_trace(rig: BrokerRig, telemetry: Telemetry, style: str) -> None:
    @rig.actor
    def fetch() -> int:
        return 1

    @rig.actor
    def transform(value: int) -> int:
        return value + 1

    @rig.actor
    def store(value: int) -> None:
        assert value == 2

    if style == "pipeline":
        pipeline([fetch.message(), transform.message(), store.message()], broker=rig.broker).run()
    else:
        previous = dramatiq.broker.global_broker
        dramatiq.set_broker(rig.broker)  # the | operator builds its pipeline on the global broker
        try:
            (fetch.message() | transform.message() | store.message()).run()
        finally:
            dramatiq.broker.global_broker = previous

    processes = rig.process(telemetry, 3)
    sends = telemetry.spans("send ")
    assert len(sends) == 3
    assert len({s.context.trace_id for s in processes + sends}) == 1
    by_actor = {s.attributes[semconv.DRAMATIQ_ACTOR_NAME]: s for s in processes}
    for previous, step in (("fetch", "transform"), ("transform", "store")):
        [step_send] = [s for s in _child_of(sends, by_actor[previous])]
        assert step_send.attributes[semconv.DRAMATIQ_ACTOR_NAME] == step
        assert by_actor[step].parent.span_id == step_send.context.span_id


def test_group_completion_callback_stays_in_the_trace(
    make_rig, telemetry: Telemetry, broker_kind: str
) -> None:
    from dramatiq.middleware import GroupCallbacks
    from dramatiq.rate_limits.backends import StubBackend

    from tasklens.dramatiq import OpenTelemetryMiddleware

    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    rig.broker.add_middleware(GroupCallbacks(StubBackend()))

    @rig.actor
    def part(n: int) -> None:
        pass

    @rig.actor
    def aggregate() -> None:
        pass

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        fan_out = group([part.message(i) for i in range(3)], broker=rig.broker)
        fan_out.add_completion_callback(aggregate.message())
        fan_out.run()

    processes = rig.process(telemetry, 4)
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in processes} == {trace_id}
    [callback] = [s for s in processes if s.attributes[semconv.DRAMATIQ_ACTOR_NAME] == "aggregate"]
    callback_send = next(s for s in telemetry.spans("send ") if s.context.span_id == callback.parent.span_id)
    parents = {s.context.span_id for s in processes if s.attributes[semconv.DRAMATIQ_ACTOR_NAME] == "part"}
    assert callback_send.parent.span_id in parents


def test_age_limit_skip_is_recorded(make_rig, telemetry: Telemetry) -> None:
    from tasklens.dramatiq import OpenTelemetryMiddleware

    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    ran: list[int] = []

    @rig.actor(max_age=1)
    def stale() -> None:
        ran.append(1)

    stale.send_with_options(delay=20)  # ages past max_age while delayed
    [process] = rig.process(telemetry, 1)
    assert ran == []
    assert _events(process, semconv.EVENT_SKIPPED)
    [dead] = _events(process, semconv.EVENT_DEAD_LETTERED)
    assert dead.attributes[semconv.DRAMATIQ_DEAD_LETTER_REASON] == "age_limit"
    assert process.status.status_code is StatusCode.UNSET
    assert any(isinstance(m, AgeLimit) for m in rig.broker.middleware)


def test_time_limit_exceeded_sets_error_type(make_rig, telemetry: Telemetry) -> None:
    import time

    from tasklens.dramatiq import OpenTelemetryMiddleware

    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    for middleware in rig.broker.middleware:
        if isinstance(middleware, TimeLimit):
            middleware.manager.interval = 0.01
    rig.broker.emit_after("process_boot")

    @rig.actor(time_limit=50, max_retries=0)
    def slow() -> None:
        for _ in range(400):
            time.sleep(0.01)

    slow.send()
    [process] = rig.process(telemetry, 1)
    assert process.attributes[semconv.ERROR_TYPE] == "TimeLimitExceeded"
    assert process.status.status_code is StatusCode.ERROR


def test_message_for_an_unknown_actor_is_traced_as_an_error(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def known() -> None:
        pass

    rig.broker.enqueue(
        dramatiq.Message(queue_name=rig.queue_name, actor_name="ghost", args=(), kwargs={}, options={})
    )
    [process] = rig.process(telemetry, 1)
    assert process.attributes[semconv.DRAMATIQ_ACTOR_NAME] == "ghost"
    assert process.attributes[semconv.ERROR_TYPE] == "ActorNotFound"
    assert process.status.status_code is StatusCode.ERROR


def test_actor_that_catches_its_own_error_is_ok(rig: BrokerRig, telemetry: Telemetry) -> None:
    @rig.actor
    def careful() -> None:
        try:
            raise ValueError("handled")
        except ValueError:
            pass

    careful.send()
    [process] = rig.process(telemetry, 1)
    assert process.status.status_code is StatusCode.UNSET
    assert semconv.ERROR_TYPE not in process.attributes
    assert not [e for e in process.events if e.name == "exception"]
