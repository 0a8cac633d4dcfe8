"""The ``TASKLENS`` Django setting, read and checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from tasklens.monitor.settings import DEFAULT_BROKER_TIMEOUT, DEFAULT_CACHE_TTL, HealthThresholds

__all__ = ["SETUP_OPTIONS", "DjangoSettings", "HealthSettings", "read_settings"]

#: ``TASKLENS`` keys passed to ``tasklens.setup()``, and the option each becomes.
SETUP_OPTIONS = {
    "SERVICE_NAME": "service_name",
    "PROCESS_METRICS": "process_metrics",
    "LOG_CORRELATION": "log_correlation",
    "USE_LINKS": "use_links",
    "CAPTURE_ARGS": "capture_args",
    "WORKER_HEALTH": "worker_health",
}
_HEALTH_KEYS = {
    "BROKER_URL",
    "QUEUES",
    "MAX_BACKLOG",
    "MAX_AGE",
    "MIN_WORKERS",
    "TIMEOUT",
    "CACHE_TTL",
    "RABBITMQ_MANAGEMENT_URL",
    "CELERY_APP",
}


@dataclass(frozen=True)
class HealthSettings:
    """What the health views read and how they judge it.

    Parameters:
      broker_url(str|None): The broker; by default ``DRAMATIQ_BROKER["OPTIONS"]["url"]``.
      queues(tuple[str, ...]): Queues to report besides those the broker declares.
      thresholds(HealthThresholds): When the verdict is degraded.
      timeout(float): Longest one broker read may take, in seconds.
      cache_ttl(float): How long a read is reused, in seconds.
      management_url(str|None): RabbitMQ management API.
      celery_app(str|None): The project's Celery app (``proj.celery`` or ``proj.celery:app``): its
        broker, queues and transport options are read instead of django_dramatiq's.
    """

    broker_url: str | None = None
    queues: tuple[str, ...] = ()
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    timeout: float = DEFAULT_BROKER_TIMEOUT
    cache_ttl: float = DEFAULT_CACHE_TTL
    management_url: str | None = None
    celery_app: str | None = None


@dataclass(frozen=True)
class DjangoSettings:
    """``settings.TASKLENS``, checked.

    Parameters:
      setup(bool): Whether ``ready()`` calls ``tasklens.setup()``.
      options(dict): The keyword arguments for ``tasklens.setup()``.
      health(HealthSettings): For the health views.
    """

    setup: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    health: HealthSettings = field(default_factory=HealthSettings)


def _number(table: Mapping[str, Any], key: str, kind: type) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (kind is int and not isinstance(value, int))
    ):
        raise ImproperlyConfigured(
            f"TASKLENS['HEALTH']['{key}'] must be a non-negative {kind.__name__}, not {value!r}"
        )
    return kind(value)


def read_settings(raw: object) -> DjangoSettings:
    """Check ``settings.TASKLENS``.

    Parameters:
      raw: The setting's value (``None`` when absent).

    Raises:
      ImproperlyConfigured: Naming the key that is wrong.
    """
    if raw is None:
        return DjangoSettings()
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"TASKLENS must be a dict, not {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SETUP_OPTIONS) - {"SETUP", "HEALTH"})
    if unknown:
        raise ImproperlyConfigured(
            f"TASKLENS has an unknown key {unknown[0]!r};"
            f" expected {', '.join(sorted([*SETUP_OPTIONS, 'SETUP', 'HEALTH']))}"
        )
    health = raw.get("HEALTH") or {}
    if not isinstance(health, Mapping):
        raise ImproperlyConfigured("TASKLENS['HEALTH'] must be a dict")
    unknown = sorted(set(health) - _HEALTH_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"TASKLENS['HEALTH'] has an unknown key {unknown[0]!r};"
            f" expected {', '.join(sorted(_HEALTH_KEYS))}"
        )
    queues = health.get("QUEUES", ())
    if isinstance(queues, str) or not all(isinstance(q, str) for q in queues):
        raise ImproperlyConfigured("TASKLENS['HEALTH']['QUEUES'] must be a list of queue names")
    celery_app = health.get("CELERY_APP")
    if celery_app is not None and (not isinstance(celery_app, str) or not celery_app):
        raise ImproperlyConfigured(
            "TASKLENS['HEALTH']['CELERY_APP'] must name the Celery app's module, like 'proj.celery:app'"
        )
    timeout = _number(health, "TIMEOUT", float)
    cache_ttl = _number(health, "CACHE_TTL", float)
    return DjangoSettings(
        setup=bool(raw.get("SETUP", True)),
        options={option: raw[key] for key, option in SETUP_OPTIONS.items() if key in raw},
        health=HealthSettings(
            broker_url=health.get("BROKER_URL"),
            queues=tuple(queues),
            thresholds=HealthThresholds(
                max_backlog=_number(health, "MAX_BACKLOG", int),
                max_age=_number(health, "MAX_AGE", float),
                min_workers=_number(health, "MIN_WORKERS", int),
            ),
            timeout=DEFAULT_BROKER_TIMEOUT if timeout is None else timeout,
            cache_ttl=DEFAULT_CACHE_TTL if cache_ttl is None else cache_ttl,
            management_url=health.get("RABBITMQ_MANAGEMENT_URL"),
            celery_app=celery_app,
        ),
    )
