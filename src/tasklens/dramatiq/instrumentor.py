"""``DramatiqInstrumentor``: the middleware on every Dramatiq broker, present and future."""

from __future__ import annotations

import weakref
from collections.abc import Collection
from typing import Any

import dramatiq
import dramatiq.broker
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from tasklens.dramatiq.middleware import OpenTelemetryMiddleware

__all__ = ["DramatiqInstrumentor"]

#: The Dramatiq versions this instrumentation supports.
_INSTRUMENTS = ("dramatiq >= 1.17",)


class DramatiqInstrumentor(BaseInstrumentor):
    """Adds an :class:`OpenTelemetryMiddleware` first in every Dramatiq broker's middleware.

    It instruments the global broker if one is set and every broker created afterwards;
    ``uninstrument()`` removes the middleware from all of them. Instrumenting twice adds
    nothing, and a broker that already has an ``OpenTelemetryMiddleware`` keeps its own.
    Registered as the ``dramatiq`` entry point of ``opentelemetry_instrumentor``, so
    ``opentelemetry-instrument dramatiq app`` works with no code change.

    Parameters (to ``instrument()``):
      tracer_provider(TracerProvider): Where spans go. Defaults to the global provider.
      meter_provider(MeterProvider): Where metrics go. Defaults to the global provider.
      use_links(bool): Process spans start new traces linked to the producer. Defaults to False.
      capture_args(bool|callable): See :class:`OpenTelemetryMiddleware`. Defaults to False.
      announce_workers(bool): Worker processes on Redis announce themselves, so the worker count
        is exact. See :class:`OpenTelemetryMiddleware`. Defaults to True.

    Example:
      >>> DramatiqInstrumentor().instrument()
    """

    _middleware: OpenTelemetryMiddleware | None = None
    _brokers: weakref.WeakSet[dramatiq.Broker]

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    @property
    def middleware(self) -> OpenTelemetryMiddleware | None:
        """The middleware this instrumentor adds, while instrumented."""
        return self._middleware

    def _instrument(self, **kwargs: Any) -> None:
        self._middleware = OpenTelemetryMiddleware(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            use_links=kwargs.get("use_links", False),
            capture_args=kwargs.get("capture_args", False),
            announce_workers=kwargs.get("announce_workers", True),
        )
        self._brokers = weakref.WeakSet()
        # Under opentelemetry-instrument nothing else prepares the SDK for Dramatiq's forked
        # worker processes (metric reader locks, per-process flush at exit); tasklens.setup()
        # does it too, and twice does nothing.
        from tasklens.telemetry import prepare_worker_processes

        prepare_worker_processes(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        wrap_function_wrapper("dramatiq.broker", "Broker.__init__", self._after_broker_init)
        if dramatiq.broker.global_broker is not None:
            self._attach(dramatiq.broker.global_broker)
        # Under opentelemetry-instrument, TASKLENS_WORKER_HEALTH=1 serves the worker's liveness too
        # (tasklens.setup() does it otherwise; twice does nothing).
        from tasklens.telemetry.bootstrap import attempt
        from tasklens.worker_health import enable_worker_health

        attempt("the worker health endpoint", enable_worker_health, None)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(dramatiq.broker.Broker, "__init__")
        middleware = self._middleware
        if middleware is None:
            return
        for broker in list(self._brokers):
            if middleware in broker.middleware:
                broker.middleware.remove(middleware)
            middleware.unbind(broker)
        self._brokers = weakref.WeakSet()
        self._middleware = None

    def _after_broker_init(self, wrapped: Any, broker: dramatiq.Broker, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        self._attach(broker)

    def _attach(self, broker: dramatiq.Broker) -> None:
        middleware = self._middleware
        if middleware is None or any(isinstance(m, OpenTelemetryMiddleware) for m in broker.middleware):
            return
        if broker.middleware:
            broker.add_middleware(middleware, before=type(broker.middleware[0]))
        else:
            broker.add_middleware(middleware)
        middleware.bind(broker)
        self._brokers.add(broker)
