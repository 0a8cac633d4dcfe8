"""The Dramatiq middleware that traces and measures every send and every processed message."""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Hashable
from contextvars import ContextVar, Token
from typing import Any

import dramatiq
from dramatiq.asyncio import async_to_sync
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound
from dramatiq.logging import get_logger
from dramatiq.middleware import AgeLimit
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from tasklens import semconv
from tasklens.dramatiq.announcement import WorkerAnnouncement, announcements_enabled
from tasklens.messaging import log_fields as log_records
from tasklens.messaging import propagation
from tasklens.messaging.arguments import ArgsCapture, format_arguments
from tasklens.messaging.errors import describe, error_type, record_exception
from tasklens.messaging.instruments import create_instruments
from tasklens.messaging.routes import Route
from tasklens.messaging.tally import observed_counter

__all__ = ["OpenTelemetryMiddleware", "current_message", "log_fields"]

#: How long a graceful worker shutdown waits for spans and metrics to be exported, in milliseconds.
FLUSH_TIMEOUT_MS = 5_000

_ATTRIBUTE_NAME = "tasklens.dramatiq"


class _Processing:
    """What the middleware keeps about the message the current worker thread is processing."""

    __slots__ = ("context_token", "message", "route", "span", "started", "state_token")

    def __init__(self, message: dramatiq.broker.MessageProxy, route: Route, span: Span, started: float):
        self.message = message
        self.route = route
        self.span = span
        self.started = started
        self.context_token: object = None
        self.state_token: Token[_Processing | None] | None = None


class _Sending:
    """A send span between ``before_enqueue`` and ``after_enqueue``."""

    __slots__ = ("message_id", "route", "span", "started")

    def __init__(self, message_id: str, route: Route, span: Span, started: float):
        self.message_id = message_id
        self.route = route
        self.span = span
        self.started = started


#: The message the current worker thread is processing, with its span.
_processing: ContextVar[_Processing | None] = ContextVar("tasklens_processing", default=None)
#: The send span of the enqueue under way on the current thread.
_sending: ContextVar[_Sending | None] = ContextVar("tasklens_sending", default=None)


class _ThreadRole(threading.local):
    """Marks Dramatiq's consumer threads: the only enqueues they make are delayed messages moving
    to their ready queue, which are not sends. (A class default keeps the check on every send to
    an attribute read, not a failed lookup.)"""

    consumer = False


_thread_role = _ThreadRole()


def current_message() -> dramatiq.broker.MessageProxy | None:
    """The Dramatiq message being processed on the calling thread, or None outside an actor."""
    state = _processing.get()
    return state.message if state is not None else None


def log_fields() -> dict[str, str] | None:
    """The message id and actor name for log records made while an actor runs, else None."""
    state = _processing.get()
    if state is None:
        return None
    message = state.message
    return {semconv.LOG_MESSAGE_ID: message.message_id, semconv.LOG_ACTOR_NAME: message.actor_name}


def _server_attributes(broker: dramatiq.Broker) -> dict[str, Any]:
    """``server.address``/``server.port`` of the broker connection, never credentials."""
    host: Any = None
    port: Any = None
    client = getattr(broker, "client", None)
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        kwargs = getattr(pool, "connection_kwargs", {})
        host, port = kwargs.get("host") or kwargs.get("path"), kwargs.get("port")
    parameters = getattr(broker, "parameters", None)
    if isinstance(parameters, list) and parameters:
        parameters = parameters[0]
    if parameters is not None and hasattr(parameters, "host"):
        host, port = parameters.host, getattr(parameters, "port", None)
    attributes: dict[str, Any] = {}
    if isinstance(host, str) and host:
        attributes[semconv.SERVER_ADDRESS] = host
    if isinstance(port, int):
        attributes[semconv.SERVER_PORT] = port
    return attributes


