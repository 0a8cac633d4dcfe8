"""The one settings object of ``tasklens monitor``: what to read, where to listen, who may act."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasklens.monitor.store.retention import DEFAULT_MAX_SIZE, DEFAULT_RETENTION

if TYPE_CHECKING:
    from tasklens.monitor.alerts.config import AlertConfig

__all__ = [
    "AUTH_TOKEN_ENV",
    "BROKER_URL_ENV",
    "DEFAULT_BROKER_TIMEOUT",
    "DEFAULT_BROKER_URL",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "BrokerSpec",
    "HealthThresholds",
    "MonitorSettings",
    "default_broker_url",
    "is_loopback",
]

#: Environment variable naming the broker when ``--broker`` is not given.
BROKER_URL_ENV = "TASKLENS_BROKER_URL"
#: The broker read when neither ``--broker`` nor ``TASKLENS_BROKER_URL`` says otherwise.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
#: Environment variable holding the bearer token when ``--auth-token`` is not given.
AUTH_TOKEN_ENV = "TASKLENS_AUTH_TOKEN"
#: The monitor listens on loopback unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
#: The monitor's default TCP port.
DEFAULT_PORT = 9191
#: How long one read of the broker may take before it counts as unavailable, in seconds.
DEFAULT_BROKER_TIMEOUT = 5.0
#: How long a broker read is reused before the broker is read again, in seconds. Many scrapes
#: within this interval cost one broker read.
DEFAULT_CACHE_TTL = 2.0


def default_broker_url() -> str:
    """The broker URL from ``TASKLENS_BROKER_URL``, else the local Redis."""
    return os.environ.get(BROKER_URL_ENV) or DEFAULT_BROKER_URL


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine.

    Parameters:
      host(str): A host name or IP address, as given to ``--host``.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class BrokerSpec:
    """One broker the monitor reads, when it reads several (``--broker`` or ``--app``, repeated).

    Parameters:
      url(str): The broker URL; only its redacted form is ever shown.
      app(str|None): The Celery app or Dramatiq broker module that named it (its queues, key
        prefix or namespace are read too).
      library(str|None): ``dramatiq`` or ``celery``; from the app or detected when ``None``.
    """

    url: str
    app: str | None = None
    library: str | None = None


@dataclass(frozen=True)
class HealthThresholds:
    """When a reachable broker counts as degraded. ``None`` disables a check.

    Parameters:
      max_backlog(int|None): Most pending (ready plus delayed) messages one queue may hold.
      max_age(float|None): Oldest age a ready message may reach, in seconds.
      min_workers(int|None): Fewest live workers expected.
      max_dead(int|None): Most dead letters one queue may hold.
    """

    max_backlog: int | None = None
    max_age: float | None = None
    min_workers: int | None = None
    max_dead: int | None = None


@dataclass(frozen=True)
class MonitorSettings:
    """Everything ``create_app`` and the server need, in one place.

    Parameters:
      broker_url(str): The broker to read; only its redacted form is ever shown.
      app(str|None): A module to import to learn the queues a RabbitMQ broker declares.
      queues(tuple[str, ...]): Queue names to read in addition to those discovered.
      rabbitmq_management_url(str|None): RabbitMQ management API used to discover queues.
      host(str): Address the server binds.
      port(int): TCP port the server binds.
      auth_token(str|None): Bearer token for the API; dead-letter actions need it.
      insecure(bool): Allow a non-loopback bind without a token.
      allowed_hosts(tuple[str, ...]): Names besides loopback and the bind address that requests
        may give as their ``Host`` (``--allowed-host``); ``*`` accepts any.
      public_metrics(bool): Serve ``/metrics`` and health without the token on any bind.
      thresholds(HealthThresholds): When ``/api/health`` says degraded.
      broker_timeout(float): Longest one broker read may take, in seconds.
      cache_ttl(float): How long a broker read is reused, in seconds.
      store_path(str|None): The embedded telemetry store's database file (``--store``);
        ``None`` keeps nothing (``--no-store``): the OTLP receiver still feeds ``/metrics``.
      retention(float|None): Oldest telemetry kept, in seconds (``--retention``).
      max_store_size(int|None): Most bytes the store may hold (``--max-store-size``).
      forward_url(str|None): Upstream OTLP/HTTP endpoint everything received is forwarded to.
      alerts(AlertConfig|None): The built-in alerts' rules and notifiers; ``None``: no alerts.
      library(str|None): ``dramatiq`` or ``celery``; from the app or detected when ``None``.
      transport_options(dict): Celery's ``broker_transport_options`` (over the app's).
      ping_workers(bool): Celery: count workers answering ``inspect ping`` when none heart-beats.
      brokers(tuple[BrokerSpec, ...]): Several brokers to read as one (Dramatiq's and Celery's);
        when given, ``broker_url``, ``app`` and ``library`` are not used. The other broker
        settings (queues, timeout, transport options, ...) apply to each.

    Example:

      >>> settings = MonitorSettings(broker_url="redis://127.0.0.1:6379/0", port=9191)
    """

    broker_url: str = DEFAULT_BROKER_URL
    app: str | None = None
    queues: tuple[str, ...] = ()
    rabbitmq_management_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth_token: str | None = None
    insecure: bool = False
    allowed_hosts: tuple[str, ...] = ()
    public_metrics: bool = False
    thresholds: HealthThresholds = HealthThresholds()
    broker_timeout: float = DEFAULT_BROKER_TIMEOUT
    cache_ttl: float = DEFAULT_CACHE_TTL
    store_path: str | None = None
    retention: float | None = DEFAULT_RETENTION
    max_store_size: int | None = DEFAULT_MAX_SIZE
    forward_url: str | None = None
    alerts: AlertConfig | None = None
    library: str | None = None
    transport_options: dict[str, Any] = field(default_factory=dict)
    ping_workers: bool = False
    brokers: tuple[BrokerSpec, ...] = ()

    @property
    def broker_specs(self) -> tuple[BrokerSpec, ...]:
        """Every broker read: ``brokers``, or the one ``broker_url`` names."""
        return self.brokers or (BrokerSpec(self.broker_url, self.app, self.library),)

    @property
    def loopback(self) -> bool:
        """Whether the server only listens on this machine."""
        return is_loopback(self.host)
