"""The instrumentation variants a run compares, each installed in a fresh trial process.

A variant says which ``OTEL_*`` environment its trial process gets (the runner sets it before
the process starts) and how it instruments Dramatiq once inside: before the broker exists
(:meth:`Variant.prepare`), on the broker before any actor is declared (:meth:`Variant.attach`),
and once the actors are declared (:meth:`Variant.boot`, where the dramatiq CLI emits
``process_boot``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

import dramatiq

from benchmarks.sdk import SERVICE_NAME, install_sdk, sdk_resource

__all__ = ["BASELINE", "DEFAULT_VARIANTS", "VARIANTS", "Endpoints", "Variant", "get_variant"]


@dataclass(frozen=True)
class Endpoints:
    """Where exporters send: the live sink, and a port nothing listens on."""

    sink: str
    unreachable: str


@dataclass
class Variant:
    """One way to run Dramatiq: uninstrumented, a peer, or a tasklens configuration.

    Parameters:
      name(str): Short identifier, used on the command line and in results.
      label(str): What the tables and the chart call it.
      group(str): ``baseline``, ``peer``, ``tasklens``, ``breakdown`` or ``experiment`` (opt-in).
    """

    name: str
    label: str
    group: str
    _cleanup: list[str] = field(default_factory=list, repr=False)

    @property
    def messages_scale(self) -> float:
        """The fraction of a run's messages this variant's trials send (the breakdown's is half)."""
        return 0.5 if self.group == "breakdown" else 1.0

    @property
    def exports_reach_sink(self) -> bool:
        """False when every export is bound to fail, so that waiting for a flush is pointless."""
        return True

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        """``OTEL_*`` (and other) variables for the trial process; every other ``OTEL_*`` is unset."""
        return {}

    def prepare(self, endpoints: Endpoints) -> None:
        """Install what must exist before the broker is created."""

    def attach(self, broker: dramatiq.Broker) -> None:
        """Add middleware to ``broker``; called before any actor is declared."""

    def boot(self, broker: dramatiq.Broker) -> None:
        """Called once the actors are declared, before any message is sent."""

    def close(self) -> None:
        """Remove files the variant created."""
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)


class Uninstrumented(Variant):
    """Dramatiq with its default middleware only: the limit every ratio is taken against."""


class PrometheusPeer(Variant):
    """Dramatiq's own ``Prometheus`` middleware (metrics only), set up as the dramatiq CLI does."""

    def prepare(self, endpoints: Endpoints) -> None:
        # The middleware writes multiprocess files under a directory fixed at import; give this
        # trial its own so that it neither reads nor clobbers anyone else's.
        path = tempfile.mkdtemp(prefix="tlbench-prom-")
        self._cleanup.append(path)
        os.environ["dramatiq_prom_db"] = path  # noqa: SIM112 (the name Dramatiq reads)

    def attach(self, broker: dramatiq.Broker) -> None:
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())

    def boot(self, broker: dramatiq.Broker) -> None:
        broker.emit_after("process_boot")


class CommunityInstrumentorPeer(Variant):
    """``opentelemetry-instrumentor-dramatiq`` with the stock SDK pipeline (tracing peer)."""

    def prepare(self, endpoints: Endpoints) -> None:
        from opentelemetry_instrumentor_dramatiq import DramatiqInstrumentor as CommunityInstrumentor

        providers = install_sdk(endpoints.sink)
        CommunityInstrumentor().instrument(
            tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
        )


class ReferenceMiddlewareVariant(Variant):
    """A hand-rolled SDK middleware (traces and two metrics); opt-in yardstick, not tasklens."""

    def prepare(self, endpoints: Endpoints) -> None:
        install_sdk(endpoints.sink)

    def attach(self, broker: dramatiq.Broker) -> None:
        from benchmarks.reference_middleware import ReferenceMiddleware

        broker.add_middleware(ReferenceMiddleware(), before=dramatiq.middleware.AgeLimit)


@dataclass
class Tasklens(Variant):
    """tasklens as a user runs it: ``tasklens.setup()`` configured by ``OTEL_*`` variables.

    Parameters:
      traces(bool): Whether spans are exported (``OTEL_TRACES_EXPORTER``).
      sample_ratio(float | None): ``parentbased_traceidratio`` argument, or ``None`` for 100%.
      reachable(bool): ``False`` points every exporter at a port that refuses connections.
      extra(dict[str, str]): More environment, such as tasklens's own options.
    """

    traces: bool = True
    sample_ratio: float | None = None
    reachable: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def exports_reach_sink(self) -> bool:
        return self.reachable

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        env = {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints.sink if self.reachable else endpoints.unreachable,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp" if self.traces else "none",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
        }
        if self.sample_ratio is not None:
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = str(self.sample_ratio)
        env.update(self.extra)
        return env

    def prepare(self, endpoints: Endpoints) -> None:
        import tasklens
        from tasklens.dramatiq import DramatiqInstrumentor

        tasklens.setup(service_name=SERVICE_NAME)
        instrumentor = DramatiqInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


