"""``/healthz``, ``/readyz`` and ``/api/health``: the verdicts of ``tasklens.monitor.watch.health``
over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from tasklens.monitor.http.auth import public_access
from tasklens.monitor.http.errors import ErrorBody
from tasklens.monitor.http.schemas import BrokerPartOut, HealthOut, QueueOut
from tasklens.monitor.http.state import MonitorState, monitor_state
from tasklens.monitor.watch.health import UNHEALTHY, HealthReport, assess_health, unreachable_report

__all__ = ["health_body", "router"]


def health_body(report: HealthReport) -> HealthOut:
    """The report as the JSON body of ``/api/health``.

    Parameters:
      report(HealthReport): The verdict.
    """
    return HealthOut(
        status=report.status,
        broker=report.broker,
        messaging_system=report.messaging_system,
        workers=report.workers,
        workers_note=report.workers_note,
        queues=[QueueOut.of(stats, report.messaging_system) for stats in report.queues],
        total_pending=report.total_pending,
        reasons=list(report.reasons),
        brokers=None if report.brokers is None else [BrokerPartOut.of(part) for part in report.brokers],
    )


router = APIRouter(tags=["health"], dependencies=[Depends(public_access)])


@router.get("/healthz", summary="The monitor process is alive")
def healthz() -> dict[str, str]:
    """Liveness: answers 200 without reading the broker."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The broker answers",
    responses={503: {"description": "The broker did not answer in time.", "model": ErrorBody}},
)
def readyz(state: Annotated[MonitorState, Depends(monitor_state)]) -> JSONResponse:
    """Readiness: 200 when the last broker read (at most ``cache_ttl`` seconds old) succeeded,
    503 when it failed or did not finish within ``broker_timeout`` seconds. With several brokers,
    every one must have answered; the body lists each with ``up``."""
    result = state.reader.result()
    if result.error is not None:
        return JSONResponse({"error": str(result.error), "broker": state.broker}, status_code=503)
    parts = result.snapshot.brokers if result.snapshot is not None else None
    if parts is None:
        return JSONResponse({"status": "ready", "broker": state.broker})
    brokers = [BrokerPartOut.of(part).model_dump() for part in parts]
    down = [part for part in parts if not part.up]
    if down:
        error = "; ".join(f"{part.broker} did not answer: {part.error}" for part in down)
        return JSONResponse({"error": error, "broker": state.broker, "brokers": brokers}, status_code=503)
    return JSONResponse({"status": "ready", "broker": state.broker, "brokers": brokers})


@router.get(
    "/api/health",
    summary="Healthy, degraded or unhealthy, with the queue counts",
    responses={503: {"description": "The broker did not answer (status unhealthy).", "model": HealthOut}},
)
def api_health(state: Annotated[MonitorState, Depends(monitor_state)], response: Response) -> HealthOut:
    """200 for healthy and degraded, 503 for unhealthy (broker unreachable)."""
    result = state.reader.result()
    if result.snapshot is None:
        report = unreachable_report(state.broker, str(result.error))
    else:
        report = assess_health(result.snapshot, state.settings.thresholds, broker=state.broker)
    if report.status == UNHEALTHY:
        response.status_code = 503
    return health_body(report)
