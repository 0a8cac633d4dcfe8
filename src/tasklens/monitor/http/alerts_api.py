"""``GET /api/alerts``: what fires now, what fired before, and how the notifiers are doing.

Guarded like the other ``/api`` reads (the token whenever one is configured). A monitor started
without alerts answers with ``enabled: false`` and empty lists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tasklens.monitor.alerts.engine import AlertEngine
from tasklens.monitor.alerts.rules import RULES
from tasklens.monitor.alerts.state import AlertRecord
from tasklens.monitor.http.auth import read_access
from tasklens.monitor.http.errors import ErrorBody

__all__ = ["AlertOut", "AlertsOut", "alert_engine", "router"]


class AlertOut(BaseModel):
    """One alert, firing or resolved."""

    key: str = Field(description="rule:queue; one alert per key at a time.")
    rule: str
    queue: str | None = Field(description="The queue, or null for the broker as a whole.")
    severity: str
    summary: str
    value: float = Field(description="The latest measured value, in the rule's unit.")
    started_at: float = Field(description="When it fired, Unix seconds.")
    notified_at: float = Field(description="When it was last notified, Unix seconds.")
    resolved_at: float | None = Field(description="When it resolved, Unix seconds; null while firing.")
    reminders: int

    @classmethod
    def of(cls, record: AlertRecord) -> AlertOut:
        return cls(**vars(record))


class RuleOut(BaseModel):
    """A rule and how it is configured."""

    name: str
    severity: str
    enabled: bool
    threshold: float
    for_seconds: float
    window: float
    description: str
    runbook: str


class NotifierOut(BaseModel):
    """How one notifier is doing."""

    target: str = Field(description="Where it sends, without secrets.")
    sent: int
    failures: int = Field(description="Failed attempts (each is retried with backoff).")
    dropped: int = Field(description="Notifications given up.")
    pending: int
    last_error: str | None


class AlertsOut(BaseModel):
    """The built-in alerts."""

    enabled: bool = Field(description="Whether the monitor evaluates alerts (--alerts or --alert-*).")
    evaluated_at: float | None = Field(description="When the rules were last evaluated, Unix seconds.")
    firing: list[AlertOut]
    pending: dict[str, float] = Field(
        description="Conditions holding but not for long enough yet: since when."
    )
    history: list[AlertOut] = Field(description="Resolved alerts, newest first.")
    rules: list[RuleOut]
    notifiers: list[NotifierOut]


def alert_engine(request: Request) -> AlertEngine | None:
    """FastAPI dependency: the app's alert engine, or ``None`` when alerts are off."""
    engine: AlertEngine | None = getattr(request.app.state, "alerts", None)
    return engine


router = APIRouter(
    prefix="/api",
    tags=["alerts"],
    dependencies=[Depends(read_access)],
    responses={401: {"model": ErrorBody, "description": "Missing or wrong bearer token."}},
)


@router.get("/alerts", summary="Firing alerts, their history and the notifiers")
def list_alerts(engine: Annotated[AlertEngine | None, Depends(alert_engine)]) -> AlertsOut:
    if engine is None:
        return AlertsOut(
            enabled=False, evaluated_at=None, firing=[], pending={}, history=[], rules=[], notifiers=[]
        )
    rules = [
        RuleOut(
            name=name,
            severity=RULES[name].severity,
            enabled=settings.enabled,
            threshold=settings.threshold,
            for_seconds=settings.for_seconds,
            window=settings.window,
            description=RULES[name].description,
            runbook=RULES[name].runbook,
        )
        for name, settings in engine.config.rules.items()
    ]
    return AlertsOut(
        enabled=True,
        evaluated_at=engine.last_evaluated,
        firing=[AlertOut.of(r) for r in engine.firing()],
        pending=engine.pending(),
        history=[AlertOut.of(r) for r in engine.history()],
        rules=rules,
        notifiers=[NotifierOut(**vars(s)) for s in engine.deliveries()],
    )
