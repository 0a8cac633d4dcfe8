"""``GET /metrics``: the broker gauges (``tasklens.monitor.watch.gauges``) and the task metrics
received over OTLP, in the Prometheus exposition format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client.exposition import choose_encoder

from tasklens.monitor.http.auth import public_access
from tasklens.monitor.http.errors import ErrorBody
from tasklens.monitor.http.state import MonitorState, monitor_state
from tasklens.monitor.watch.gauges import metrics_registry

__all__ = ["router"]


router = APIRouter(tags=["metrics"], dependencies=[Depends(public_access)])


@router.get(
    "/metrics",
    summary="Broker-side gauges in the Prometheus exposition format",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 401: {"model": ErrorBody}},
)
def metrics(request: Request, state: Annotated[MonitorState, Depends(monitor_state)]) -> Response:
    """Reads the broker at most once per ``cache_ttl`` seconds, however often it is scraped.

    Answers in the OpenMetrics format when the scraper asks for it, else the text format 0.0.4.
    """
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    received = () if state.telemetry is None else (state.telemetry.metrics,)
    return Response(encoder(metrics_registry(state.reader, *received)), media_type=content_type)
