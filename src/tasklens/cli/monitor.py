"""``tasklens monitor``: serve /metrics, health, the REST API and dead-letter actions over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from tasklens.cli.alert_options import AlertFlags, alert_options
from tasklens.cli.options import (
    EXIT_UNREACHABLE,
    BoundedFloat,
    BrokerTarget,
    broker_errors,
    broker_options,
    fail,
    threshold_options,
)
from tasklens.monitor.http.server import InsecureBindError, check_bind, serve
from tasklens.monitor.settings import (
    AUTH_TOKEN_ENV,
    DEFAULT_CACHE_TTL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    HealthThresholds,
    MonitorSettings,
)

__all__ = ["monitor"]

#: Exit status when the telemetry store cannot be opened.
EXIT_STORE = 1


# -- Telemetry: the OTLP receiver's store and forwarding --------------------------------------------


#: Longest --cache-ttl, in seconds.
MAX_CACHE_TTL = 3600.0


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from tasklens.monitor.store import parse_duration
    from tasklens.monitor.store.retention import MAX_RETENTION

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds > MAX_RETENTION:
        raise click.BadParameter(f"{value!r} is longer than the longest retention, 10 years (520w)")
    return seconds


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from tasklens.monitor.store import parse_size
    from tasklens.monitor.store.retention import MAX_STORE_SIZE, MIN_STORE_SIZE

    try:
        size = parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not MIN_STORE_SIZE <= size <= MAX_STORE_SIZE:
        raise click.BadParameter(f"{value!r} is not between 1MB and 1PB")
    return size


def _host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from tasklens.monitor.http.hosts import ANY_HOST, valid_host_name

    if value == ANY_HOST or not valid_host_name(value):
        raise click.BadParameter(f"{value!r} is not a host name or address (like 127.0.0.1 or 0.0.0.0)")
    return value


def _forward_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from urllib.parse import urlsplit

    if value is not None and (
        urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname
    ):
        raise click.BadParameter("use the upstream's base URL, like http://collector:4318")
    return value


def _allowed_hosts(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from tasklens.monitor.http.hosts import valid_host_name

    for name in value:
        if not valid_host_name(name):
            raise click.BadParameter(f"{name!r} is not a host name or address (like monitor.internal)")
    return value


def _check_store(path: str | None) -> None:
    """Exit with a one-line error when the store cannot be opened (or created) at ``path``."""
    import sqlite3

    from tasklens.monitor.store import TelemetryStore

    if path is None:
        return
    try:
        TelemetryStore.open(path).close()
    except (OSError, sqlite3.Error) as exc:
        fail(f"cannot open the telemetry store at {path}: {exc} (choose another with --store)", EXIT_STORE)


def _store_path(store: Path | None, no_store: bool) -> str | None:
    from tasklens.monitor.store import default_store_path

    if no_store:
        return None
    return str(store or default_store_path())


@click.command()
@broker_options
@click.option("--host", default=DEFAULT_HOST, show_default=True, callback=_host, help="Address to listen on.")
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
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    callback=_allowed_hosts,
    help="A name clients may reach the monitor by, besides localhost and --host (repeatable; '*' for"
    " any). Requests naming another Host are refused, against DNS rebinding.",
)
@click.option(
    "--public-metrics",
    is_flag=True,
    help="Serve /metrics and the health endpoints without the token (OTLP ingest still needs it).",
)
@click.option(
    "--cache-ttl",
    type=BoundedFloat(0, MAX_CACHE_TTL),
    default=DEFAULT_CACHE_TTL,
    show_default=True,
    help="Seconds a broker read is reused: scrapes within it cost no broker read.",
)
@threshold_options
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The telemetry store's database file.  [default: tasklens/telemetry.db in the user data directory]",
)
@click.option("--no-store", is_flag=True, help="Keep no telemetry: what is received only feeds /metrics.")
@click.option(
    "--retention",
    default="24h",
    show_default=True,
    callback=_duration,
    help="Drop telemetry older than this (s, m, h, d or w).",
)
@click.option(
    "--max-store-size",
    default="1GB",
    show_default=True,
    callback=_size,
    help="Drop the oldest telemetry beyond this size (MB, GB, GiB...).",
)
@click.option(
    "--forward",
    metavar="URL",
    callback=_forward_url,
    help="Also send what is received to this OTLP/HTTP endpoint.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@alert_options
def monitor(
    target: BrokerTarget,
    host: str,
    port: int,
    auth_token: str | None,
    insecure: bool,
    allowed_hosts: tuple[str, ...],
    public_metrics: bool,
    cache_ttl: float,
    thresholds: HealthThresholds,
    store: Path | None,
    no_store: bool,
    retention: float,
    max_store_size: int,
    forward: str | None,
    log_level: str,
    alert_flags: AlertFlags,
) -> None:
    """Serve the broker's queues over HTTP: /metrics (Prometheus), /healthz, /readyz,
    /api/health, the REST API under /api (see /openapi.json) and the dead-letter actions.

    Listens on 127.0.0.1 unless --host says otherwise; any other address needs --auth-token
    (or an explicit --insecure). The gauges are exported over OTLP too when
    OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Workers export to the monitor over OTLP/HTTP (/v1/traces, /v1/metrics, /v1/logs: set
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9191): their task metrics are summed on /metrics,
    and everything is kept in the embedded store for the dashboard (--no-store keeps nothing)
    and sent on to --forward.

    \b
    Example:
      tasklens monitor --broker redis://127.0.0.1:6379/0 --port 9191
      tasklens monitor --broker dramatiq=redis://127.0.0.1:6379/0 --app proj.celery  # both libraries
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
        allowed_hosts=allowed_hosts,
        public_metrics=public_metrics,
        thresholds=thresholds,
        broker_timeout=target.timeout,
        cache_ttl=cache_ttl,
        store_path=_store_path(store, no_store),
        retention=retention,
        max_store_size=max_store_size,
        forward_url=forward,
        alerts=alert_flags.config(_store_path(store, no_store)),
        library=target.library,
        transport_options=target.transport_options,
        ping_workers=target.ping_workers,
        brokers=target.brokers,
    )
    try:
        check_bind(settings)
    except InsecureBindError as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    # Opening reads nothing, but rejects an unsupported URL or an app that does not import.
    with broker_errors(target):
        target.open().close()
    _check_store(settings.store_path)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings, log_level=log_level)
