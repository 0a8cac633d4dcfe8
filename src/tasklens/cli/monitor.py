"""``tasklens monitor``: serve /metrics, health, the REST API and dead-letter actions over HTTP."""

from __future__ import annotations

import logging

import click

from tasklens.cli.options import (
    EXIT_UNREACHABLE,
    BrokerTarget,
    broker_errors,
    broker_options,
    fail,
    threshold_options,
)
from tasklens.monitor.server import InsecureBindError, check_bind, serve
from tasklens.monitor.settings import (
    AUTH_TOKEN_ENV,
    DEFAULT_CACHE_TTL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    HealthThresholds,
    MonitorSettings,
)

__all__ = ["monitor"]


@click.command()
@broker_options
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="TCP port."
)
@click.option(
    "--auth-token",
    envvar=AUTH_TOKEN_ENV,
    metavar="TOKEN",
    help=f"Bearer token for the API; dead-letter actions need it. Also {AUTH_TOKEN_ENV}.",
)
@click.option("--insecure", is_flag=True, help="Allow listening beyond loopback without a token.")
@click.option(
    "--public-metrics", is_flag=True, help="Serve /metrics and the health endpoints without the token."
)
@click.option(
    "--cache-ttl",
    type=click.FloatRange(min=0),
    default=DEFAULT_CACHE_TTL,
    show_default=True,
    help="Seconds a broker read is reused: scrapes within it cost no broker read.",
)
@threshold_options
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def monitor(
    target: BrokerTarget,
    host: str,
    port: int,
    auth_token: str | None,
    insecure: bool,
    public_metrics: bool,
    cache_ttl: float,
    thresholds: HealthThresholds,
    log_level: str,
) -> None:
    """Serve the broker's queues over HTTP: /metrics (Prometheus), /healthz, /readyz,
    /api/health, the REST API under /api (see /openapi.json) and the dead-letter actions.

    Listens on 127.0.0.1 unless --host says otherwise; any other address needs --auth-token
    (or an explicit --insecure). The gauges are exported over OTLP too when
    OTEL_EXPORTER_OTLP_ENDPOINT is set.

    \b
    Example:
      tasklens monitor --broker redis://127.0.0.1:6379/0 --port 9191
      TASKLENS_AUTH_TOKEN=s3cret tasklens monitor --host 0.0.0.0 --public-metrics \\
          --broker amqp://guest:guest@rabbit:5672/%2F --queue default --max-backlog 1000
    """
    settings = MonitorSettings(
        broker_url=target.url,
        app=target.app,
        queues=target.queues,
        rabbitmq_management_url=target.management_url,
        host=host,
        port=port,
        auth_token=auth_token or None,
        insecure=insecure,
        public_metrics=public_metrics,
        thresholds=thresholds,
        broker_timeout=target.timeout,
        cache_ttl=cache_ttl,
    )
    try:
        check_bind(settings)
    except InsecureBindError as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    # Opening reads nothing, but rejects an unsupported URL or an app that does not import.
    with broker_errors(target):
        target.open().close()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings, log_level=log_level)
