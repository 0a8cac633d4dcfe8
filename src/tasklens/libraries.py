"""``tasklens.setup()``: the SDK for this process, then every supported task library installed.

The SDK bootstrap (:mod:`tasklens.telemetry`) knows no task library; this step, above both,
instruments each library of :data:`LIBRARIES` that can be imported, with the same options.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from typing import Any

from tasklens.telemetry import Telemetry
from tasklens.telemetry import setup as setup_sdk
from tasklens.telemetry.bootstrap import attempt
from tasklens.worker_health import WorkerHealthSettings, enable_worker_health

__all__ = ["INSTRUMENTATION_OPTIONS", "LIBRARIES", "Library", "after_auto_instrumentation", "setup"]

#: Keyword options of :func:`setup` that are passed on to every library's instrumentor.
INSTRUMENTATION_OPTIONS = frozenset({"use_links", "capture_args"})


@dataclasses.dataclass(frozen=True)
class Library:
    """A task library tasklens instruments.

    Parameters:
      name(str): The name in ``Telemetry.instrumented`` and in log lines.
      module(str): The library's top-level module; instrumented only when it can be imported.
      instrumentor(str): ``module:Class`` of its ``BaseInstrumentor``.
      after_auto_instrumentation(str): ``module:function`` to call once ``opentelemetry-instrument``
        has run every instrumentor, when this library's instrumentor was loaded.
    """

    name: str
    module: str
    instrumentor: str
    after_auto_instrumentation: str | None = None

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def instrument(self, telemetry: Telemetry, options: dict[str, Any]) -> bool:
        """Instrument the library; False when it is absent or already instrumented elsewhere."""
        if not self.installed():
            return False
        module_name, class_name = self.instrumentor.split(":")
        instrumentor = getattr(importlib.import_module(module_name), class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:  # opentelemetry-instrument got there first
            return False
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, **options
        )
        return True


#: Every library :func:`setup` instruments when it is installed.
LIBRARIES: tuple[Library, ...] = (
    Library("dramatiq", "dramatiq", "tasklens.dramatiq:DramatiqInstrumentor"),
    Library(
        "celery",
        "celery",
        "tasklens.celery:CeleryInstrumentor",
        after_auto_instrumentation="tasklens.celery.contrib:after_auto_instrumentation",
    ),
)

_instrumented: dict[str, bool] = {}


def setup(
    service_name: str | None = None,
    *,
    process_metrics: bool = True,
    log_correlation: bool = True,
    worker_health: bool | int | WorkerHealthSettings | None = None,
    **options: Any,
) -> Telemetry:
    """Configure the SDK from ``OTEL_*`` (:func:`tasklens.telemetry.setup`), then instrument
    every installed library of :data:`LIBRARIES`. Idempotent; a library that fails to instrument
    is logged and the others carry on.

    Parameters:
      service_name(str): the ``service.name`` to use when the environment names none.
      process_metrics(bool): report this process's CPU, memory, threads and GC.
      log_correlation(bool): trace ids (and task ids inside tasks) on log records.
      worker_health(bool|int|WorkerHealthSettings|None): serve this worker's liveness on
        ``GET /healthz`` (``True``: port 8099, or the port given); ``None`` follows
        ``TASKLENS_WORKER_HEALTH``. See :mod:`tasklens.worker_health`.
      **options: passed to every instrumentor: ``use_links``, ``capture_args``.

    Raises:
      TypeError: for an option not listed above.
    """
    unknown = set(options) - INSTRUMENTATION_OPTIONS
    if unknown:
        raise TypeError(
            f"setup() got unexpected options {sorted(unknown)}; expected {sorted(INSTRUMENTATION_OPTIONS)}"
        )
    telemetry = setup_sdk(service_name, process_metrics=process_metrics, log_correlation=log_correlation)
    # Liveness does not depend on telemetry: it is served with OTEL_SDK_DISABLED too.
    attempt("the worker health endpoint", enable_worker_health, worker_health)
    if not telemetry.enabled:
        return telemetry
    for library in LIBRARIES:
        if library.name in _instrumented:
            continue
        done = attempt(f"{library.name} instrumentation", library.instrument, telemetry, options)
        _instrumented[library.name] = done
        if done:
            telemetry.instrumented = (*telemetry.instrumented, library.name)
    return telemetry


def after_auto_instrumentation() -> None:
    """The ``opentelemetry_post_instrument`` hook: each loaded library's own, if it has one.

    A library whose instrumentor was never imported is skipped without importing anything, so
    that a process which uses only one of them pays nothing for the other.
    """
    for library in LIBRARIES:
        if library.after_auto_instrumentation is None:
            continue
        if library.instrumentor.split(":")[0] not in sys.modules:
            continue
        module_name, function_name = library.after_auto_instrumentation.split(":")
        hook = getattr(importlib.import_module(module_name), function_name)
        attempt(f"{library.name} after auto-instrumentation", hook)
