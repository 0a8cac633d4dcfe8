"""``CeleryInstrumentor``: Celery's signals and ``Celery.send_task``, traced and measured."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from celery import signals
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from tasklens.celery.contrib import take_over_from_contrib
from tasklens.celery.pool import PoolProcesses
from tasklens.celery.tracing import CeleryTracing, current_task_fields
from tasklens.messaging import log_fields

__all__ = ["CeleryInstrumentor"]

#: The Celery versions this instrumentation supports.
_INSTRUMENTS = ("celery >= 5.4",)

#: Each Celery signal and the :class:`CeleryTracing` method that receives it.
_RECEIVERS: tuple[tuple[str, str], ...] = (
    ("before_task_publish", "before_task_publish"),
    ("after_task_publish", "after_task_publish"),
    ("task_prerun", "task_prerun"),
    ("task_failure", "task_failure"),
    ("task_retry", "task_retry"),
    ("task_postrun", "task_postrun"),
    ("task_revoked", "task_revoked"),
    ("task_unknown", "task_unknown"),
    ("task_rejected", "task_rejected"),
)


class CeleryInstrumentor(BaseInstrumentor):
    """Traces and measures every Celery publish and task run in this process.

    Connects receivers to Celery's publish and task signals and wraps ``Celery.send_task`` (so a
    publish that raises still ends its span) and the worker's ``Request.on_failure`` (so a task
    whose pool process died still gets its span); ``uninstrument()`` disconnects and unwraps
    them all. Registered as the ``celery`` entry point of ``opentelemetry_instrumentor``, so
    ``opentelemetry-instrument celery -A app worker`` works with no code change.

    Parameters (to ``instrument()``):
      tracer_provider(TracerProvider): Where spans go. Defaults to the global provider.
      meter_provider(MeterProvider): Where metrics go. Defaults to the global provider.
      use_links(bool): Process spans start new traces linked to the producer. Defaults to False.
      capture_args(bool|callable): Record the task's args and kwargs as ``celery.task.args``,
        secrets redacted, truncated; a callable given ``(args, kwargs)`` chooses what is
        recorded. Defaults to False.

    Example:
      >>> CeleryInstrumentor().instrument()
    """

    _tracing: CeleryTracing | None = None
    _pool: PoolProcesses | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    @property
    def tracing(self) -> CeleryTracing | None:
        """The receivers this instrumentor connected, while instrumented."""
        return self._tracing

    def _instrument(self, **kwargs: Any) -> None:
        tracing = CeleryTracing(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            use_links=kwargs.get("use_links", False),
            capture_args=kwargs.get("capture_args", False),
        )
        self._tracing = tracing
        for signal_name, method in _RECEIVERS:
            getattr(signals, signal_name).connect(getattr(tracing, method), weak=False)
        wrap_function_wrapper("celery.app.base", "Celery.send_task", tracing.send_task)
        wrap_function_wrapper("celery.worker.request", "Request.on_failure", tracing.request_on_failure)
        log_fields.register(current_task_fields)
        self._pool = PoolProcesses(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._pool.connect()
        take_over_from_contrib()

    def _uninstrument(self, **kwargs: Any) -> None:
        from celery.app.base import Celery
        from celery.worker.request import Request

        unwrap(Celery, "send_task")
        unwrap(Request, "on_failure")
        log_fields.unregister(current_task_fields)
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None
        tracing = self._tracing
        if tracing is None:
            return
        for signal_name, method in _RECEIVERS:
            getattr(signals, signal_name).disconnect(getattr(tracing, method))
        self._tracing = None
