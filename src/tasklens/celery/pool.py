"""Celery's worker pools over the life of their processes: nothing a pool process saw is lost.

The prefork pool (billiard) ends a child with ``os._exit()`` when it is recycled
(``--max-tasks-per-child``, ``--max-memory-per-child``) and at warm shutdown, so neither
``atexit`` handlers nor multiprocessing's finalizers run there: the spans, metrics and logs the
child still buffers would go with it. Celery sends ``worker_process_shutdown`` in the child just
before that exit; here it shuts the child's providers down, which exports everything they hold.
Providers, export threads and ``service.instance.id`` are the child's own already: the SDK
renews them when the child is forked, and :func:`tasklens.telemetry.prepare_worker_processes`
makes the metric readers fork safe and each process measure itself.

A child killed while it runs a task (hard time limit) or that dies (``WorkerLostError``) takes
the task's unfinished span with it: the worker's main process makes that span instead
(:meth:`tasklens.celery.tracing.CeleryTracing.request_on_failure`), and a child stopped by its
terminate signal leaves the span to it.

Celery's worker and beat replace the root logger's handlers when they set logging up: the
handler that exports log records (``OTEL_LOGS_EXPORTER``) is put back right after.

The solo and threads pools run tasks in the worker's own process, which exits normally: the
flush at exit of :mod:`tasklens.telemetry.lifecycle` covers them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from tasklens.telemetry import prepare_worker_processes, shutdown_prepared
from tasklens.telemetry.logs import restore_log_export

__all__ = ["PoolProcesses"]

logger = logging.getLogger(__name__)


class PoolProcesses:
    """Flushes each pool process before it exits, and keeps log export on when Celery sets its
    logging up.

    Connected by :class:`~tasklens.celery.CeleryInstrumentor` in every process it instruments;
    only a prefork worker's pool processes receive ``worker_process_shutdown``.

    Parameters:
      tracer_provider(TracerProvider): flushed when a pool process exits; the global one if None.
      meter_provider(MeterProvider): flushed when a pool process exits; the global one if None.

    Example:
      >>> PoolProcesses(tracer_provider, meter_provider).connect()
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider

    def connect(self) -> None:
        # Under opentelemetry-instrument nothing else registers the providers for the flush at exit.
        prepare_worker_processes(self.tracer_provider, self.meter_provider)
        signals.worker_process_shutdown.connect(self.worker_process_shutdown, weak=False)
        signals.after_setup_logger.connect(self.after_setup_logger, weak=False)

    def disconnect(self) -> None:
        signals.worker_process_shutdown.disconnect(self.worker_process_shutdown)
        signals.after_setup_logger.disconnect(self.after_setup_logger)

    def worker_process_shutdown(self, **_: Any) -> None:
        """In a pool child about to ``os._exit()``: export what it still holds."""
        try:
            shutdown_prepared()
        except Exception:
            logger.exception("Could not flush telemetry before the pool process exits.")

    def after_setup_logger(self, **_: Any) -> None:
        """Celery just replaced the root logger's handlers: put the log export back."""
        restore_log_export()
