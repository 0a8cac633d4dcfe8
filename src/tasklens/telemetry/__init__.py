"""The OpenTelemetry SDK for a tasklens process, configured from the ``OTEL_*`` environment.

:func:`setup` (re-exported as ``tasklens.setup``) is the entry point; :class:`TelemetrySettings`
is the environment it reads, and :class:`Telemetry` the handle it returns.

For SDK providers configured elsewhere (``opentelemetry-instrument``),
:func:`prepare_worker_processes` keeps them working in forked worker processes and flushes them
when a process exits, and :func:`install_message_fields` adds the message id and actor name to
log records.
"""

from __future__ import annotations

from tasklens.telemetry.bootstrap import Telemetry, setup
from tasklens.telemetry.lifecycle import prepare_worker_processes
from tasklens.telemetry.logs import install_message_fields
from tasklens.telemetry.settings import TelemetrySettings

__all__ = ["Telemetry", "TelemetrySettings", "install_message_fields", "prepare_worker_processes", "setup"]
