"""The OpenTelemetry SDK for a tasklens process, configured from the ``OTEL_*`` environment.

:func:`setup` (re-exported as ``tasklens.setup``) is the entry point; :class:`TelemetrySettings`
is the environment it reads, and :class:`Telemetry` the handle it returns.
"""

from __future__ import annotations

from tasklens.telemetry.bootstrap import Telemetry, setup
from tasklens.telemetry.settings import TelemetrySettings

__all__ = ["Telemetry", "TelemetrySettings", "setup"]
