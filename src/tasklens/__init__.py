"""tasklens: OpenTelemetry-native observability for Python task queues (Dramatiq, Celery).

One call configures a process::

    import tasklens
    tasklens.setup(service_name="billing-worker")

or none at all: ``opentelemetry-instrument dramatiq app``. ``tasklens.dramatiq`` and
``tasklens.celery`` hold the instrumentation itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasklens.telemetry import Telemetry

__all__ = ["setup"]


def setup(service_name: str | None = None, **options: Any) -> Telemetry:
    """Configure OpenTelemetry for this process and instrument the installed task libraries;
    see :func:`tasklens.libraries.setup`.

    The SDK is imported here, on first use, so that ``import tasklens`` stays cheap.

    Parameters:
      service_name(str): the ``service.name`` to use when the environment names none.
      **options: ``process_metrics``, ``log_correlation``, ``worker_health``, ``use_links``,
        ``capture_args``.
    """
    from tasklens.libraries import setup as configure

    return configure(service_name, **options)
