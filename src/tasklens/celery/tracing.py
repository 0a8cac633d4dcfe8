"""The receivers of Celery's signals that trace and measure every publish and every task run.

Send side: ``Celery.send_task`` (every ``apply_async``, ``delay``, ``retry``, canvas step and
``send_task`` by name goes through it) marks the publish under way; ``before_task_publish``
starts the ``send`` span and writes its context into the message headers; ``after_task_publish``
ends it. When the publish raises, ``send_task`` ends the span with the error: no span stays
open, and no context is ever attached for a send.

Worker side: ``task_prerun`` starts the ``process`` span and makes it current, ``task_failure``
and ``task_retry`` note what happened, ``task_postrun`` (which Celery sends in a ``finally``)
ends it. The state lives in a context variable for the task running on the thread, so nested
eager tasks and pool threads each see their own, and nothing outlives the task.
``task_unknown``, ``task_rejected`` and ``task_revoked`` concern tasks that never ran: each gets
a ``process`` span that starts and ends at once, so every task taken from the queue is counted.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
import sys
import time
from collections.abc import Hashable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from tasklens import semconv
from tasklens.celery.routes import Route, RouteTable
from tasklens.messaging import propagation
from tasklens.messaging.arguments import ArgsCapture, format_arguments
from tasklens.messaging.errors import describe, error_type, record_exception
from tasklens.messaging.instruments import create_instruments
from tasklens.messaging.tally import observed_counter

__all__ = ["CeleryTracing", "current_task_fields"]

#: Instrumentation scope of every span and metric.
SCOPE_NAME = "tasklens.celery"

#: The queue of an eager task (which is never routed) when the app names no default queue.
DEFAULT_QUEUE = "celery"

#: Set on a worker ``Request`` once its span was recorded from the main process.
_RECORDED_ATTRIBUTE = "_tasklens_recorded"

#: Celery task states the worker side tells apart (``celery.states``).
_SUCCESS, _FAILURE, _RETRY, _REJECTED = "SUCCESS", "FAILURE", "RETRY", "REJECTED"

logger = logging.getLogger(__name__)


class _Running:
    """What is kept about the task the current thread runs, from ``task_prerun`` to ``task_postrun``."""

    __slots__ = (
        "context_token",
        "exception",
        "request",
        "retry",
        "route",
        "span",
        "started",
        "state_token",
        "task_id",
    )

    def __init__(self, task_id: str, request: Any, route: Route, span: Span, started: float) -> None:
        self.task_id = task_id
        self.request = request
        self.route = route
        self.span = span
        self.started = started
        self.exception: BaseException | None = None
        self.retry: BaseException | None = None
        self.context_token: object = None
        self.state_token: Token[_Running | None] | None = None


class _Publishing:
    """A publish under way on this thread: the app sending it, then its ``send`` span."""

    __slots__ = ("app", "route", "span", "started", "task_id")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.span: Span | None = None
        self.route: Route | None = None
        self.task_id: str | None = None
        self.started = 0.0


#: The task the current thread runs, with its span.
_running: ContextVar[_Running | None] = ContextVar("tasklens_celery_running", default=None)
#: The publish under way on the current thread.
_publishing: ContextVar[_Publishing | None] = ContextVar("tasklens_celery_publishing", default=None)


def current_task_fields() -> dict[str, str] | None:
    """The task id and name for log records made while a task runs, else None."""
    state = _running.get()
    if state is None:
        return None
    return {semconv.LOG_CELERY_TASK_ID: state.task_id, semconv.LOG_CELERY_TASK_NAME: state.route.task_name}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _parse_eta(eta: Any) -> datetime.datetime | None:
    if isinstance(eta, datetime.datetime):
        parsed = eta
    elif isinstance(eta, str) and eta:
        try:
            parsed = datetime.datetime.fromisoformat(eta)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def _carrier(source: Any) -> dict[str, str] | None:
    """The propagator's fields found on a request (attributes) or in message headers (a dict)."""
    fields = propagation.carrier_fields()
    read = source.get if isinstance(source, Mapping) else lambda name: getattr(source, name, None)
    carrier = {}
    for name in fields:
        value = read(name)
        if isinstance(value, str):
            carrier[name] = value
    return carrier or None


