"""Log correlation and log export.

Every ``logging.LogRecord`` created while a span is current carries ``otelTraceID`` and
``otelSpanID`` (opentelemetry-instrumentation-logging, ``"0"`` outside a span), and every record
created while an actor runs also carries the message id and the actor name, under the names in
:mod:`tasklens.semconv` (``dramatiq_message_id``, ``dramatiq_actor_name``). Use them in a format:

    logging.basicConfig(format=(
        "%(levelname)s [trace=%(otelTraceID)s span=%(otelSpanID)s "
        "message=%(dramatiq_message_id)s] %(message)s"
    ), defaults={"dramatiq_message_id": "-"})

Records logged outside an actor have no message fields, hence the ``defaults``.

When a logger provider is given (``OTEL_LOGS_EXPORTER`` asks for export), a handler on the root
logger sends every record that reaches it to that provider, with the ids above as attributes and
the current span's context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import TracerProvider

from tasklens import semconv

__all__ = ["install_log_correlation", "install_log_export", "install_message_fields"]

#: Returns the Dramatiq message being processed on the calling thread, or None.
CurrentMessage = Callable[[], Any]

_correlation_installed = False
_message_fields_installed = False


def install_log_correlation(tracer_provider: TracerProvider | None = None) -> None:
    """Add trace ids, and message id and actor name inside actors, to every log record.

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

    install_message_fields()


def install_message_fields() -> bool:
    """Add the message id and actor name to every record logged while an actor runs.

    The trace ids are left to opentelemetry-instrumentation-logging (under
    ``opentelemetry-instrument``, set ``OTEL_PYTHON_LOG_CORRELATION=true``). Calling it again does
    nothing. Returns False when Dramatiq is not installed.
    """
    global _message_fields_installed
    if _message_fields_installed:
        return True
    current_message = _current_message_function()
    if current_message is None:
        return False
    _message_fields_installed = True
    logging.setLogRecordFactory(_with_message_fields(logging.getLogRecordFactory(), current_message))
    return True


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
        return handler
    installed: logging.Handler = _setup_logging_handler(logger_provider=logger_provider)
    return installed


def _with_message_fields(
    factory: Callable[..., logging.LogRecord], current_message: CurrentMessage
) -> Callable[..., logging.LogRecord]:
    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = current_message()
        except Exception:  # correlation must never break a log call
            return record
        if message is not None:
            setattr(record, semconv.LOG_MESSAGE_ID, message.message_id)
            setattr(record, semconv.LOG_ACTOR_NAME, message.actor_name)
        return record

    return record_factory


def _current_message_function() -> CurrentMessage | None:
    try:
        from tasklens.dramatiq import current_message
    except ImportError:  # Dramatiq is not installed: there are no actors to correlate.
        return None
    function: CurrentMessage = current_message
    return function


def _logging_handler_class() -> Any:
    from opentelemetry.sdk import _logs

    return _logs.LoggingHandler
