"""The routes over what the monitor receives: the OTLP receiver's, the dashboard data's and run
again's, each behind its guard.

The receiver is open on loopback and needs the token when exposed, even with
``--public-metrics`` (exporters send it with
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>``); the dashboard data is guarded like
the REST API's reads, run again like the dead-letter actions.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tasklens.monitor.http.auth import ingest_access, read_access
from tasklens.monitor.http.dashboard_api import dashboard_router
from tasklens.monitor.http.run_again import RunAgainLedger, run_again_router
from tasklens.monitor.ingest.service import TelemetryService

__all__ = ["telemetry_routers"]


def telemetry_routers(telemetry: TelemetryService) -> tuple[list[APIRouter], RunAgainLedger | None]:
    """The receiver's routes, and the dashboard's and run again's when there is a store; with the
    run-again ledger those use, for the caller to close with the store.

    Parameters:
      telemetry(TelemetryService): The receiver, the store and the task metrics.
    """
    routers = [telemetry.receiver.router(dependencies=[Depends(ingest_access)])]
    if telemetry.store is None:
        return routers, None
    ledger = RunAgainLedger(telemetry.store.path)
    routers.append(dashboard_router(telemetry.store.reader, dependencies=[Depends(read_access)]))
    routers.append(run_again_router(telemetry.store.reader, ledger))
    return routers, ledger
