"""The instrumentation variants the Celery tables compare, each installed in fresh processes.

A variant instruments two processes of a trial: the producer (the trial process, which sends
the tasks) and the ``celery worker`` it starts (through :mod:`benchmarks.celery.worker_app`,
which every process of the worker imports). The runner sets the variant's ``OTEL_*``
environment before the trial process starts; the worker inherits it.

The peer and ``tasklens-stock-sdk`` follow the contrib instrumentation's own instructions for
prefork workers: the SDK and the instrumentation are set up in each pool process, on
``worker_process_init``, and in the worker's only process on other pools. tasklens variants call
``tasklens.setup()`` once at import, as tasklens's README says, and rely on it for the forks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.sdk import SERVICE_NAME, install_sdk
from benchmarks.variants import Endpoints

__all__ = ["BASELINE", "DEFAULT_VARIANTS", "VARIANTS", "CeleryVariant", "get_variant"]

#: The pool whose processes are forked after the app module is imported.
PREFORK = "prefork"


@dataclass
class CeleryVariant:
    """One way to run Celery: uninstrumented, the contrib peer, or a tasklens configuration.

    Parameters:
      name(str): Short identifier, used on the command line and in results.
      label(str): What the tables call it.
      group(str): ``baseline``, ``peer`` or ``tasklens``.
    """

    name: str
    label: str
    group: str

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        """``OTEL_*`` variables for the trial and its worker; every other ``OTEL_*`` is unset."""
        return {}

    def instrument_producer(self, endpoints: Endpoints) -> None:
        """Instrument the trial process, before its app exists."""

    def instrument_worker(self, endpoints: Endpoints, pool: str) -> None:
        """Instrument a worker running ``pool``; called when its app module is imported."""


class Uninstrumented(CeleryVariant):
    """Celery as it comes: the limit every ratio is taken against."""


@dataclass
class StockSdk(CeleryVariant):
    """An instrumentor under the stock SDK set-up of :mod:`benchmarks.sdk`, as its docs set it up.

    Parameters:
      instrumentor(str): ``module:Class`` of the ``BaseInstrumentor`` to use.
    """

    instrumentor: str = ""

    def _install(self, endpoints: Endpoints) -> None:
        import importlib

        module_name, class_name = self.instrumentor.split(":")
        providers = install_sdk(endpoints.sink)
        getattr(importlib.import_module(module_name), class_name)().instrument(
            tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
        )

    def instrument_producer(self, endpoints: Endpoints) -> None:
        self._install(endpoints)

    def instrument_worker(self, endpoints: Endpoints, pool: str) -> None:
        if pool != PREFORK:
            self._install(endpoints)
            return
        from celery.signals import worker_process_init

        def install_in_pool_process(**_: Any) -> None:
            self._install(endpoints)

        worker_process_init.connect(install_in_pool_process, weak=False)


@dataclass
class Tasklens(CeleryVariant):
    """tasklens as a user runs it: ``tasklens.setup()`` configured by ``OTEL_*`` variables.

    Parameters:
      traces(bool): Whether spans are exported (``OTEL_TRACES_EXPORTER``).
      extra(dict[str, str]): More environment.
    """

    traces: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        env = {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints.sink,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp" if self.traces else "none",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
        }
        env.update(self.extra)
        return env

    def instrument_producer(self, endpoints: Endpoints) -> None:
        import tasklens

        tasklens.setup(service_name=SERVICE_NAME)

    def instrument_worker(self, endpoints: Endpoints, pool: str) -> None:
        import tasklens

        tasklens.setup(service_name=SERVICE_NAME)


#: Every variant, in the order a round runs them; the first is the baseline.
VARIANTS: dict[str, CeleryVariant] = {
    v.name: v
    for v in (
        Uninstrumented("uninstrumented", "uninstrumented", "baseline"),
        StockSdk(
            "otel-celery",
            "opentelemetry-instrumentation-celery (peer, traces)",
            "peer",
            instrumentor="opentelemetry.instrumentation.celery:CeleryInstrumentor",
        ),
        Tasklens("tasklens", "tasklens traces+metrics, 100%", "tasklens"),
        Tasklens("tasklens-metrics", "tasklens metrics only", "tasklens", traces=False),
        StockSdk(
            "tasklens-stock-sdk",
            "tasklens 100%, the peer's stock SDK set-up",
            "tasklens",
            instrumentor="tasklens.celery:CeleryInstrumentor",
        ),
    )
}

#: The name of the variant every ratio is taken against.
BASELINE = "uninstrumented"

#: The peer the targets compare tasklens with.
PEER = "otel-celery"

#: What a run covers when not told otherwise.
DEFAULT_VARIANTS = tuple(VARIANTS)


def get_variant(name: str) -> CeleryVariant:
    """The variant called ``name``; raises ``KeyError`` listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown Celery variant {name!r}; known: {', '.join(VARIANTS)}") from None