class CeleryTracing:
    """Spans and metrics for Celery publishes and task runs; its methods are signal receivers.

    Parameters:
      tracer_provider(TracerProvider): Where spans go. Defaults to the global provider.
      meter_provider(MeterProvider): Where metrics go. Defaults to the global provider.
      use_links(bool): A process span starts a new trace linked to its send span. Defaults to False.
      capture_args(bool|callable): Record the task's arguments as ``celery.task.args`` (see
        :func:`tasklens.messaging.arguments.format_arguments`). Defaults to False.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        use_links: bool = False,
        capture_args: ArgsCapture = False,
    ) -> None:
        self.use_links = use_links
        self.capture_args = capture_args
        instruments = create_instruments(
            SCOPE_NAME,
            tracer_provider,
            meter_provider,
            in_flight=semconv.CELERY_TASKS_IN_FLIGHT,
            queue_wait=semconv.CELERY_TASK_QUEUE_WAIT,
        )
        self._tracer = instruments.tracer
        self._sent = instruments.sent
        self._consumed = instruments.consumed
        self._started = instruments.started
        self._send_duration = instruments.send_duration
        self._process_duration = instruments.process_duration
        self._queue_wait = instruments.queue_wait
        self._retries = observed_counter(instruments.meter, semconv.CELERY_TASK_RETRIES_METRIC)
        self._failures = observed_counter(instruments.meter, semconv.CELERY_TASK_FAILURES)
        self._routes = RouteTable()

    # -- send side -------------------------------------------------------------------------------

    def send_task(self, wrapped: Any, app: Any, args: Any, kwargs: Any) -> Any:
        """Wraps ``Celery.send_task``: whatever the publish does, its span ends and the caller gets
        Celery's own result or exception."""
        publishing = _Publishing(app)
        token = _publishing.set(publishing)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exception:
            self._end_failed_send(publishing, exception, args, kwargs)
            raise
        finally:
            _publishing.reset(token)
        if publishing.span is not None:  # after_task_publish was not sent: end it anyway
            self._end_send(publishing)
        return result

    def before_task_publish(
        self,
        sender: Any = None,
        body: Any = None,
        exchange: Any = None,
        routing_key: Any = None,
        headers: Any = None,
        properties: Any = None,
        declare: Any = None,
        **_: Any,
    ) -> None:
        try:
            if not isinstance(headers, dict):
                return
            publishing = _publishing.get()
            if publishing is None:
                # Published without Celery.send_task (amqp.send_task_message called directly).
                publishing = _Publishing(None)
                _publishing.set(publishing)
            elif publishing.span is not None:
                # A publish made from inside another's signal receiver: end the outer one first.
                self._end_send(publishing)
            header_name = headers.get("task")
            task_name = header_name if isinstance(header_name, str) else str(sender)
            queue_name = _destination(routing_key, exchange, declare)
            route = self._routes.route(publishing.app, queue_name, task_name)
            attributes = dict(route.send_span_attributes)
            task_id = headers.get("id")
            if isinstance(task_id, str):
                attributes[semconv.MESSAGING_MESSAGE_ID] = task_id
            published_at = _now_ms()
            eta = _parse_eta(headers.get("eta"))
            if eta is not None:
                attributes[semconv.CELERY_TASK_ETA] = eta.isoformat()
                attributes[semconv.CELERY_TASK_COUNTDOWN] = max(0.0, eta.timestamp() - published_at / 1000)
            retries = headers.get("retries")
            if isinstance(retries, int) and retries:
                attributes[semconv.CELERY_TASK_RETRIES] = retries
            priority = properties.get("priority") if isinstance(properties, dict) else None
            if isinstance(priority, int):
                attributes[semconv.CELERY_TASK_PRIORITY] = priority
            span = self._tracer.start_span(route.send_name, kind=SpanKind.PRODUCER, attributes=attributes)
            publishing.span = span
            publishing.route = route
            publishing.task_id = task_id if isinstance(task_id, str) else None
            publishing.started = time.perf_counter()
            # A retried or re-sent task carries its previous attempt's carrier in its headers.
            for name in propagation.carrier_fields():
                headers.pop(name, None)
            headers.update(propagation.inject(span))
            headers[semconv.PUBLISHED_AT_HEADER] = published_at
        except Exception:  # the publish goes on whatever happens here
            logger.debug("Starting the send span failed.", exc_info=True)

    def after_task_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        publishing = _publishing.get()
        if publishing is None or publishing.span is None:
            return
        if isinstance(headers, dict) and headers.get("id") != publishing.task_id:
            return
        try:
            self._end_send(publishing)
        except Exception:
            logger.debug("Ending the send span failed.", exc_info=True)
        if publishing.app is None:  # not inside Celery.send_task: nothing else will clear it
            _publishing.set(None)

    def _end_send(self, publishing: _Publishing) -> None:
        span, route = publishing.span, publishing.route
        publishing.span = None
        if span is None or route is None:
            return
        elapsed = time.perf_counter() - publishing.started
        span.end()
        self._sent.add(route, route.send_metric_attributes)
        self._send_duration.record(route, route.send_metric_attributes, elapsed)

    def _end_failed_send(
        self, publishing: _Publishing, exception: BaseException, args: Any, kwargs: Any
    ) -> None:
        try:
            span, route = publishing.span, publishing.route
            publishing.span = None
            if span is None or route is None:
                # The publish failed before it was signalled (routing, encoding): the attempt
                # still gets its span.
                task_name = args[0] if args else kwargs.get("name")
                queue = kwargs.get("queue") or kwargs.get("routing_key")
                if not isinstance(queue, str):
                    queue = getattr(queue, "name", None) or _default_queue(publishing.app)
                route = self._routes.route(publishing.app, queue, str(task_name))
                attributes = dict(route.send_span_attributes)
                if isinstance(kwargs.get("task_id"), str):
                    attributes[semconv.MESSAGING_MESSAGE_ID] = kwargs["task_id"]
                span = self._tracer.start_span(route.send_name, kind=SpanKind.PRODUCER, attributes=attributes)
                publishing.started = time.perf_counter()
            failure = error_type(exception)
            if span.is_recording():
                span.set_attribute(semconv.ERROR_TYPE, failure)
                record_exception(span, exception)
                span.set_status(Status(StatusCode.ERROR, f"{failure}: {describe(exception)}"))
            elapsed = time.perf_counter() - publishing.started
            span.end()
            attributes = {**route.send_metric_attributes, semconv.ERROR_TYPE: failure}
            self._sent.add((route, failure), attributes)
            self._send_duration.record((route, failure), attributes, elapsed)
        except Exception:
            logger.debug("Ending the failed send span failed.", exc_info=True)

    # -- worker side -----------------------------------------------------------------------------

    def task_prerun(self, sender: Any = None, task_id: Any = None, task: Any = None, **_: Any) -> None:
        try:
            task = task if task is not None else sender
            request = task.request
            self._start_running(task, request, str(task_id))
        except Exception:
            logger.debug("Starting the process span failed.", exc_info=True)

    def _start_running(self, task: Any, request: Any, task_id: str) -> None:
        delivery_info = getattr(request, "delivery_info", None) or {}
        app = getattr(task, "app", None)
        queue_name = delivery_info.get("routing_key") or _default_queue(app)
        # An eager task never reaches a broker: it names no server.
        route = self._routes.route(None if request.is_eager else app, queue_name, task.name)
        attributes = dict(route.process_span_attributes)
        attributes[semconv.MESSAGING_MESSAGE_ID] = task_id
        retries = getattr(request, "retries", 0)
        attributes[semconv.CELERY_TASK_RETRIES] = retries if isinstance(retries, int) else 0
        if self.capture_args is not False:
            captured = self._captured_arguments(request)
            if captured is not None:
                attributes[semconv.CELERY_TASK_ARGS] = captured
        span, parent = self._start_process_span(route, attributes, _carrier(request))
        state = _Running(task_id, request, route, span, time.perf_counter())
        state.context_token = otel_context.attach(trace.set_span_in_context(span, parent))
        state.state_token = _running.set(state)

        self._started.add(route, route.process_metric_attributes)
        runnable_at = _runnable_at(getattr(request, semconv.PUBLISHED_AT_HEADER, None), request.eta)
        if runnable_at is not None:
            self._queue_wait.record(
                route, route.process_metric_attributes, max(0.0, time.time() - runnable_at)
            )

    def _start_process_span(
        self,
        route: Route,
        attributes: dict[str, Any],
        carrier: dict[str, str] | None,
        start_time: int | None = None,
    ) -> tuple[Span, otel_context.Context | None]:
        parent = propagation.extract(carrier)
        links: list[Link] | None = None
        if self.use_links and parent is not None:
            remote = trace.get_current_span(parent).get_span_context()
            links = [Link(remote)]
            parent = otel_context.Context()  # a new trace, keeping nothing of the producer's
        span = self._tracer.start_span(
            route.process_name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            start_time=start_time,
        )
        return span, parent

    def _captured_arguments(self, request: Any) -> str | None:
        try:
            return format_arguments(self.capture_args, tuple(request.args or ()), dict(request.kwargs or {}))
        except Exception:  # a user's callable never breaks a task
            logger.debug("capture_args failed for task %s.", getattr(request, "id", None), exc_info=True)
            return None

    def task_failure(self, sender: Any = None, task_id: Any = None, exception: Any = None, **_: Any) -> None:
        state = _running.get()
        if state is not None and state.task_id == task_id and isinstance(exception, BaseException):
            state.exception = exception

    def task_retry(self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
        state = _running.get()
        if state is not None and isinstance(reason, BaseException):
            state.retry = reason

    def task_postrun(self, sender: Any = None, task_id: Any = None, state: Any = None, **_: Any) -> None:
        running = _running.get()
        if running is None or running.task_id != task_id:
            return
        # The context goes first: whatever happens below, nothing stays attached to the thread.
        if running.state_token is not None:
            _running.reset(running.state_token)
        if running.context_token is not None:
            otel_context.detach(running.context_token)  # type: ignore[arg-type]
        if _terminated_by_signal():
            # The pool's parent stopped this child with its terminate signal (hard time limit,
            # revoke with terminate) and reports the task itself (tasklens.celery.pool): a span
            # from here too, when the child lives long enough to send it, would count it twice.
            return
        try:
            self._finish_running(running, state)
        except Exception:
            logger.debug("Ending the process span failed.", exc_info=True)

    def _finish_running(self, running: _Running, state: Any) -> None:
        span, route = running.span, running.route
        exception = running.exception
        failure_state: str | None = None
        if state == _RETRY and running.retry is not None:
            failure_state = semconv.STATE_RETRY
            exception = getattr(running.retry, "exc", None)
        elif state == _REJECTED:
            failure_state = semconv.STATE_REJECTED
        elif state != _SUCCESS:
            if exception is None:
                # Eager tasks that propagate raise through trace_task: task_postrun is sent from
                # its ``finally`` while the exception is in flight.
                in_flight = sys.exc_info()[1]
                exception = in_flight if state is None else None
            if exception is not None or state == _FAILURE:
                failure_state = semconv.STATE_FAILURE

        failure = error_type(exception) if exception is not None else None
        if failure_state == semconv.STATE_REJECTED:
            failure = "Reject"
        attributes = route.process_metric_attributes
        consumed_key: Hashable = route
        if failure is not None:
            attributes = {**attributes, semconv.ERROR_TYPE: failure}
            consumed_key = (route, failure)
        if span.is_recording():
            if failure is not None:
                span.set_attribute(semconv.ERROR_TYPE, failure)
                detail = describe(exception) if exception is not None else ""
                span.set_status(Status(StatusCode.ERROR, f"{failure}: {detail}" if detail else failure))
            if exception is not None:
                record_exception(span, exception)
                if _is_soft_time_limit(exception):
                    span.add_event(
                        semconv.EVENT_CELERY_TIME_LIMIT,
                        {semconv.CELERY_TIME_LIMIT_KIND: semconv.TIME_LIMIT_SOFT},
                    )
            if failure_state == semconv.STATE_RETRY and running.retry is not None:
                span.add_event(semconv.EVENT_CELERY_RETRY_SCHEDULED, _retry_attributes(running.retry))
            elif failure_state == semconv.STATE_REJECTED:
                span.add_event(
                    semconv.EVENT_CELERY_REJECTED,
                    {semconv.CELERY_REJECT_REASON: semconv.REJECT_REASON_REJECT},
                )
        elapsed = time.perf_counter() - running.started
        span.end()

        self._process_duration.record(consumed_key, attributes, elapsed)
        self._consumed.add(consumed_key, attributes)
        if failure_state is not None:
            self._failures.add(
                (route, failure_state),
                {**route.process_metric_attributes, semconv.CELERY_TASK_STATE: failure_state},
            )
        if failure_state == semconv.STATE_RETRY:
            self._retries.add(route, route.process_metric_attributes)

    # -- tasks that never ran, or whose pool process died ----------------------------------------

    def request_on_failure(self, wrapped: Any, request: Any, args: Any, kwargs: Any) -> Any:
        """Wraps the worker's ``Request.on_failure`` (main process): a task whose pool process was
        killed (hard time limit) or died gets its ``process`` span here, since the pool process
        could not end it."""
        try:
            # return_ok: a failure the task itself raised, reported through on_success; its span
            # was made where it ran.
            if not _argument(args, kwargs, 2, "return_ok", False):
                exc_info = _argument(args, kwargs, 0, "exc_info", None)
                self._pool_process_lost(request, getattr(exc_info, "exception", None))
        except Exception:
            logger.debug("Recording a lost worker failed.", exc_info=True)
        return wrapped(*args, **kwargs)

    def _pool_process_lost(self, request: Any, exception: Any) -> None:
        from billiard.exceptions import TimeLimitExceeded, WorkerLostError

        exception = getattr(exception, "exc", exception)  # unwrap ExceptionWithTraceback
        event_attributes: dict[str, Any] = {}
        if isinstance(exception, TimeLimitExceeded):
            # The hard limit: the parent killed the child (TERM, then KILL) and says so here first.
            event = semconv.EVENT_CELERY_TIME_LIMIT
            event_attributes[semconv.CELERY_TIME_LIMIT_KIND] = semconv.TIME_LIMIT_HARD
        elif isinstance(exception, WorkerLostError):
            event = semconv.EVENT_CELERY_WORKER_LOST
        elif _terminate_signal_exit(exception) and not _revoked(request):
            # A child stopped by SIGTERM from elsewhere (not a revoke, which task_revoked reports):
            # Celery counts it as a lost worker, and the child left the task's span to this process.
            exception = WorkerLostError(f"Worker exited prematurely: {describe(exception)}")
            event = semconv.EVENT_CELERY_WORKER_LOST
        else:
            return  # the pool process ran the task to its end and made the span itself
        self.record_lost_task(request, exception, event, event_attributes)

    def record_lost_task(
        self,
        request: Any,
        exception: BaseException,
        event: str,
        event_attributes: dict[str, Any] | None = None,
    ) -> bool:
        """End the ``process`` span of a task whose pool process could not: called in the worker's
        main process with its ``Request``. The span starts when the pool accepted the task, ends
        now with status ERROR, ``exception`` and ``event``, and counts as a failure. A request is
        recorded once: a second call (a hard time limit, then the lost worker) does nothing.

        Parameters:
          request(celery.worker.request.Request): The main process's request for the task.
          exception(BaseException): What ended it (``WorkerLostError``, ``TimeLimitExceeded``).
          event(str): The span event to add (``celery.worker.lost``, ``celery.task.time_limit``).
          event_attributes(dict): The event's attributes.

        Returns:
          bool: True when the span was recorded, False when the request already had one.
        """
        if getattr(request, _RECORDED_ATTRIBUTE, False):
            return False
        # A request class without a __dict__ is recorded all the same.
        with contextlib.suppress(AttributeError):
            setattr(request, _RECORDED_ATTRIBUTE, True)
        started = getattr(request, "time_start", None)
        headers = getattr(request, "request_dict", None)
        self._settle(
            getattr(request, "app", None),
            headers if isinstance(headers, dict) else {},
            str(getattr(request, "name", None) or "unknown"),
            str(getattr(request, "id", "")),
            error_type(exception),
            event,
            event_attributes or {},
            semconv.STATE_FAILURE,
            (getattr(request, "delivery_info", None) or {}).get("routing_key"),
            start_time=int(started * 1e9) if isinstance(started, (int, float)) and started else None,
            exception=exception,
        )
        return True

    def task_revoked(
        self, sender: Any = None, request: Any = None, terminated: Any = None, expired: Any = None, **_: Any
    ) -> None:
        try:
            state = _running.get()
            if state is not None and state.request is request:
                return  # revoked while running here: its own span ends in task_postrun
            task_name = getattr(sender, "name", None) or getattr(request, "task", None)
            event = {
                semconv.CELERY_REVOKED_TERMINATED: bool(terminated),
                semconv.CELERY_REVOKED_EXPIRED: bool(expired),
            }
            self._settle(
                getattr(sender, "app", None),
                request,
                str(task_name),
                str(getattr(request, "id", "")),
                "TaskRevokedError",
                semconv.EVENT_CELERY_REVOKED,
                event,
                semconv.STATE_REVOKED,
            )
        except Exception:
            logger.debug("Recording a revoked task failed.", exc_info=True)

    def task_unknown(
        self,
        sender: Any = None,
        message: Any = None,
        exc: Any = None,
        name: Any = None,
        id: Any = None,
        **_: Any,
    ) -> None:
        try:
            self._settle_message(
                sender, message, str(name), id, "NotRegistered", semconv.REJECT_REASON_UNKNOWN_TASK
            )
        except Exception:
            logger.debug("Recording an unknown task failed.", exc_info=True)

    def task_rejected(self, sender: Any = None, message: Any = None, exc: Any = None, **_: Any) -> None:
        try:
            headers = getattr(message, "headers", None) or {}
            name = headers.get("task") if isinstance(headers, dict) else None
            task_id = headers.get("id") if isinstance(headers, dict) else None
            failure = error_type(exc) if isinstance(exc, BaseException) else "InvalidMessage"
            self._settle_message(
                sender,
                message,
                str(name or "unknown"),
                task_id,
                failure,
                semconv.REJECT_REASON_INVALID_MESSAGE,
            )
        except Exception:
            logger.debug("Recording a rejected message failed.", exc_info=True)

    def _settle_message(
        self, consumer: Any, message: Any, task_name: str, task_id: Any, failure: str, reason: str
    ) -> None:
        headers = getattr(message, "headers", None)
        delivery_info = getattr(message, "delivery_info", None) or {}
        self._settle(
            getattr(consumer, "app", None),
            headers if isinstance(headers, dict) else {},
            task_name,
            str(task_id) if task_id is not None else None,
            failure,
            semconv.EVENT_CELERY_REJECTED,
            {semconv.CELERY_REJECT_REASON: reason, semconv.CELERY_REJECT_REQUEUE: False},
            semconv.STATE_REJECTED,
            delivery_info.get("routing_key"),
        )

    def _settle(
        self,
        app: Any,
        carrier_source: Any,
        task_name: str,
        task_id: str | None,
        failure: str,
        event: str,
        event_attributes: dict[str, Any],
        failure_state: str,
        queue_name: str | None = None,
        *,
        start_time: int | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """A ``process`` span for a task taken from the queue that did not run (or whose pool
        process died): started (now, or at ``start_time`` in ns), marked and ended at once."""
        if queue_name is None:
            delivery_info = getattr(carrier_source, "delivery_info", None) or {}
            queue_name = delivery_info.get("routing_key") if isinstance(delivery_info, dict) else None
        route = self._routes.route(app, queue_name or _default_queue(app), task_name)
        attributes = dict(route.process_span_attributes)
        if task_id:
            attributes[semconv.MESSAGING_MESSAGE_ID] = task_id
        retries = getattr(carrier_source, "get", lambda _: None)("retries")
        if isinstance(retries, int):
            attributes[semconv.CELERY_TASK_RETRIES] = retries
        span, _ = self._start_process_span(route, attributes, _carrier(carrier_source), start_time)
        if span.is_recording():
            span.set_attribute(semconv.ERROR_TYPE, failure)
            detail = f"{failure}: {describe(exception)}" if exception is not None else failure
            span.set_status(Status(StatusCode.ERROR, detail))
            span.add_event(event, event_attributes)
            if exception is not None:
                record_exception(span, exception)
        span.end()
        elapsed = max(0.0, time.time() - start_time / 1e9) if start_time is not None else 0.0
        metric_attributes = {**route.process_metric_attributes, semconv.ERROR_TYPE: failure}
        self._started.add(route, route.process_metric_attributes)
        self._consumed.add((route, failure), metric_attributes)
        self._process_duration.record((route, failure), metric_attributes, elapsed)
        self._failures.add(
            (route, failure_state),
            {**route.process_metric_attributes, semconv.CELERY_TASK_STATE: failure_state},
        )


def _destination(routing_key: Any, exchange: Any, declare: Any) -> str:
    """The queue a publish goes to: its routing key (the queue name with Celery's default direct
    routing), else the declared queue, else the exchange."""
    if isinstance(routing_key, str) and routing_key:
        return routing_key
    if declare:
        name = getattr(next(iter(declare)), "name", None)
        if isinstance(name, str) and name:
            return name
    exchange_name = getattr(exchange, "name", exchange)
    return exchange_name if isinstance(exchange_name, str) and exchange_name else DEFAULT_QUEUE


def _default_queue(app: Any) -> str:
    try:
        name = app.conf.task_default_queue
    except Exception:
        return DEFAULT_QUEUE
    return name if isinstance(name, str) and name else DEFAULT_QUEUE


def _runnable_at(published_at: Any, eta: Any) -> float | None:
    """When the task could first run (Unix seconds): its eta, or else when it was published."""
    parsed = _parse_eta(eta)
    if parsed is not None:
        return parsed.timestamp()
    if isinstance(published_at, (int, float)) and not isinstance(published_at, bool):
        return published_at / 1000
    return None


def _retry_attributes(retry: BaseException) -> dict[str, Any]:
    attributes: dict[str, Any] = {semconv.CELERY_RETRY_REASON: describe(retry)[:256]}
    when = getattr(retry, "when", None)
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        attributes[semconv.CELERY_RETRY_COUNTDOWN] = float(when)
    else:
        eta = _parse_eta(when)
        if eta is not None:
            attributes[semconv.CELERY_RETRY_COUNTDOWN] = max(0.0, eta.timestamp() - time.time())
    return attributes


def _is_soft_time_limit(exception: BaseException) -> bool:
    from billiard.exceptions import SoftTimeLimitExceeded

    return isinstance(exception, SoftTimeLimitExceeded)


def _terminated_by_signal() -> bool:
    """Whether this prefork pool process is being stopped by its terminate signal (SIGTERM)."""
    try:
        from billiard.common import terminate_handler_fired
    except ImportError:  # billiard < 4.3: cannot tell, and then the parent's span may be a second
        return False
    return bool(terminate_handler_fired())


#: The exit status billiard's terminate-signal handler gives a pool process (``-(256 - SIGTERM)``).
TERMINATED_EXIT_CODE = -(256 - signal.SIGTERM)


def _terminate_signal_exit(exception: Any) -> bool:
    """A ``SystemExit`` raised by billiard's terminate-signal handler in the pool process."""
    return isinstance(exception, SystemExit) and exception.code == TERMINATED_EXIT_CODE


def _revoked(request: Any) -> bool:
    """Revoked or cancelled by this worker: ``task_revoked`` accounts for the task, or it runs again."""
    return bool(getattr(request, "_already_revoked", False) or getattr(request, "_already_cancelled", False))


def _argument(args: Any, kwargs: Any, position: int, name: str, default: Any) -> Any:
    """The argument ``name`` of a wrapped call, given by position or by keyword."""
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)
