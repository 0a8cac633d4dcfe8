"""Queue health views: the verdict of ``tasklens health`` for the project's task broker, as JSON.

The broker is the one ``django_dramatiq`` set up (its URL from ``DRAMATIQ_BROKER["OPTIONS"]["url"]``
unless ``TASKLENS["HEALTH"]["BROKER_URL"]`` says otherwise), its queues those its actors declared
plus ``TASKLENS["HEALTH"]["QUEUES"]``. With ``TASKLENS["HEALTH"]["CELERY_APP"]``, it is that Celery
app's instead: its ``broker_url``, queues and transport options, read as ``tasklens health --app``
reads them (priority steps, unacknowledged tasks and workers' heartbeats included).

Reads go through the monitor's ``SnapshotReader``: bounded
by ``TIMEOUT`` seconds however the broker behaves, and shared for ``CACHE_TTL`` seconds by every
request of the process.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from tasklens.brokers.base import BrokerInspector
from tasklens.brokers.url import redact_url
from tasklens.django.apps import TasklensConfig
from tasklens.django.settings import HealthSettings
from tasklens.monitor.http.health import health_body
from tasklens.monitor.watch.health import DEGRADED, UNHEALTHY, assess_health, unreachable_report
from tasklens.monitor.watch.inspectors import SharedInspector
from tasklens.monitor.watch.snapshots import SnapshotReader

__all__ = ["health"]

_lock = threading.Lock()
_readers: dict[tuple[str, tuple[str, ...]], SnapshotReader] = {}


def _dramatiq_broker() -> tuple[str, str | None, tuple[str, ...]]:
    """The URL, namespace and declared queues of the global Dramatiq broker."""
    import dramatiq

    broker = dramatiq.get_broker()
    options = (getattr(settings, "DRAMATIQ_BROKER", None) or {}).get("OPTIONS", {})
    url = options.get("url")
    queues = tuple(sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))))
    namespace = getattr(broker, "namespace", None)
    return url, namespace if isinstance(namespace, str) else None, queues


def _celery_broker(app: str) -> tuple[str | None, tuple[str, ...]]:
    """The broker URL and queues of the Celery app ``app`` names."""
    from tasklens.brokers.app import load_app_queues

    declared = load_app_queues(app)
    return declared.broker_url, declared.queues


def _reader(health: HealthSettings) -> tuple[SnapshotReader, str]:
    namespace: str | None = None
    if health.celery_app:
        url, declared = _celery_broker(health.celery_app)
    else:
        url, namespace, declared = _dramatiq_broker()
    url = health.broker_url or url
    if not url:
        raise ImproperlyConfigured(
            "tasklens cannot tell the broker's URL: set DRAMATIQ_BROKER['OPTIONS']['url'], the"
            " Celery app's broker_url or TASKLENS['HEALTH']['BROKER_URL']"
        )
    queues = tuple(sorted({*declared, *health.queues}))
    key = (url, queues)
    with _lock:
        reader = _readers.get(key)
        if reader is None:
            from tasklens.brokers import open_broker

            def open_inspector() -> BrokerInspector:
                return open_broker(
                    url,
                    queues=queues,
                    app=health.celery_app,
                    namespace=namespace,
                    management_url=health.management_url,
                    timeout=health.timeout,
                )

            reader = SnapshotReader(
                SharedInspector(open_inspector),
                redacted_url=redact_url(url),
                timeout=health.timeout,
                ttl=health.cache_ttl,
            )
            _readers[key] = reader
    return reader, redact_url(url)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """``{"status": "healthy"|"degraded"|"unhealthy", "queues": [...], "reasons": [...], ...}``:
    200, or 503 when the broker does not answer (with ``?strict=1``, when degraded too)."""
    config = TasklensConfig.tasklens.health
    reader, broker = _reader(config)
    result = reader.result()
    if result.snapshot is None:
        report = unreachable_report(broker, str(result.error))
    else:
        report = assess_health(result.snapshot, config.thresholds, broker=broker)
    strict = request.GET.get("strict", "").lower() in ("1", "true", "yes")
    failing = report.status == UNHEALTHY or (strict and report.status == DEGRADED)
    return JsonResponse(health_body(report).model_dump(mode="json"), status=503 if failing else 200)
