"""Log correlation and log export.

Every ``logging.LogRecord`` created while a span is current carries ``otelTraceID`` and
``otelSpanID`` (opentelemetry-instrumentation-logging, ``"0"`` outside a span). The task
instrumentations add the ids of the task being run (:mod:`tasklens.messaging.log_fields`).

When a logger provider is given (``OTEL_LOGS_EXPORTER`` asks for export), a handler on the root
logger sends every record that reaches it to that provider, with the ids above as attributes and
the current span's context.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import TracerProvider

__all__ = ["install_log_correlation", "install_log_export", "restore_log_export"]

_correlation_installed = False
#: The handlers :func:`install_log_export` put on the root logger.
_export_handlers: list[logging.Handler] = []


def install_log_correlation(tracer_provider: TracerProvider | None = None) -> None:
    """Add the trace and span ids to every log record.

    Calling it again does nothing.

    Parameters:
      tracer_provider(TracerProvider): whose resource names the service in ``otelServiceName``.
    """
    global _correlation_installed
    if _correlation_installed:
        return
    _correlation_installed = True

    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    instrumentor = LoggingInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # The handler that instrumentation would add talks to the global logger provider; ours
        # (install_log_export) talks to the provider setup built, so theirs stays off.
        instrumentor.instrument(
            tracer_provider=tracer_provider,
            inject_trace_context=True,
            enable_log_auto_instrumentation=False,
        )


def install_log_export(logger_provider: LoggerProvider) -> logging.Handler:
    """Send the records that reach the root logger to ``logger_provider``.

    The handler survives a later ``logging.basicConfig()`` or ``dictConfig()`` (which would
    otherwise see a configured root logger and do nothing, or drop the handler).

    Parameters:
      logger_provider(LoggerProvider): where the records go.
    """
    try:
        from opentelemetry.instrumentation.logging.handler import _setup_logging_handler
    except ImportError:  # older instrumentation: a plain handler, without the config guard
        handler: logging.Handler = _logging_handler_class()(logger_provider=logger_provider)
        logging.getLogger().addHandler(handler)
        _export_handlers.append(handler)
        return handler
    installed: logging.Handler = _setup_logging_handler(logger_provider=logger_provider)
    _export_handlers.append(installed)
    return installed


def restore_log_export() -> bool:
    """Put the export handlers back on the root logger if something took them off.

    For programs that replace the root logger's handlers outright when they set their logging up
    (Celery's worker and beat do, unless told not to), which the guard on the ``logging`` config
    functions cannot see. Returns True when a handler was put back.
    """
    root = logging.getLogger()
    restored = False
    for handler in _export_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
            restored = True
    return restored


def _logging_handler_class() -> Any:
    from opentelemetry.sdk import _logs

    return _logs.LoggingHandler
