"""One trace through every Celery path: retries, countdowns, canvas, replace, send_task, eager."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from celery import chain, chord, group
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tests.celery.conftest import WAIT_S, AppRig
from tests.dramatiq.conftest import Telemetry


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans}


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    return _by_id(spans)[span.parent.span_id]


def _one_trace(spans: list[ReadableSpan]) -> None:
    assert len({span.context.trace_id for span in spans}) == 1, [s.name for s in spans]


def _attempt(span: ReadableSpan) -> int:
    return int(span.attributes[semconv.CELERY_TASK_RETRIES])


@pytest.mark.parametrize("style", ["retry", "autoretry_for"])
def test_each_attempt_is_a_process_span_and_each_retry_send_sits_under_the_failed_attempt(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor, style: str
) -> None:
    if style == "retry":

        @rig.task(bind=True, name=f"{rig.queue_name}.flaky", max_retries=2, default_retry_delay=0.05)
        def flaky(self: Any) -> str:
            if self.request.retries < 2:
                raise self.retry(exc=ConnectionError("down"))
            return "ok"

    else:

        @rig.task(
            bind=True,
            name=f"{rig.queue_name}.flaky",
            autoretry_for=(ConnectionError,),
            retry_backoff=False,
            default_retry_delay=0.05,
            max_retries=2,
        )
        def flaky(self: Any) -> str:
            if self.request.retries < 2:
                raise ConnectionError("down")
            return "ok"

    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("request"):
        flaky.delay()
    processes = sorted(rig.run(telemetry, 3), key=_attempt)
    spans = telemetry.spans()
    _one_trace(spans)
    sends = telemetry.spans("send ")
    assert len(sends) == 3
    assert [_attempt(p) for p in processes] == [0, 1, 2]
    first_send = _parent(processes[0], spans)
    assert first_send.kind.name == "PRODUCER" and _parent(first_send, spans).name == "request"
    for failed, next_attempt in itertools.pairwise(processes):
        retry_send = _parent(next_attempt, spans)
        assert retry_send.name.startswith("send ")
        # Under the failed attempt, not under the previous retry's send.
        assert _parent(retry_send, spans).context == failed.context
        assert retry_send.attributes[semconv.CELERY_TASK_RETRIES] == _attempt(next_attempt)
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.attributes[semconv.ERROR_TYPE] == "ConnectionError"
        [event] = [e for e in failed.events if e.name == semconv.EVENT_CELERY_RETRY_SCHEDULED]
        assert event.attributes[semconv.CELERY_RETRY_COUNTDOWN] == pytest.approx(0.05)
        assert "down" in str(event.attributes[semconv.CELERY_RETRY_REASON])
    assert processes[-1].status.status_code is StatusCode.UNSET
    assert telemetry.metric_total(semconv.CELERY_TASK_RETRIES_METRIC.name) == 2
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="retry") == 2


def test_chain_steps_are_sent_from_the_previous_step(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.inc")
    def inc(value: int) -> int:
        return value + 1

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        chain(inc.s(0), inc.s(), inc.s()).apply_async()
    processes = rig.run(telemetry, 3)
    spans = telemetry.spans()
    _one_trace(spans)
    [step] = [p for p in processes if _parent(_parent(p, spans), spans).name == "request"]
    for _ in range(2):
        [following] = [p for p in processes if _parent(_parent(p, spans), spans) is step]
        step = following


def test_group_and_chord_callback_stay_in_the_header_tasks_trace(
    broker_kind: str, make_rig: Callable[..., AppRig], telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    rig = make_rig()

    @rig.task(name=f"{rig.queue_name}.square")
    def square(value: int) -> int:
        return value * value

    @rig.task(name=f"{rig.queue_name}.total")
    def total(values: list[int]) -> int:
        return sum(values)

    tracer = telemetry.tracer_provider.get_tracer("test")
    with rig.worker():
        with tracer.start_as_current_span("request"):
            result = chord(group(square.s(n) for n in range(3)), total.s()).apply_async()
        assert result.get(timeout=WAIT_S) == 5
        telemetry.wait_for_spans("process ", 4, WAIT_S)
    spans = telemetry.spans()
    _one_trace(spans)
    processes = telemetry.spans("process ")
    [callback] = [p for p in processes if p.attributes[semconv.CELERY_TASK_NAME] == total.name]
    headers = [p for p in processes if p is not callback]
    callback_send = _parent(callback, spans)
    assert _parent(callback_send, spans) in headers, "the last header task sends the callback"
    for header in headers:
        assert _parent(_parent(header, spans), spans).name == "request"


def test_group_members_are_sent_under_the_caller(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.member")
    def member(value: int) -> int:
        return value

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        group(member.s(n) for n in range(3)).apply_async()
    processes = rig.run(telemetry, 3)
    spans = telemetry.spans()
    _one_trace(spans)
    assert len({p.attributes[semconv.MESSAGING_MESSAGE_ID] for p in processes}) == 3
    for process in processes:
        assert _parent(_parent(process, spans), spans).name == "request"


def test_replaced_task_continues_the_trace(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.final")
    def final() -> str:
        return "done"

    @rig.task(bind=True, name=f"{rig.queue_name}.replaced")
    def replaced(self: Any) -> None:
        raise self.replace(final.s())

    replaced.delay()
    processes = rig.run(telemetry, 2)
    spans = telemetry.spans()
    _one_trace(spans)
    [first] = [p for p in processes if p.attributes[semconv.CELERY_TASK_NAME] == replaced.name]
    [second] = [p for p in processes if p is not first]
    assert _parent(_parent(second, spans), spans) is first
    assert first.status.status_code is StatusCode.UNSET


def test_send_task_by_name_from_an_app_that_does_not_register_it(
    make_rig: Callable[..., AppRig], telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    worker_rig = make_rig()
    producer = make_rig("producer")
    name = f"{worker_rig.queue_name}.remote"

    @worker_rig.task(name=name)
    def remote(value: int) -> int:
        return value

    assert name not in producer.app.tasks
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        producer.app.send_task(name, (7,))
    assert not trace.get_current_span().get_span_context().is_valid, "no context left attached"
    [process] = worker_rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert send.attributes[semconv.CELERY_TASK_NAME] == name
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert telemetry.counter.started == telemetry.counter.ended


def test_eager_tasks_get_a_process_span_under_the_caller_and_no_send(
    make_rig: Callable[..., AppRig], telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    rig = make_rig()
    rig.app.conf.task_always_eager = True

    @rig.task(name=f"{rig.queue_name}.inner")
    def inner() -> int:
        return 1

    @rig.task(name=f"{rig.queue_name}.outer")
    def outer() -> int:
        return int(inner.delay().result) + 1

    @rig.task(name=f"{rig.queue_name}.broken")
    def broken() -> None:
        raise ValueError("eager failure")

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        assert outer.delay().get() == 2
        broken.delay()  # the error is stored in the result, as Celery does
    spans = telemetry.spans()
    assert not telemetry.spans("send ")
    [outer_span] = [s for s in spans if s.attributes.get(semconv.CELERY_TASK_NAME) == outer.name]
    [inner_span] = [s for s in spans if s.attributes.get(semconv.CELERY_TASK_NAME) == inner.name]
    [broken_span] = [s for s in spans if s.attributes.get(semconv.CELERY_TASK_NAME) == broken.name]
    assert outer_span.parent is not None and outer_span.parent.span_id == request.get_span_context().span_id
    assert inner_span.parent is not None and inner_span.parent.span_id == outer_span.context.span_id
    assert broken_span.status.status_code is StatusCode.ERROR
    assert broken_span.attributes[semconv.ERROR_TYPE] == "ValueError"
    assert outer_span.name == f"process {rig.queue_name}"
    assert semconv.SERVER_ADDRESS not in outer_span.attributes, "an eager task reaches no broker"


def test_eager_tasks_that_propagate_their_error_still_end_their_span_with_it(
    make_rig: Callable[..., AppRig], telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    rig = make_rig()
    rig.app.conf.update(task_always_eager=True, task_eager_propagates=True)

    @rig.task(name=f"{rig.queue_name}.broken")
    def broken() -> None:
        raise ValueError("eager failure")

    with pytest.raises(ValueError, match="eager failure"):
        broken.delay()
    [process] = telemetry.spans("process ")
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes[semconv.ERROR_TYPE] == "ValueError"


def test_use_links_starts_a_new_trace_linked_to_the_send(
    rig: AppRig, telemetry: Telemetry, instrument: Callable[..., CeleryInstrumentor]
) -> None:
    instrument(use_links=True)

    @rig.task(name=f"{rig.queue_name}.linked")
    def linked() -> None:
        pass

    linked.delay()
    [process] = rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    [link] = process.links
    assert link.context.span_id == send.context.span_id
