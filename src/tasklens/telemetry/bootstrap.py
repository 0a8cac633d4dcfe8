"""``tasklens.setup()``: the OpenTelemetry SDK for this process, from the ``OTEL_*`` environment.

Call it at import of the module that creates the broker. The Dramatiq CLI imports that module in
every worker process, so each process gets its own providers, its own ``service.instance.id`` and
its own flush at exit; a process forked from one that already ran it keeps working too (the SDK
restarts its export threads in the child and gives it a new instance id).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tasklens.telemetry import lifecycle, logs, providers
from tasklens.telemetry.process_metrics import start_process_metrics
from tasklens.telemetry.settings import TelemetrySettings

__all__ = ["Telemetry", "setup"]

logger = logging.getLogger(__name__)

#: How long :meth:`Telemetry.force_flush` waits per signal by default, in milliseconds.
FLUSH_TIMEOUT_MS = 10_000
#: A new process exports its first metrics this soon after setup, in seconds, rather than after a
#: whole export interval (60 s by default): a worker that just started shows on a dashboard at once.
FIRST_EXPORT_DELAY = 2.0

_lock = threading.Lock()
_telemetry: Telemetry | None = None


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock would leave it held forever in the child.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


class Telemetry:
    """What :func:`setup` configured for this process, and how to flush it.

    All providers are None when ``OTEL_SDK_DISABLED=true``; ``logger_provider`` is None unless
    ``OTEL_LOGS_EXPORTER`` asks for log export.

    Parameters:
      tracer_provider(TracerProvider): the SDK tracer provider, now the global one.
      meter_provider(MeterProvider): the SDK meter provider, now the global one.
      logger_provider(LoggerProvider): the SDK logger provider, when logs are exported.
      resource(Resource): the resource the signals carry.
      instrumented(tuple[str, ...]): what setup instrumented: ``process_metrics``, ``logging``,
        and the task libraries ``tasklens.setup`` instrumented (``dramatiq``, ``celery``).

    Example:

      >>> telemetry = tasklens.setup(service_name="billing-worker")
      >>> telemetry.force_flush()
      True
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
        resource: Resource | None = None,
        instrumented: tuple[str, ...] = (),
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.resource = resource
        self.instrumented = instrumented

    @property
    def enabled(self) -> bool:
        """False when setup did nothing (``OTEL_SDK_DISABLED=true``)."""
        return self.tracer_provider is not None

    def force_flush(self, timeout_millis: int = FLUSH_TIMEOUT_MS) -> bool:
        """Export everything buffered now: spans, then logs, then metrics.

        Parameters:
          timeout_millis(int): how long each signal may take, in milliseconds.

        Returns True when every signal was flushed in time.
        """
        flushed = True
        for provider in self._providers():
            try:
                flushed = bool(provider.force_flush(timeout_millis)) and flushed
            except Exception:
                logger.exception("Could not flush %s.", type(provider).__name__)
                flushed = False
        return flushed

    def shutdown(self) -> None:
        """Flush and stop the providers. Calling it again does nothing.

        Runs by itself when the process exits (Dramatiq worker processes included, which end
        without running ``atexit`` handlers). An unreachable collector delays it by at most the
        exporters' timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s by default) per signal.
        """
        lifecycle.shutdown(self._providers())

    def _providers(self) -> list[Any]:
        # Spans first and metrics last: the final metric collection then counts everything.
        candidates = (self.tracer_provider, self.logger_provider, self.meter_provider)
        return [provider for provider in candidates if provider is not None]


