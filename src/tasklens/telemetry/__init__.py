"""The OpenTelemetry SDK for a tasklens process, configured from the ``OTEL_*`` environment.

:func:`setup` builds the providers; ``tasklens.setup`` calls it, then instruments the task
libraries that are installed. :class:`TelemetrySettings` is the environment it reads, and
:class:`Telemetry` the handle it returns. This layer knows no task library.

For SDK providers configured elsewhere (``opentelemetry-instrument``),
:func:`prepare_worker_processes` keeps them working in forked worker processes and flushes them
when a process exits.
"""

from __future__ import annotations

from tasklens.telemetry.bootstrap import Telemetry, setup
from tasklens.telemetry.lifecycle import prepare_worker_processes, shutdown_prepared
from tasklens.telemetry.settings import TelemetrySettings

__all__ = ["Telemetry", "TelemetrySettings", "prepare_worker_processes", "setup", "shutdown_prepared"]
