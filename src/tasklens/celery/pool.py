"""Celery's worker pools over the life of their processes: nothing a pool process saw is lost.

The prefork pool (billiard) ends a child with ``os._exit()`` when it is recycled
(``--max-tasks-per-child``, ``--max-memory-per-child``) and at warm shutdown, so neither
``atexit`` handlers nor multiprocessing's finalizers run there: the spans, metrics and logs the
child still buffers would go with it. Celery sends ``worker_process_shutdown`` in the child just
before that exit; here it shuts the child's providers down, which exports everything they hold.
Providers, export threads and ``service.instance.id`` are the child's own already: the SDK
renews them when the child is forked, and :func:`tasklens.telemetry.prepare_worker_processes`
makes the metric readers fork safe and each process measure itself.

A child that is killed (hard time limit: the parent SIGKILLs it) or dies while running a task
(``WorkerLostError``) takes that task's unfinished ``process`` span with it. The parent learns
of it through the pool's error callback, ``Request.on_failure``, which is wrapped here: the
parent then makes the task's ``process`` span itself, from the request (task id and name,
queue, the producer's context in its headers, when the child took it), ended with status ERROR,
``error.type`` and a time-limit or worker-lost event.

Celery's worker and beat replace the root logger's handlers when they set logging up: the
handler that exports log records (``OTEL_LOGS_EXPORTER``) is put back right after.

The solo and threads pools run tasks in the worker's own process, which exits normally: the
flush at exit of :mod:`tasklens.telemetry.lifecycle` covers them.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from celery import signals
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from tasklens import semconv
from tasklens.celery.tracing import CeleryTracing
from tasklens.telemetry import prepare_worker_processes, shutdown_prepared
from tasklens.telemetry.logs import restore_log_export

__all__ = ["PoolProcesses"]

logger = logging.getLogger(__name__)

#: The exit status billiard's terminate-signal handler gives a pool process (``-(256 - SIGTERM)``).
TERMINATED_EXIT_CODE = -(256 - signal.SIGTERM)


class PoolProcesses:
    """Flushes each pool process before it exits, accounts for the tasks of lost ones, and keeps
    log export on when Celery sets its logging up.

    Connected by :class:`~tasklens.celery.CeleryInstrumentor` in every process it instruments;
    only a prefork worker's processes ever receive its signals and callbacks.

    Parameters:
      tracing(CeleryTracing): makes the ``process`` spans of tasks whose pool process was lost.
      tracer_provider(TracerProvider): flushed when a pool process exits; the global one if None.
      meter_provider(MeterProvider): flushed when a pool process exits; the global one if None.
    """

    def __init__(
        self, tracing: CeleryTracing, tracer_provider: Any = None, meter_provider: Any = None
    ) -> None:
        self.tracing = tracing
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider

    def connect(self) -> None:
        # Under opentelemetry-instrument nothing else registers the providers for the flush at exit.
        prepare_worker_processes(self.tracer_provider, self.meter_provider)
        signals.worker_process_shutdown.connect(self.worker_process_shutdown, weak=False)
        signals.after_setup_logger.connect(self.after_setup_logger, weak=False)
        wrap_function_wrapper("celery.worker.request", "Request.on_failure", self.on_failure)

    def disconnect(self) -> None:
        from celery.worker.request import Request

        unwrap(Request, "on_failure")
        signals.worker_process_shutdown.disconnect(self.worker_process_shutdown)
        signals.after_setup_logger.disconnect(self.after_setup_logger)

    def after_setup_logger(self, **_: Any) -> None:
        """Celery just replaced the root logger's handlers: put the log export back."""
        restore_log_export()

    def worker_process_shutdown(self, **_: Any) -> None:
        """In a pool child about to ``os._exit()``: export what it still holds."""
        try:
            shutdown_prepared()
        except Exception:
            logger.exception("Could not flush telemetry before the pool process exits.")

    def on_failure(self, wrapped: Any, request: Any, args: Any, kwargs: Any) -> Any:
        """Wraps ``Request.on_failure`` (the pool's error callback, in the parent)."""
        try:
            # return_ok: a failure the task itself raised, reported through on_success; its span
            # was made where it ran.
            if not _bound(args, kwargs, 2, "return_ok", False):
                exc_info = _bound(args, kwargs, 0, "exc_info", None)
                self._account_for_lost(request, getattr(exc_info, "exception", None))
        except Exception:
            logger.debug("Could not account for a lost task.", exc_info=True)
        return wrapped(*args, **kwargs)

    def _account_for_lost(self, request: Any, exception: Any) -> None:
        from billiard.einfo import ExceptionWithTraceback
        from billiard.exceptions import TimeLimitExceeded, WorkerLostError

        if isinstance(exception, ExceptionWithTraceback):
            exception = exception.exc
        if isinstance(exception, TimeLimitExceeded):
            event = semconv.EVENT_CELERY_TIME_LIMIT
            attributes: dict[str, Any] = {semconv.CELERY_TIME_LIMIT_KIND: semconv.TIME_LIMIT_HARD}
        elif isinstance(exception, WorkerLostError):
            event, attributes = semconv.EVENT_CELERY_WORKER_LOST, {}
        elif _terminate_signal_exit(exception) and not _revoked(request):
            # A child stopped by SIGTERM from elsewhere (not this parent's revoke): Celery counts
            # it as a lost worker, and the child left the task's span to this process.
            exception = WorkerLostError(f"Worker exited prematurely: {exception!r}")
            event, attributes = semconv.EVENT_CELERY_WORKER_LOST, {}
        else:
            return  # the child ran the task to its end and made the span itself
        self.tracing.task_lost(request, exception, event, attributes)


def _bound(args: Any, kwargs: Any, position: int, name: str, default: Any) -> Any:
    """The argument ``name`` of a wrapped call, given by position or by keyword."""
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)


def _terminate_signal_exit(exception: Any) -> bool:
    """A ``SystemExit`` raised by billiard's terminate-signal handler in the child."""
    return isinstance(exception, SystemExit) and exception.code == TERMINATED_EXIT_CODE


def _revoked(request: Any) -> bool:
    """Revoked or cancelled by this worker: Celery's ``task_revoked`` accounts for the task."""
    return bool(getattr(request, "_already_revoked", False) or getattr(request, "_already_cancelled", False))