def setup(
    service_name: str | None = None,
    *,
    process_metrics: bool = True,
    log_correlation: bool = True,
) -> Telemetry:
    """Configure OpenTelemetry for this process from the ``OTEL_*`` environment.

    Builds the resource, the tracer, meter and (when asked) logger providers with their
    exporters, makes them global, starts the process health metrics, adds trace ids to log
    records, and flushes everything when the process exits. The first call does the work; later
    calls return the same :class:`Telemetry`.
    Nothing here connects to the collector, so an unreachable one never makes it fail.

    When another configuration already installed SDK providers (``opentelemetry-instrument``),
    they are used as they are.

    Parameters:
      service_name(str): the ``service.name`` to use when neither ``OTEL_SERVICE_NAME``,
        ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` nor ``DRAMATIQ_SERVICE_NAME`` is set.
        The environment wins so that one image can run as several services.
      process_metrics(bool): report this process's CPU, memory, threads and GC.
      log_correlation(bool): add ``otelTraceID`` and ``otelSpanID`` to log records (and export
        them when ``OTEL_LOGS_EXPORTER`` asks).

    Example:

      >>> broker = RedisBroker(url=os.environ["REDIS_URL"])
      >>> dramatiq.set_broker(broker)
      >>> tasklens.setup(service_name="billing-worker")
    """
    global _telemetry
    with _lock:
        if _telemetry is None:
            _telemetry = _configure(
                TelemetrySettings.from_env(),
                service_name,
                process_metrics=process_metrics,
                log_correlation=log_correlation,
            )
        return _telemetry


def _configure(
    settings: TelemetrySettings,
    service_name: str | None,
    *,
    process_metrics: bool,
    log_correlation: bool,
) -> Telemetry:
    if settings.sdk_disabled:
        return Telemetry()
    resource = providers.build_resource(settings, service_name)
    tracer_provider = _global_tracer_provider(settings, resource)
    meter_provider = _global_meter_provider(settings, resource)
    logger_provider, export_logs = _global_logger_provider(settings, resource, log_correlation)

    instrumented: list[str] = []
    if process_metrics and attempt("process metrics", start_process_metrics, meter_provider):
        instrumented.append("process_metrics")
    if log_correlation and attempt(
        "log correlation", _correlate_logs, tracer_provider, logger_provider if export_logs else None
    ):
        instrumented.append("logging")

    lifecycle.prepare_worker_processes(tracer_provider, meter_provider, logger_provider)
    _export_soon(meter_provider)
    return Telemetry(
        tracer_provider, meter_provider, logger_provider, tracer_provider.resource, tuple(instrumented)
    )


def _global_tracer_provider(settings: TelemetrySettings, resource: Resource) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    # Built even when no exporter is configured: spans still carry the context to the workers
    # and the ids into the logs.
    provider = providers.build_tracer_provider(settings, resource)
    trace.set_tracer_provider(provider)
    return provider


def _global_meter_provider(settings: TelemetrySettings, resource: Resource) -> MeterProvider:
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        return current
    provider = providers.build_meter_provider(settings, resource)
    metrics.set_meter_provider(provider)
    return provider


def _global_logger_provider(
    settings: TelemetrySettings, resource: Resource, wanted: bool
) -> tuple[LoggerProvider | None, bool]:
    """The logger provider, and whether setup must route log records to it itself."""
    current = get_logger_provider()
    if isinstance(current, LoggerProvider):  # whoever installed it also routes the records
        return current, False
    provider = providers.build_logger_provider(settings, resource) if wanted else None
    if provider is None:
        return None, False
    set_logger_provider(provider)
    return provider, True


def _correlate_logs(tracer_provider: TracerProvider, logger_provider: LoggerProvider | None) -> bool:
    logs.install_log_correlation(tracer_provider)
    if logger_provider is not None:
        logs.install_log_export(logger_provider)
    return True


def _export_soon(meter_provider: MeterProvider) -> None:
    """Export the metrics once, ``FIRST_EXPORT_DELAY`` seconds from now, off the caller's thread."""
    timer = threading.Timer(FIRST_EXPORT_DELAY, _first_export, args=(meter_provider,))
    timer.daemon = True
    timer.name = "tasklens-first-metric-export"
    timer.start()


def _first_export(meter_provider: MeterProvider) -> None:
    try:
        meter_provider.force_flush(FLUSH_TIMEOUT_MS)
    except Exception:  # a collector that is down is the periodic reader's to report
        logger.debug("The first metric export failed.", exc_info=True)


def attempt(what: str, function: Any, *args: Any) -> bool:
    """Run one optional part of the setup; a failure is logged and the rest carries on."""
    try:
        return bool(function(*args))
    except Exception:
        logger.exception("tasklens could not set up %s; continuing without it.", what)
        return False
