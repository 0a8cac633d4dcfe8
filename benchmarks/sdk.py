"""The OpenTelemetry SDK set-up shared by the variants that do not bring their own.

The tracing peer and the reference middleware get exactly what a user would write by hand: a
``TracerProvider`` with a ``BatchSpanProcessor`` and an OTLP/HTTP span exporter, and a
``MeterProvider`` with a periodic OTLP/HTTP metric reader, all with their default settings.
tasklens variants do not use this module: they call ``tasklens.setup()`` and read ``OTEL_*``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

__all__ = ["Providers", "flush_global_providers", "install_sdk", "sdk_resource"]

#: The ``service.name`` every instrumented trial reports.
SERVICE_NAME = "tlbench-worker"


@dataclass
class Providers:
    """The providers :func:`install_sdk` made; also set as the global ones."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None


def sdk_resource() -> Resource:
    """The resource of every hand-built SDK set-up."""
    return Resource.create({"service.name": SERVICE_NAME})


def install_sdk(
    endpoint: str, *, traces: bool = True, metrics_enabled: bool = True, sample_ratio: float | None = None
) -> Providers:
    """Set global SDK providers exporting over OTLP/HTTP to ``endpoint`` (a base URL).

    ``sample_ratio`` gives the tracer provider ``ParentBased(TraceIdRatioBased(sample_ratio))``
    instead of the default (always on).
    """
    resource = sdk_resource()
    tracer_provider = meter_provider = None
    if traces:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if sample_ratio is None:
            tracer_provider = TracerProvider(resource=resource)
        else:
            from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

            tracer_provider = TracerProvider(resource=resource, sampler=ParentBasedTraceIdRatio(sample_ratio))
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
        trace.set_tracer_provider(tracer_provider)
    if metrics_enabled:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"))
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
    return Providers(tracer_provider=tracer_provider, meter_provider=meter_provider)


def flush_global_providers(timeout_millis: int) -> None:
    """Export what the global providers hold, whoever installed them; never raises."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is None:
            continue
        # An unreachable endpoint is one of the variants: its flush may fail, the trial goes on.
        with contextlib.suppress(Exception):
            force_flush(timeout_millis=timeout_millis)
