"""opentelemetry-instrumentation-celery in the same process: each task is traced once, by tasklens.

Both packages register an ``opentelemetry_instrumentor`` entry point named ``celery``, so
``opentelemetry-instrument celery -A app worker`` runs both, in an order nobody chooses, and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=celery`` would disable both. Left alone, every publish
and every task run would get two spans, two trace contexts written into the headers and two sets
of metrics. tasklens takes over instead: whenever both are instrumented, the contrib
instrumentation is uninstrumented and one warning line says so. That is checked when
:class:`~tasklens.celery.CeleryInstrumentor` instruments (contrib first) and once
``opentelemetry-instrument`` has run every instrumentor (contrib last), through the
``opentelemetry_post_instrument`` entry point :func:`after_auto_instrumentation`.

Mixed fleets keep working: both write and read the same W3C ``traceparent`` headers.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import signals

__all__ = ["CONTRIB_MODULE", "TAKE_OVER_MESSAGE", "after_auto_instrumentation", "take_over_from_contrib"]

logger = logging.getLogger(__name__)

#: The module of opentelemetry-instrumentation-celery's ``CeleryInstrumentor``.
CONTRIB_MODULE = "opentelemetry.instrumentation.celery"
#: The module of tasklens's own instrumentor.
TASKLENS_MODULE = "tasklens.celery.instrumentor"
#: Names of the program that runs Celery workers and beat.
CELERY_COMMANDS = frozenset({"celery"})
#: The one line that says what happened.
TAKE_OVER_MESSAGE = (
    "Both tasklens and opentelemetry-instrumentation-celery instrument Celery in this process: "
    "tasklens uninstrumented opentelemetry-instrumentation-celery, so that each task is traced once."
)


def take_over_from_contrib() -> bool:
    """Uninstrument opentelemetry-instrumentation-celery if it is instrumented in this process.

    Returns True when it was (and one warning was logged). Imports no instrumentation: one
    that was never imported is not instrumented. In the ``celery`` command the line is logged
    once Celery has set its logging up, so that it reaches the worker's output.
    """
    contrib = _instance(CONTRIB_MODULE)
    if contrib is None or not contrib.is_instrumented_by_opentelemetry:
        return False
    contrib.uninstrument()
    if _celery_command():
        # The celery command replaces the logging handlers when it sets logging up: a line
        # logged before that would never reach the worker's output.
        signals.after_setup_logger.connect(_announce_when_logging_is_set_up, weak=False)
    else:
        _announce()
    return True


def after_auto_instrumentation() -> None:
    """``opentelemetry_post_instrument`` hook: resolve a double instrumentation of Celery."""
    ours = _instance(TASKLENS_MODULE)
    if ours is None or not ours.is_instrumented_by_opentelemetry:
        return
    try:
        take_over_from_contrib()
    except Exception:  # never stop the program being instrumented
        logger.exception("Could not uninstrument opentelemetry-instrumentation-celery.")


def _announce() -> None:
    logger.warning(TAKE_OVER_MESSAGE)


def _announce_when_logging_is_set_up(**_: Any) -> None:
    signals.after_setup_logger.disconnect(_announce_when_logging_is_set_up)
    _announce()


def _celery_command() -> bool:
    """Whether this process is the ``celery`` command, which sets logging up after it is
    instrumented (at start under ``opentelemetry-instrument``, at import of the app otherwise)."""
    return os.path.basename(sys.argv[0] if sys.argv else "") in CELERY_COMMANDS


def _instance(module_name: str) -> Any:
    """The ``CeleryInstrumentor`` singleton of a module already imported, if one was made."""
    module = sys.modules.get(module_name)
    instrumentor_class = getattr(module, "CeleryInstrumentor", None)
    return getattr(instrumentor_class, "_instance", None)
