"""``create_app(settings)``: the monitor's ASGI application.

The app is a FastAPI application built from one router per concern (health, ``/metrics``, the
REST API, dead-letter actions). Services that add a concern (an OTLP receiver, a store, a web UI)
add their router to ``ROUTERS`` and read what they need from ``app.state.monitor``
(``MonitorState``). Routers with fixed paths under ``/api/queues/`` must come before
``api.router``, whose ``/api/queues/{queue}`` would otherwise match them.

Example:

    >>> from tasklens.monitor import MonitorSettings, create_app
    >>> app = create_app(MonitorSettings(broker_url="redis://127.0.0.1:6379/0"))
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from tasklens.brokers.base import BrokerInspector
from tasklens.brokers.url import check_broker_url, redact_url
from tasklens.monitor.alerts.engine import AlertEngine
from tasklens.monitor.http import alerts_api, api, health, metrics, pages
from tasklens.monitor.http.auth import document_security
from tasklens.monitor.http.errors import install_error_handlers
from tasklens.monitor.http.headers import SecurityHeadersMiddleware
from tasklens.monitor.http.hosts import HostCheckMiddleware, HostPolicy
from tasklens.monitor.http.state import MonitorState
from tasklens.monitor.http.telemetry_routes import telemetry_routers
from tasklens.monitor.ingest.service import TelemetryService
from tasklens.monitor.settings import BrokerSpec, MonitorSettings
from tasklens.monitor.watch.inspectors import InspectorFactory, SharedInspector
from tasklens.monitor.watch.otlp_export import start_otlp_export
from tasklens.monitor.watch.snapshots import SnapshotReader

__all__ = ["ROUTERS", "broker_description", "broker_factory", "create_app"]

logger = logging.getLogger(__name__)

#: The app's routers, in matching order.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    api.router,
    api.actions_router,
    alerts_api.router,
    # The web dashboard's pages and static files; last, so API paths always win.
    pages.router,
)


#: How much longer than one broker's timeout the reader waits for several brokers read at once,
#: in seconds: each is bounded by the timeout, and the composite must report the slow one first.
COMPOSITE_MARGIN = 1.0


def broker_factory(settings: MonitorSettings) -> InspectorFactory:
    """Opens an inspector for the settings' brokers with ``tasklens.brokers.open_broker``: one
    broker's, or a ``CompositeInspector`` over each of several.

    Parameters:
      settings(MonitorSettings): Which brokers, which queues, and the timeout.
    """

    def open_one(spec: BrokerSpec) -> BrokerInspector:
        from tasklens.brokers import open_broker

        check_broker_url(spec.url)
        return open_broker(
            spec.url,
            queues=settings.queues,
            app=spec.app,
            management_url=settings.rabbitmq_management_url,
            timeout=settings.broker_timeout,
            library=spec.library,
            transport_options=settings.transport_options,
            ping_workers=settings.ping_workers,
        )

    specs = settings.broker_specs
    if len(specs) == 1:
        return lambda: open_one(specs[0])

    def open_composite() -> BrokerInspector:
        from tasklens.brokers.composite import CompositeInspector, CompositeMember

        members = [
            CompositeMember(spec.url, functools.partial(open_one, spec), library=spec.library)
            for spec in specs
        ]
        return CompositeInspector(members, timeout=settings.broker_timeout)

    return open_composite


def broker_description(settings: MonitorSettings) -> str:
    """The brokers read, without credentials: the only form ever shown.

    Parameters:
      settings(MonitorSettings): Which brokers.
    """
    return ", ".join(redact_url(spec.url) for spec in settings.broker_specs)


def create_app(settings: MonitorSettings, *, open_inspector: InspectorFactory | None = None) -> FastAPI:
    """Build the monitor's ASGI app. Nothing connects to the broker until a request needs it.

    Parameters:
      settings(MonitorSettings): Everything the monitor is configured with.
      open_inspector(InspectorFactory|None): Opens broker inspectors (a ``CompositeInspector``
        when ``settings.brokers`` names several); by default ``broker_factory(settings)``.
        Called once for snapshots and once for dead-letter work.
    """
    factory = open_inspector or broker_factory(settings)
    broker = broker_description(settings)
    several = len(settings.broker_specs) > 1
    reader = SnapshotReader(
        SharedInspector(factory),
        redacted_url=broker,
        timeout=settings.broker_timeout + (COMPOSITE_MARGIN if several else 0.0),
        ttl=settings.cache_ttl,
    )
    telemetry = TelemetryService.open(settings)
    state = MonitorState(
        settings=settings, broker=broker, reader=reader, actions=SharedInspector(factory), telemetry=telemetry
    )
    # The OTLP receiver and the dashboard data API come first: ``/api/queues/history`` must be
    # matched before ``/api/queues/{queue}``.
    received_routers, ledger = telemetry_routers(telemetry)
    routers = (*received_routers, *ROUTERS)
    alerts = AlertEngine(settings.alerts, broker=broker) if settings.alerts is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        exporter = start_otlp_export(reader)
        telemetry.start(reader)
        if alerts is not None:
            alerts.start(reader, telemetry.metrics)
        logger.info("Monitoring %s.", broker)
        try:
            yield
        finally:
            if exporter is not None:
                exporter.shutdown()
            if alerts is not None:
                alerts.close()
            telemetry.close()
            if ledger is not None:
                ledger.close()
            state.close()

    app = FastAPI(
        title="tasklens monitor",
        description="Queue depth, dead letters, workers and health, read from the broker.",
        version=importlib.metadata.version("tasklens"),
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN and run an inline one;
        # the monitor serves its own /docs (``pages``), with every file it needs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.monitor = state
    app.state.alerts = alerts
    app.add_middleware(SecurityHeadersMiddleware)
    # Added last, so it runs first: a request for another host gets no further.
    app.add_middleware(HostCheckMiddleware, policy=HostPolicy.for_bind(settings.host, settings.allowed_hosts))
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    _document_access(app, settings, routers)
    return app


def _document_access(app: FastAPI, settings: MonitorSettings, routers: tuple[APIRouter, ...]) -> None:
    """Make ``/openapi.json`` say which operations need the token with these settings."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            document_security(schema, routers, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
