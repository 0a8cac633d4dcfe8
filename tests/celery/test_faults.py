"""Faults: bad carriers, a broker that is down, tasks that are rejected, unknown or revoked."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from celery import Celery
from celery.exceptions import Reject
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tests.brokers.workers import closed_port
from tests.celery.conftest import WAIT_S, AppRig, make_app
from tests.dramatiq.conftest import Telemetry

BAD_HEADERS: dict[str, dict[str, Any]] = {
    "missing": {},
    "garbage": {"traceparent": "not a traceparent", "tracestate": "=,=,="},
    "huge": {"traceparent": "00-" + "a" * 8_000 + "-01", "tracestate": "k=" + "v" * 8_000},
    "wrong types": {"traceparent": 12345, "tracestate": ["a", "b"], semconv.PUBLISHED_AT_HEADER: "yesterday"},
    "nested": {"traceparent": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
    "invalid ids": {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
}


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_carriers_are_ignored_and_the_task_runs(
    rig: AppRig, telemetry: Telemetry, instrument: Callable[..., CeleryInstrumentor], headers: dict[str, Any]
) -> None:
    ran: list[int] = []

    @rig.task(name=f"{rig.queue_name}.take")
    def take(value: int) -> None:
        ran.append(value)

    # Published before instrumenting, as a foreign producer would: nothing replaces the headers.
    take.apply_async((1,), headers=headers)
    instrument()
    [process] = rig.run(telemetry, 1)
    assert ran == [1]
    assert process.parent is None, "a bad carrier gives no parent"
    assert process.status.status_code is StatusCode.UNSET
    assert process.kind is SpanKind.CONSUMER
    assert telemetry.counter.started == telemetry.counter.ended


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_publishing_with_the_broker_down_fails_the_send_span_and_raises_celerys_exception(
    telemetry: Telemetry, instrument: Callable[..., CeleryInstrumentor], scheme: str, unique_name: str
) -> None:
    url = f"{scheme}://guest:secret@127.0.0.1:{closed_port()}/0"
    app = Celery(unique_name, broker=url, set_as_current=False)
    app.conf.update(task_publish_retry=False, broker_connection_timeout=1, broker_connection_max_retries=0)

    @app.task(name=f"{unique_name}.job", shared=False)
    def job() -> None:
        pass

    with pytest.raises(Exception) as uninstrumented:
        job.delay()
    instrument()
    tracer = telemetry.tracer_provider.get_tracer("test")
    before = otel_context.get_current()
    with tracer.start_as_current_span("request"):
        with pytest.raises(Exception) as instrumented:
            job.delay()
        assert trace.get_current_span().get_span_context().span_id != 0
    assert otel_context.get_current() == before, "no context left attached"
    assert type(instrumented.value) is type(uninstrumented.value)
    [send] = telemetry.spans("send ")
    assert send.kind is SpanKind.PRODUCER
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[semconv.ERROR_TYPE] == type(uninstrumented.value).__name__
    assert "secret" not in repr(dict(send.attributes))
    assert telemetry.counter.started == telemetry.counter.ended
    assert (
        telemetry.metric_total(semconv.SENT_MESSAGES.name, error__type=send.attributes[semconv.ERROR_TYPE])
        == 1
    )
    app.close()


def test_a_task_that_rejects_its_message_records_the_rejection(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.picky", acks_late=True)
    def picky() -> None:
        raise Reject("not for me", requeue=False)

    picky.delay()
    [process] = rig.run(telemetry, 1)
    assert process.status.status_code is StatusCode.ERROR
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_REJECTED]
    assert event.attributes[semconv.CELERY_REJECT_REASON] == semconv.REJECT_REASON_REJECT
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="rejected") == 1


def test_a_task_the_worker_does_not_know_gets_a_failed_process_span_in_the_senders_trace(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    rig.app.send_task(f"{rig.queue_name}.nobody")
    [process] = rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes[semconv.ERROR_TYPE] == "NotRegistered"
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_REJECTED]
    assert event.attributes[semconv.CELERY_REJECT_REASON] == semconv.REJECT_REASON_UNKNOWN_TASK
    assert telemetry.metric_total(semconv.CONSUMED_MESSAGES.name, error__type="NotRegistered") == 1


def test_a_message_that_is_not_a_task_is_recorded_as_rejected(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    with rig.app.connection_for_write() as connection:
        producer = connection.Producer()
        queue = rig.app.amqp.queues[rig.queue_name]
        producer.publish({"not": "a task"}, routing_key=rig.queue_name, declare=[queue], serializer="json")
    [process] = rig.run(telemetry, 1)
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_REJECTED]
    assert event.attributes[semconv.CELERY_REJECT_REASON] == semconv.REJECT_REASON_INVALID_MESSAGE
    assert process.status.status_code is StatusCode.ERROR


# RabbitMQ drops an expired message itself (Celery gives it a TTL): no worker ever sees it.
@pytest.mark.parametrize("broker_kind", ["memory", "redis"], indirect=True)
def test_an_expired_task_is_recorded_as_revoked(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    ran: list[bool] = []

    @rig.task(name=f"{rig.queue_name}.stale")
    def stale() -> None:
        ran.append(True)

    stale.apply_async(expires=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1))
    [process] = rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")
    assert not ran
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_REVOKED]
    assert event.attributes[semconv.CELERY_REVOKED_EXPIRED] is True
    assert event.attributes[semconv.CELERY_REVOKED_TERMINATED] is False
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="revoked") == 1


def test_a_soft_time_limit_is_an_event_on_the_failed_span(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    # The threads pool has no timer: raising what the prefork pool raises inside the task body
    # shows what the span records (prefork itself runs in the end-to-end tests).
    @rig.task(name=f"{rig.queue_name}.slow")
    def slow() -> None:
        raise SoftTimeLimitExceeded()

    slow.delay()
    [process] = rig.run(telemetry, 1)
    assert process.attributes[semconv.ERROR_TYPE] == "SoftTimeLimitExceeded"
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_TIME_LIMIT]
    assert event.attributes[semconv.CELERY_TIME_LIMIT_KIND] == semconv.TIME_LIMIT_SOFT


def test_a_failing_receiver_elsewhere_does_not_break_tracing(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    from celery import signals

    def broken_receiver(**_: Any) -> None:
        raise RuntimeError("someone else's bug")

    signals.task_prerun.connect(broken_receiver, weak=False)
    try:

        @rig.task(name=f"{rig.queue_name}.fine")
        def fine() -> int:
            return 1

        fine.delay()
        with rig.worker():
            [process] = telemetry.wait_for_spans("process ", 1, WAIT_S)
    finally:
        signals.task_prerun.disconnect(broken_receiver)
    assert process.status.status_code is StatusCode.UNSET


def test_a_pool_process_that_dies_gets_its_process_span_from_the_main_process(
    request: pytest.FixtureRequest, unique_name: str, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    # A prefork pool on Redis: the main process sees the same WorkerLostError on any broker.
    app, cleanups = make_app("redis", request, unique_name)
    rig = AppRig("redis", app, unique_name, cleanups)
    request.addfinalizer(lambda: [cleanup() for cleanup in cleanups])

    @rig.task(name=f"{rig.queue_name}.dies")
    def dies() -> None:
        os._exit(13)

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        result = dies.delay()
    rig.run(telemetry, 1, pool="prefork")
    processes = telemetry.spans("process ")
    assert len(processes) == 1, "exactly one span for the task, after the worker stopped"
    [process] = processes
    [send] = telemetry.spans("send ")
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.attributes[semconv.MESSAGING_MESSAGE_ID] == result.id
    assert process.attributes[semconv.ERROR_TYPE] == "WorkerLostError"
    assert process.status.status_code is StatusCode.ERROR
    assert [e.name for e in process.events if e.name == semconv.EVENT_CELERY_WORKER_LOST]
    assert process.start_time is not None and process.end_time is not None
    assert process.start_time <= process.end_time
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="failure") == 1


def test_a_running_task_revoked_with_terminate_gets_one_failed_span_from_the_main_process(
    request: pytest.FixtureRequest,
    unique_name: str,
    redis_url: str,
    telemetry: Telemetry,
    instrumented: CeleryInstrumentor,
) -> None:
    # ``revoke(terminate=True)`` kills the pool process running the task: only prefork can, and
    # only the main process is left to end the task's span.
    import redis

    app, cleanups = make_app("redis", request, unique_name)
    app.conf.worker_enable_remote_control = True
    rig = AppRig("redis", app, unique_name, cleanups)
    request.addfinalizer(lambda: [cleanup() for cleanup in cleanups])
    started_key = f"{unique_name}:started"

    @rig.task(name=f"{rig.queue_name}.long")
    def long() -> None:
        client = redis.Redis.from_url(redis_url)
        client.set(started_key, os.getpid(), ex=300)
        client.blpop([f"{unique_name}:never"], timeout=120)  # works until it is terminated

    client = redis.Redis.from_url(redis_url)
    try:
        with rig.worker(pool="prefork", concurrency=1):
            result = long.delay()
            deadline = time.monotonic() + WAIT_S
            while not client.exists(started_key):
                assert time.monotonic() < deadline, "the task never started"
                time.sleep(0.05)
            app.control.revoke(result.id, terminate=True)
            [process] = telemetry.wait_for_spans("process ", 1, WAIT_S)
    finally:
        client.close()
    assert len(telemetry.spans("process ")) == 1, "one span for the task"
    [send] = telemetry.spans("send ")
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.attributes[semconv.MESSAGING_MESSAGE_ID] == result.id
    assert process.status.status_code is StatusCode.ERROR
    [event] = [e for e in process.events if e.name == semconv.EVENT_CELERY_REVOKED]
    assert event.attributes[semconv.CELERY_REVOKED_TERMINATED] is True
    assert event.attributes[semconv.CELERY_REVOKED_EXPIRED] is False
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="revoked") == 1