class OpenTelemetryMiddleware(dramatiq.Middleware):
    """Traces and measures Dramatiq messages with OpenTelemetry.

    Every enqueue gets a ``send {queue}`` PRODUCER span that covers the broker call and whose
    context travels in ``message.options["otel_context"]``; every processed message gets a
    ``process {queue}`` CONSUMER span, current while the actor runs and open until Retries,
    Pipelines and Callbacks have made their follow-up sends, so retries and pipeline steps
    stay in one trace. Metrics follow the messaging semantic conventions (see
    ``docs/telemetry.md``).

    The middleware puts itself first in the broker's middleware list when a worker boots, so
    it sees skipped messages and outlives the other middleware wherever it was added.

    Parameters:
      tracer_provider(TracerProvider): Where spans go. Defaults to the global provider.
      meter_provider(MeterProvider): Where metrics go. Defaults to the global provider.
      use_links(bool): When True, a process span starts a new trace and links to the send span
        instead of being its child. Defaults to False.
      capture_args(bool|callable): Record the message's arguments as ``dramatiq.message.args``:
        True for args and kwargs, or a callable given ``(args, kwargs)`` that returns what to
        record. Secret-looking keys are redacted and the value is truncated. Defaults to False.
      announce_workers(bool): On a Redis broker, each worker process announces itself every few
        seconds under ``namespace:__tasklens__.workers``, so readers count workers exactly (see
        ``tasklens.dramatiq.announcement``); ``TASKLENS_ANNOUNCE_WORKERS=0`` also turns it off.
        Producers never announce. Defaults to True.

    Example:
      >>> broker = RedisBroker()
      >>> broker.add_middleware(OpenTelemetryMiddleware())
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        use_links: bool = False,
        capture_args: ArgsCapture = False,
        announce_workers: bool = True,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.use_links = use_links
        self.capture_args = capture_args
        self.announce_workers = announce_workers
        self._announcements: weakref.WeakKeyDictionary[dramatiq.Worker, WorkerAnnouncement]
        self._announcements = weakref.WeakKeyDictionary()
        instruments = create_instruments(
            _ATTRIBUTE_NAME,
            tracer_provider,
            meter_provider,
            in_flight=semconv.MESSAGES_IN_FLIGHT,
            queue_wait=semconv.MESSAGE_QUEUE_WAIT,
        )
        self._tracer = instruments.tracer
        self._sent = instruments.sent
        self._consumed = instruments.consumed
        self._started = instruments.started
        self._send_duration = instruments.send_duration
        self._process_duration = instruments.process_duration
        self._queue_wait = instruments.queue_wait
        self._retries = observed_counter(instruments.meter, semconv.MESSAGE_RETRIES)
        self._dead_lettered = observed_counter(instruments.meter, semconv.MESSAGE_DEAD_LETTERED)
        self._routes: dict[tuple[int, str, str], Route] = {}
        self._servers: weakref.WeakKeyDictionary[dramatiq.Broker, dict[str, Any]]
        self._servers = weakref.WeakKeyDictionary()
        self._bound: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()
        self._async_actors: dict[dramatiq.Actor[Any, Any], Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self.logger = get_logger(__name__, type(self))
        log_records.register(log_fields)

    # -- attaching to a broker -------------------------------------------------------------------

    def bind(self, broker: dramatiq.Broker) -> None:
        """Watch ``broker.enqueue`` for failures, so a send span ends even when the call raises."""
        if broker in self._bound:
            return
        with self._lock:
            if broker in self._bound:
                return
            enqueue = broker.enqueue

            @functools.wraps(enqueue)
            def guarded_enqueue(message: dramatiq.Message[Any], *args: Any, **kwargs: Any) -> Any:
                try:
                    return enqueue(message, *args, **kwargs)
                except BaseException as exception:
                    self._end_failed_send(exception, broker, message, kwargs.get("delay"))
                    raise

            guarded_enqueue.__tasklens_middleware__ = self  # type: ignore[attr-defined]
            broker.enqueue = guarded_enqueue  # type: ignore[method-assign]
            self._bound.add(broker)

    def unbind(self, broker: dramatiq.Broker) -> None:
        """Undo everything ``bind`` and the actor hooks did to ``broker``."""
        with self._lock:
            enqueue = broker.__dict__.get("enqueue")
            if getattr(enqueue, "__tasklens_middleware__", None) is self:
                del broker.__dict__["enqueue"]
            self._bound.discard(broker)
            for actor, original in list(self._async_actors.items()):
                if actor.broker is broker:
                    actor.fn = original
                    del self._async_actors[actor]

    def _move_first(self, broker: dramatiq.Broker) -> None:
        # Removing ourselves and re-inserting at 0 keeps the forward iteration in emit_before
        # correct: every middleware after us is still visited exactly once.
        middleware = broker.middleware
        if middleware and middleware[0] is not self and self in middleware:
            middleware.remove(self)
            middleware.insert(0, self)

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._move_first(broker)
        self.bind(broker)

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        self.bind(broker)
        self._carry_context_into_async(actor)

    def after_declare_queue(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self.bind(broker)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not announcements_enabled(self.announce_workers) or worker in self._announcements:
            return
        try:
            announcement = WorkerAnnouncement.start_for(broker, worker, load=self._load)
        except Exception:  # a worker boots whatever happens to its announcement
            self.logger.warning("Could not start announcing this worker.", exc_info=True)
            return
        if announcement is not None:
            self._announcements[worker] = announcement

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        announcement = self._announcements.pop(worker, None)
        if announcement is not None:
            announcement.stop()

    def _load(self) -> tuple[int, int]:
        """Messages this process is processing now, and has processed since it started."""
        processed = sum(self._consumed.totals().values())
        return max(0, sum(self._started.totals().values()) - processed), processed

    def after_consumer_thread_boot(self, broker: dramatiq.Broker, thread: Any) -> None:
        _thread_role.consumer = True

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # The SDK's force_flush exports synchronously and ignores its timeout, retrying each
        # batch for the exporter's whole timeout when the collector is down: flush on a thread
        # of its own and stop waiting after FLUSH_TIMEOUT_MS, so a shutdown is never held up.
        providers = (
            self.tracer_provider or trace.get_tracer_provider(),
            self.meter_provider or metrics.get_meter_provider(),
        )
        flusher = threading.Thread(target=self._flush, args=(providers,), name="tasklens-flush", daemon=True)
        flusher.start()
        flusher.join(FLUSH_TIMEOUT_MS / 1000)
        if flusher.is_alive():
            self.logger.warning("Telemetry was not flushed within %d ms; going on.", FLUSH_TIMEOUT_MS)

    def _flush(self, providers: tuple[Any, ...]) -> None:
        for provider in providers:
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is None:
                continue
            try:
                force_flush(FLUSH_TIMEOUT_MS)
            except Exception:  # shutdown goes on whatever the exporter does
                self.logger.debug("Flushing telemetry failed.", exc_info=True)

    def _carry_context_into_async(self, actor: dramatiq.Actor[Any, Any]) -> None:
        # Async actors run as tasks on Dramatiq's event-loop thread, which does not inherit the
        # worker thread's context: capture it when the actor is called and attach it in the task.
        async_fn = getattr(actor.fn, "__wrapped__", None)
        if actor in self._async_actors or not inspect.iscoroutinefunction(async_fn):
            return

        @functools.wraps(async_fn)
        def with_context(*args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
            return _run_in_context(otel_context.get_current(), async_fn(*args, **kwargs))

        self._async_actors[actor] = actor.fn
        actor.fn = async_to_sync(with_context)

    # -- producer side ---------------------------------------------------------------------------

    def _route(self, broker: dramatiq.Broker, queue_name: str, actor_name: str) -> Route:
        key = (id(broker), queue_name, actor_name)
        route = self._routes.get(key)
        if route is None:
            server = self._servers.get(broker)
            if server is None:
                server = self._servers.setdefault(broker, _server_attributes(broker))
            # setdefault: two threads meeting a new route at once must share one.
            route = self._routes.setdefault(
                key,
                Route(
                    semconv.MESSAGING_SYSTEM_DRAMATIQ,
                    semconv.DRAMATIQ_ACTOR_NAME,
                    q_name(queue_name),
                    actor_name,
                    server,
                ),
            )
        return route

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        options = message.options
        if _thread_role.consumer:
            # A delayed message moving to its ready queue: same message, same context, no span.
            options[semconv.READY_AT_OPTION] = int(time.time() * 1000)
            return

        pending = _sending.get()
        if pending is not None:
            if pending.message_id == message.message_id:
                return  # the broker is retrying the same enqueue: one span covers all attempts
            self._end_failed_send(None)

        sending = self._start_send(broker, message, delay)
        span = sending.span
        carrier = propagation.inject(span)
        if carrier:
            options[semconv.CONTEXT_OPTION] = carrier
        else:
            options.pop(semconv.CONTEXT_OPTION, None)
        options[semconv.READY_AT_OPTION] = int(time.time() * 1000) + (delay or 0)

        processing = _processing.get()
        if processing is not None and processing.message.message_id == message.message_id:
            self._retries.add(processing.route, processing.route.process_metric_attributes)
            if processing.span.is_recording():
                processing.span.add_event(
                    semconv.EVENT_RETRY_SCHEDULED,
                    {
                        semconv.DRAMATIQ_RETRY_COUNT: options.get("retries") or 0,
                        semconv.DRAMATIQ_RETRY_DELAY: delay or 0,
                    },
                )
        _sending.set(sending)

    def _start_send(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> _Sending:
        route = self._route(broker, message.queue_name, message.actor_name)
        attributes = dict(route.send_span_attributes)
        attributes[semconv.MESSAGING_MESSAGE_ID] = message.message_id
        if delay:
            attributes[semconv.DRAMATIQ_MESSAGE_DELAY] = delay
        retries = message.options.get("retries")
        if retries:
            attributes[semconv.DRAMATIQ_MESSAGE_RETRIES] = retries
        span = self._tracer.start_span(route.send_name, kind=SpanKind.PRODUCER, attributes=attributes)
        return _Sending(message.message_id, route, span, time.perf_counter())

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        pending = _sending.get()
        if pending is None or pending.message_id != message.message_id:
            return
        _sending.set(None)
        elapsed = time.perf_counter() - pending.started
        pending.span.end()
        route = pending.route
        self._sent.add(route, route.send_metric_attributes)
        self._send_duration.record(route, route.send_metric_attributes, elapsed)

    def _end_failed_send(
        self,
        exception: BaseException | None,
        broker: dramatiq.Broker | None = None,
        message: Any = None,
        delay: int | None = None,
    ) -> None:
        pending = _sending.get()
        if pending is not None:
            _sending.set(None)
        elif broker is not None and isinstance(message, dramatiq.Message):
            # The broker failed before it signalled the enqueue (RabbitMQ declares the queue
            # first): the attempt still gets its span.
            pending = self._start_send(broker, message, delay)
        else:
            return
        failure = error_type(exception) if exception is not None else "EnqueueAborted"
        span = pending.span
        if span.is_recording():
            span.set_attribute(semconv.ERROR_TYPE, failure)
            if exception is not None:
                record_exception(span, exception)
            span.set_status(
                Status(StatusCode.ERROR, describe(exception) if exception is not None else failure)
            )
        elapsed = time.perf_counter() - pending.started
        span.end()
        attributes = {**pending.route.send_metric_attributes, semconv.ERROR_TYPE: failure}
        self._sent.add((pending.route, failure), attributes)
        self._send_duration.record((pending.route, failure), attributes, elapsed)

    # -- consumer side ---------------------------------------------------------------------------

    def _start_processing(
        self, broker: dramatiq.Broker, message: dramatiq.broker.MessageProxy
    ) -> _Processing:
        route = self._route(broker, message.queue_name, message.actor_name)
        options = message.options
        attributes = dict(route.process_span_attributes)
        attributes[semconv.MESSAGING_MESSAGE_ID] = message.message_id
        retries = options.get("retries", 0)
        attributes[semconv.DRAMATIQ_MESSAGE_RETRIES] = retries if isinstance(retries, int) else 0
        if self.capture_args is not False:
            captured = self._captured_arguments(message)
            if captured is not None:
                attributes[semconv.DRAMATIQ_MESSAGE_ARGS] = captured

        parent = propagation.extract(options.get(semconv.CONTEXT_OPTION))
        links: list[Link] | None = None
        if self.use_links and parent is not None:
            remote = trace.get_current_span(parent).get_span_context()
            links = [Link(remote)] if remote.is_valid else None
            parent = otel_context.Context()  # a new trace, keeping nothing of the producer's
        span = self._tracer.start_span(
            route.process_name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )
        state = _Processing(message, route, span, time.perf_counter())
        state.context_token = otel_context.attach(trace.set_span_in_context(span, parent))
        state.state_token = _processing.set(state)

        self._started.add(route, route.process_metric_attributes)
        ready_at = options.get(semconv.READY_AT_OPTION) or message.message_timestamp
        if isinstance(ready_at, (int, float)):
            wait = max(0.0, time.time() - ready_at / 1000)
            self._queue_wait.record(route, route.process_metric_attributes, wait)
        return state

    def _captured_arguments(self, message: dramatiq.broker.MessageProxy) -> str | None:
        try:
            return format_arguments(self.capture_args, tuple(message.args), dict(message.kwargs))
        except Exception:  # a user's callable never breaks processing
            self.logger.debug("capture_args failed for message %s.", message.message_id, exc_info=True)
            return None

    def _finish_processing(
        self,
        state: _Processing,
        exception: BaseException | None,
        dead_letter_reason: str | None,
        skipped: bool = False,
    ) -> None:
        # The context goes first: whatever happens below, nothing stays attached to the thread.
        if state.state_token is not None:
            _processing.reset(state.state_token)
        if state.context_token is not None:
            otel_context.detach(state.context_token)  # type: ignore[arg-type]

        span = state.span
        route = state.route
        attributes = route.process_metric_attributes
        consumed_key: Hashable = route
        if exception is not None:
            failure = error_type(exception)
            attributes = {**attributes, semconv.ERROR_TYPE: failure}
            consumed_key = (route, failure)
            if span.is_recording():
                span.set_attribute(semconv.ERROR_TYPE, failure)
                span.set_status(Status(StatusCode.ERROR, f"{failure}: {describe(exception)}"))
                record_exception(span, exception)
        if span.is_recording():
            if skipped:
                span.add_event(semconv.EVENT_SKIPPED)
            if dead_letter_reason is not None:
                span.add_event(
                    semconv.EVENT_DEAD_LETTERED, {semconv.DRAMATIQ_DEAD_LETTER_REASON: dead_letter_reason}
                )
        elapsed = time.perf_counter() - state.started
        span.end()

        self._process_duration.record(consumed_key, attributes, elapsed)
        self._consumed.add(consumed_key, attributes)
        if dead_letter_reason is not None:
            self._dead_lettered.add(
                (route, dead_letter_reason),
                {**route.process_metric_attributes, semconv.DRAMATIQ_DEAD_LETTER_REASON: dead_letter_reason},
            )

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.broker.MessageProxy) -> None:
        self._start_processing(broker, message)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.broker.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        state = _processing.get()
        if state is None or state.message is not message:
            return
        reason = _dead_letter_reason(broker, message, exception) if message.failed else None
        self._finish_processing(state, exception, reason)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.broker.MessageProxy) -> None:
        state = _processing.get()
        if state is None or state.message is not message:
            # Skipped before we started (we were not first): record the skip all the same.
            state = self._start_processing(broker, message)
        reason = None
        if message.failed:
            has_age_limit = any(isinstance(m, AgeLimit) for m in broker.middleware)
            reason = semconv.REASON_AGE_LIMIT if has_age_limit else semconv.REASON_FAILED
        self._finish_processing(state, None, reason, skipped=True)

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.broker.MessageProxy) -> None:
        if message.actor_name in broker.actors:
            return
        # Dramatiq rejects a message for an undeclared actor on the consumer thread, without
        # processing it: give it a process span all the same, so the failure is visible.
        state = self._start_processing(broker, message)
        self._finish_processing(state, ActorNotFound(message.actor_name), semconv.REASON_ACTOR_NOT_FOUND)


def _dead_letter_reason(
    broker: dramatiq.Broker, message: dramatiq.broker.MessageProxy, exception: BaseException | None
) -> str:
    if exception is None:
        return semconv.REASON_FAILED
    actor = broker.actors.get(message.actor_name)
    throws = message.options.get("throws") or (actor.options.get("throws") if actor is not None else None)
    try:
        if throws and isinstance(exception, throws):
            return semconv.REASON_THROWS
    except TypeError:
        pass
    return semconv.REASON_RETRIES_EXHAUSTED


async def _run_in_context(ctx: otel_context.Context, coroutine: Coroutine[Any, Any, Any]) -> Any:
    token = otel_context.attach(ctx)
    try:
        return await coroutine
    finally:
        otel_context.detach(token)