class TasklensOnStockSdk(Variant):
    """tasklens's middleware under the stock SDK set-up of :mod:`benchmarks.sdk`, as the peers run.

    ``DramatiqInstrumentor().instrument(tracer_provider=..., meter_provider=...)`` with the
    providers a user writes by hand (``BatchSpanProcessor`` + the SDK's OTLP/HTTP exporter, periodic
    OTLP/HTTP metric reader): no ``tasklens.setup()``, so none of its encoder, its exemplar filter,
    its histogram export or its process metrics.

    Parameters:
      traces(bool): False gives the API's no-op tracer (metrics only).
      sample_ratio(float | None): ``ParentBased(TraceIdRatioBased(ratio))``, or None for 100%.
    """

    def __init__(
        self, name: str, label: str, group: str, *, traces: bool = True, sample_ratio: float | None = None
    ):
        super().__init__(name, label, group)
        self.traces = traces
        self.sample_ratio = sample_ratio

    def prepare(self, endpoints: Endpoints) -> None:
        from opentelemetry import trace

        from tasklens.dramatiq import DramatiqInstrumentor

        providers = install_sdk(endpoints.sink, traces=self.traces, sample_ratio=self.sample_ratio)
        tracer_provider = providers.tracer_provider or trace.NoOpTracerProvider()
        DramatiqInstrumentor().instrument(
            tracer_provider=tracer_provider, meter_provider=providers.meter_provider
        )


class _DroppingSpanExporter:
    """A span exporter that accepts every batch and keeps nothing (no encoding, no network)."""

    def export(self, spans: object) -> object:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


class TasklensBreakdown(Variant):
    """tasklens's middleware with parts of the SDK pipeline taken away, to see where time goes.

    Parameters:
      spans(str): ``noop`` (the API's no-op tracer), ``sdk`` (SDK spans, no span processor),
        ``drop`` (``BatchSpanProcessor`` with an exporter that drops every batch) or ``otlp``
        (``BatchSpanProcessor`` + the SDK's OTLP/HTTP exporter). The meter is always the API's no-op.
    """

    def __init__(self, name: str, label: str, group: str, *, spans: str):
        super().__init__(name, label, group)
        self.spans = spans

    def prepare(self, endpoints: Endpoints) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from tasklens.dramatiq import DramatiqInstrumentor

        tracer_provider: trace.TracerProvider
        if self.spans == "noop":
            tracer_provider = trace.NoOpTracerProvider()
        else:
            sdk_provider = TracerProvider(resource=sdk_resource())
            if self.spans == "drop":
                sdk_provider.add_span_processor(BatchSpanProcessor(_DroppingSpanExporter()))  # type: ignore[arg-type]
            elif self.spans == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                sdk_provider.add_span_processor(
                    BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoints.sink}/v1/traces"))
                )
            trace.set_tracer_provider(sdk_provider)
            tracer_provider = sdk_provider
        DramatiqInstrumentor().instrument(
            tracer_provider=tracer_provider, meter_provider=metrics.NoOpMeterProvider()
        )


#: Every variant, in the order a round runs them; the first is the baseline.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Uninstrumented("uninstrumented", "uninstrumented", "baseline"),
        PrometheusPeer("prometheus", "Dramatiq Prometheus middleware (peer, metrics)", "peer"),
        CommunityInstrumentorPeer(
            "otel-dramatiq", "opentelemetry-instrumentor-dramatiq (peer, traces)", "peer"
        ),
        TasklensOnStockSdk("tasklens-sdk", "tasklens on the stock SDK, traces+metrics, 100%", "tasklens"),
        TasklensOnStockSdk(
            "tasklens-sdk-sampled", "tasklens on the stock SDK, 10% sampled", "tasklens", sample_ratio=0.1
        ),
        TasklensOnStockSdk(
            "tasklens-sdk-metrics",
            "tasklens on the stock SDK, metrics only (no-op tracer)",
            "tasklens",
            traces=False,
        ),
        Tasklens("tasklens", "tasklens.setup() traces+metrics, 100%", "tasklens"),
        Tasklens("tasklens-sampled", "tasklens.setup() 10% sampled", "tasklens", sample_ratio=0.1),
        Tasklens("tasklens-metrics", "tasklens.setup() metrics only", "tasklens", traces=False),
        Tasklens(
            "tasklens-unreachable", "tasklens.setup() 100%, endpoint unreachable", "tasklens", reachable=False
        ),
        TasklensBreakdown(
            "breakdown-noop",
            "breakdown: no-op tracer, no-op meter (tasklens's own code)",
            "breakdown",
            spans="noop",
        ),
        TasklensBreakdown(
            "breakdown-spans",
            "breakdown: SDK spans, no span processor, no-op meter",
            "breakdown",
            spans="sdk",
        ),
        TasklensBreakdown(
            "breakdown-batch",
            "breakdown: SDK spans, BatchSpanProcessor dropping, no-op meter",
            "breakdown",
            spans="drop",
        ),
        TasklensBreakdown(
            "breakdown-otlp",
            "breakdown: SDK spans over OTLP/HTTP (stock), no-op meter",
            "breakdown",
            spans="otlp",
        ),
        Tasklens(
            "tasklens-stock-exporter",
            "tasklens.setup() 100%, SDK's own span exporter",
            "experiment",
            extra={"OTEL_TRACES_EXPORTER": "otlp_proto_http"},
        ),
        ReferenceMiddlewareVariant(
            "reference", "hand-rolled SDK middleware (yardstick, traces+metrics)", "experiment"
        ),
    )
}

#: The name of the variant every ratio is taken against.
BASELINE = "uninstrumented"

#: What ``python -m benchmarks`` runs when not told otherwise (experiments are opt-in).
DEFAULT_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.group != "experiment")


def get_variant(name: str) -> Variant:
    """The variant called ``name``; raises ``KeyError`` listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
