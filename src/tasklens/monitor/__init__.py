"""``tasklens monitor``: the broker's queues, dead letters, workers and health over HTTP.

Run it with ``tasklens monitor --broker redis://127.0.0.1:6379/0``, or build the ASGI app
yourself::

    from tasklens.monitor import MonitorSettings, create_app

    app = create_app(MonitorSettings(broker_url="redis://127.0.0.1:6379/0"))

It serves ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``, ``/api/health``, a REST API
under ``/api`` described at ``/openapi.json``, and exports the same gauges over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Its parts import one way: ``store`` (the embedded SQLite store) imports none of the others;
``watch`` (broker reads, health verdicts, the broker gauges) the store; ``ingest`` (the OTLP
receiver and what it feeds) the store and the watch; ``alerts`` any of those; ``http`` (the app,
its routes and their guards) every part, and nothing imports it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasklens.monitor.settings import HealthThresholds, MonitorSettings

if TYPE_CHECKING:
    from tasklens.monitor.http.app import create_app

__all__ = ["HealthThresholds", "MonitorSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # The app (FastAPI and the web stack) is imported when first asked for, so the CLI commands
    # that only read a broker, and the parts under this package, start without it.
    if name == "create_app":
        from tasklens.monitor.http.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
