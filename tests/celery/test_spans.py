"""Span shape on real workers: send and process spans, attributes at start, parents, statuses."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tests.celery.conftest import AppRig
from tests.dramatiq.conftest import Telemetry


def test_send_and_process_spans_carry_their_attributes_from_the_start(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.add")
    def add(x: int, y: int) -> int:
        return x + y

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request_span:
        result = add.delay(1, 2)
    [process] = rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")

    queue, task_name = rig.queue_name, add.name
    assert send.name == f"send {queue}" and send.kind is SpanKind.PRODUCER
    assert process.name == f"process {queue}" and process.kind is SpanKind.CONSUMER
    assert send.parent is not None and send.parent.span_id == request_span.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.context.trace_id == request_span.get_span_context().trace_id

    common = {
        semconv.MESSAGING_SYSTEM: "celery",
        semconv.MESSAGING_DESTINATION_NAME: queue,
        semconv.CELERY_TASK_NAME: task_name,
        semconv.MESSAGING_MESSAGE_ID: result.id,
    }
    at_start = telemetry.sampler.seen
    assert (
        at_start[send.name].items()
        >= {
            **common,
            semconv.MESSAGING_OPERATION_TYPE: "send",
            semconv.MESSAGING_OPERATION_NAME: "send",
        }.items()
    )
    assert (
        at_start[process.name].items()
        >= {
            **common,
            semconv.MESSAGING_OPERATION_TYPE: "process",
            semconv.MESSAGING_OPERATION_NAME: "process",
            semconv.CELERY_TASK_RETRIES: 0,
        }.items()
    )
    if rig.kind == "memory":
        assert semconv.SERVER_ADDRESS not in send.attributes
    else:
        assert send.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert send.attributes[semconv.SERVER_PORT] == (6379 if rig.kind == "redis" else 5672)
        assert "guest" not in repr(dict(send.attributes))
    assert send.status.status_code is StatusCode.UNSET
    assert process.status.status_code is StatusCode.UNSET
    assert telemetry.counter.started == telemetry.counter.ended


def test_user_spans_and_logs_inside_a_task_belong_to_its_process_span(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor, caplog: pytest.LogCaptureFixture
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    seen: dict[str, Any] = {}

    @rig.task(name=f"{rig.queue_name}.work")
    def work() -> None:
        with tracer.start_as_current_span("inner"):
            logging.getLogger("tests.celery.work").warning("working")
        seen["current"] = trace.get_current_span().get_span_context()

    with caplog.at_level(logging.WARNING, logger="tests.celery.work"):
        result = work.delay()
        [process] = rig.run(telemetry, 1)
    [inner] = telemetry.spans("inner")
    assert inner.parent is not None and inner.parent.span_id == process.context.span_id
    assert seen["current"].span_id == process.context.span_id
    [record] = [r for r in caplog.records if r.name == "tests.celery.work"]
    assert record.__dict__[semconv.LOG_CELERY_TASK_ID] == result.id
    assert record.__dict__[semconv.LOG_CELERY_TASK_NAME] == work.name
    outside = logging.getLogger("tests.celery.work").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
    assert semconv.LOG_CELERY_TASK_ID not in outside.__dict__


def test_a_failing_task_ends_its_process_span_with_error(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.fail")
    def fail() -> None:
        raise KeyError("missing")

    fail.delay()
    [process] = rig.run(telemetry, 1)
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes[semconv.ERROR_TYPE] == "KeyError"
    [exception] = [e for e in process.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "KeyError"
    assert telemetry.metric_total(semconv.CELERY_TASK_FAILURES.name, celery__task__state="failure") == 1
    assert telemetry.metric_total(semconv.CONSUMED_MESSAGES.name, error__type="KeyError") == 1


@pytest.mark.parametrize("delay", ["countdown", "eta"])
def test_priority_and_countdown_or_eta_are_on_the_send_span(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor, delay: str
) -> None:
    @rig.task(name=f"{rig.queue_name}.later")
    def later() -> None:
        pass

    if delay == "countdown":
        later.apply_async(countdown=0.2, priority=3)
    else:
        eta = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.2)
        later.apply_async(eta=eta, priority=3)
    [process] = rig.run(telemetry, 1)
    [send] = telemetry.spans("send ")
    at_start = telemetry.sampler.seen[send.name]
    assert at_start[semconv.CELERY_TASK_PRIORITY] == 3
    assert 0 < at_start[semconv.CELERY_TASK_COUNTDOWN] <= 0.2
    assert at_start[semconv.CELERY_TASK_ETA].endswith("+00:00")
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    [wait] = telemetry.metric_points(semconv.CELERY_TASK_QUEUE_WAIT.name)
    assert wait.count == 1


def test_the_queue_wait_runs_from_the_eta_when_there_is_one(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.overdue")
    def overdue() -> None:
        pass

    # Runnable for an hour already: an hour of waiting, though it was published just now.
    overdue.apply_async(eta=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
    rig.run(telemetry, 1)
    [wait] = telemetry.metric_points(semconv.CELERY_TASK_QUEUE_WAIT.name)
    assert wait.count == 1 and wait.sum >= 3600


def test_the_queue_wait_runs_from_the_published_at_header(
    rig: AppRig, telemetry: Telemetry, instrument: Any
) -> None:
    import time

    @rig.task(name=f"{rig.queue_name}.waited")
    def waited() -> None:
        pass

    # As if published ten minutes ago by an instrumented producer.
    waited.apply_async(headers={semconv.PUBLISHED_AT_HEADER: int(time.time() * 1000) - 600_000})
    instrument()
    rig.run(telemetry, 1)
    [wait] = telemetry.metric_points(semconv.CELERY_TASK_QUEUE_WAIT.name)
    assert wait.count == 1 and wait.sum >= 600


def test_capture_args_records_redacted_arguments(rig: AppRig, telemetry: Telemetry, instrument: Any) -> None:
    instrument(capture_args=True)

    @rig.task(name=f"{rig.queue_name}.login")
    def login(user: str, password: str) -> None:
        pass

    login.delay("ada", password="hunter2")
    [process] = rig.run(telemetry, 1)
    captured = telemetry.sampler.seen[process.name][semconv.CELERY_TASK_ARGS]
    assert '"ada"' in captured and "[REDACTED]" in captured and "hunter2" not in captured
