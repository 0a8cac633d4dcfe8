"""Resource, sampler, exporters and providers, built from :class:`TelemetrySettings`.

Nothing here touches global state: the functions return new objects and
:mod:`tasklens.telemetry.bootstrap` decides what becomes global.

Exporter names (``OTEL_TRACES_EXPORTER`` and friends):

- ``otlp`` (the default for traces and metrics): OTLP over HTTP with protobuf bodies, or gRPC
  when ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` and the gRPC exporter is installed; spans over HTTP
  go through tasklens's cheaper encoder (``tasklens_otlp``, the same bytes for a quarter of the
  CPU on the export thread);
- ``otlp_proto_http``: OTLP over HTTP exactly as the SDK exports it, stock encoder included;
- ``console``: the SDK's console exporters, handy while developing;
- ``none``: nothing;
- any other name: the exporter registered under that name in the SDK's entry point groups
  (``opentelemetry_traces_exporter``, ...), for example ``zipkin_json`` when installed.

An exporter that cannot be built is logged and skipped: telemetry never stops a worker from booting.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from tasklens.telemetry.settings import DEFAULT_SAMPLER, TelemetrySettings

__all__ = [
    "build_logger_provider",
    "build_meter_provider",
    "build_resource",
    "build_sampler",
    "build_tracer_provider",
]

logger = logging.getLogger(__name__)

#: The entry point groups where the SDK and exporter packages register their exporters.
EXPORTER_ENTRY_POINT_GROUPS = {
    "traces": "opentelemetry_traces_exporter",
    "metrics": "opentelemetry_metrics_exporter",
    "logs": "opentelemetry_logs_exporter",
}

#: The variable naming the SDK's resource detectors, and those every process gets: where it runs
#: (``host.name``) and which process it is (``process.pid``), so that each worker process can be
#: told apart by host and pid.
RESOURCE_DETECTORS_ENV = "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"
DEFAULT_RESOURCE_DETECTORS = ("host", "process")
#: Exporter names that mean "OTLP, over whichever protocol the settings ask for".
OTLP_NAMES = frozenset({"otlp", "otlp_proto_http", "otlp_proto_grpc"})


def build_resource(settings: TelemetrySettings, service_name: str | None = None) -> Resource:
    """The resource every signal of this process carries.

    ``OTEL_RESOURCE_ATTRIBUTES`` and the resource detectors configured for the SDK apply, the
    service name follows :meth:`TelemetrySettings.service_name`, and ``service.instance.id`` is a
    new UUID in every process. The SDK's providers give a forked child its own id; an id set in
    ``OTEL_RESOURCE_ATTRIBUTES`` is kept in the process that set it.

    Parameters:
      settings(TelemetrySettings): the environment.
      service_name(str): the service name to use when the environment names none.
    """
    attributes: dict[str, Any] = dict(settings.resource_attributes)
    name = settings.service_name(service_name)
    if name:
        attributes[SERVICE_NAME] = name
    _detect_host_and_process()
    resource = Resource.create(attributes)
    if not resource.attributes.get(SERVICE_INSTANCE_ID):
        # SDKs older than the service-instance detector leave the id out.
        resource = resource.merge(Resource({SERVICE_INSTANCE_ID: str(uuid.uuid4())}))
    return resource


def _detect_host_and_process() -> None:
    """Have the SDK detect ``host.name`` and ``process.pid`` (and the rest of the ``host`` and
    ``process`` detectors, command-line arguments left out) for every resource it builds.

    They are named in ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS`` rather than run here because the
    SDK's providers re-run the process detectors listed there in a forked child: each worker
    process then reports its own pid.
    """
    configured = [name.strip() for name in os.environ.get(RESOURCE_DETECTORS_ENV, "").split(",")]
    wanted = [name for name in configured if name] + [
        name for name in DEFAULT_RESOURCE_DETECTORS if name not in configured
    ]
    os.environ[RESOURCE_DETECTORS_ENV] = ",".join(wanted)


def build_sampler(settings: TelemetrySettings) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` name.

    Unknown names and ratios outside [0, 1] are logged and replaced by the default,
    ``parentbased_always_on``.
    """
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": DEFAULT_ON,
        "parentbased_always_off": DEFAULT_OFF,
    }
    if settings.sampler in fixed:
        return fixed[settings.sampler]
    if settings.sampler in ("traceidratio", "parentbased_traceidratio"):
        ratio = _ratio(settings.sampler_arg)
        root = TraceIdRatioBased(ratio)
        return root if settings.sampler == "traceidratio" else ParentBased(root)
    logger.warning("Unknown OTEL_TRACES_SAMPLER %r, using %s.", settings.sampler, DEFAULT_SAMPLER)
    return DEFAULT_ON


def build_tracer_provider(settings: TelemetrySettings, resource: Resource) -> TracerProvider:
    """A tracer provider with one batch span processor per exporter.

    With no exporter (``OTEL_TRACES_EXPORTER=none``) spans are still made, so that the trace
    context still travels with the messages and the ids still reach the logs, but none is
    recorded: nothing would read their attributes and events, so nobody pays for them.
    """
    exporters = [
        exporter
        for name in settings.traces_exporters
        if (exporter := _build_exporter("traces", name, settings)) is not None
    ]
    sampler = build_sampler(settings) if exporters else ALWAYS_OFF
    provider = TracerProvider(resource=resource, sampler=sampler)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_meter_provider(settings: TelemetrySettings, resource: Resource) -> MeterProvider:
    """A meter provider with a periodic reader per exporter (none: measurements go nowhere).

    The readers export every ``OTEL_METRIC_EXPORT_INTERVAL`` milliseconds; the SDK restarts their
    thread in a forked child. Exemplars are taken only when ``OTEL_METRICS_EXEMPLAR_FILTER`` asks
    for them (each one costs a reservoir pass per measurement inside a span).
    """
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(
            exporter,
            export_interval_millis=settings.metric_export_interval_ms,
            export_timeout_millis=settings.metric_export_timeout_ms,
        )
        for name in settings.metrics_exporters
        if (exporter := _build_exporter("metrics", name, settings)) is not None
    ]
    # The SDK reads OTEL_METRICS_EXEMPLAR_FILTER itself when it is set; unset, exemplars are off.
    exemplar_filter = AlwaysOffExemplarFilter() if settings.exemplar_filter is None else None
    return MeterProvider(resource=resource, metric_readers=readers, exemplar_filter=exemplar_filter)


def build_logger_provider(settings: TelemetrySettings, resource: Resource) -> LoggerProvider | None:
    """A logger provider with a batch processor per exporter, or None when logs are not exported."""
    exporters = [
        exporter
        for name in settings.logs_exporters
        if (exporter := _build_exporter("logs", name, settings)) is not None
    ]
    if not exporters:
        return None
    provider = LoggerProvider(resource=resource)
    for exporter in exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


def _ratio(value: str | None) -> float:
    try:
        ratio = float(value) if value is not None else 1.0
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        logger.warning("Ignoring OTEL_TRACES_SAMPLER_ARG=%r: expected a ratio in [0, 1].", value)
        return 1.0
    return ratio


def _build_exporter(signal: str, name: str, settings: TelemetrySettings) -> Any:
    """One exporter, or None (logged) when it cannot be built."""
    try:
        factory = _exporter_factory(signal, name, settings)
        return factory() if factory is not None else None
    except Exception:
        logger.exception(
            "Could not create the %s exporter %r; %s will not be exported.", signal, name, signal
        )
        return None


def _exporter_factory(signal: str, name: str, settings: TelemetrySettings) -> Callable[[], Any] | None:
    if name in OTLP_NAMES:
        return _otlp_factory(signal, name, settings)
    if name == "console":
        return _CONSOLE_EXPORTERS[signal]
    factory = _entry_point(signal, name)
    if factory is None:
        logger.warning("Unknown %s exporter %r: nothing registers it; %s ignored.", signal, name, name)
    return factory


def _otlp_factory(signal: str, name: str, settings: TelemetrySettings) -> Callable[[], Any] | None:
    protocol = settings.otlp_protocols.get(signal, "http/protobuf")
    wants_grpc = name == "otlp_proto_grpc" or (name == "otlp" and protocol == "grpc")
    if wants_grpc:
        factory = _entry_point(signal, "otlp_proto_grpc")
        if factory is not None:
            return factory
        logger.warning(
            "OTLP over gRPC was asked for %s but opentelemetry-exporter-otlp-proto-grpc is not "
            "installed; using OTLP over HTTP.",
            signal,
        )
    elif protocol not in ("http/protobuf", "grpc"):
        logger.warning("OTLP protocol %r is not supported for %s; using http/protobuf.", protocol, signal)
    if signal == "traces" and name == "otlp":
        return _tasklens_span_exporter
    return _OTLP_HTTP_EXPORTERS[signal]


def _entry_point(signal: str, name: str) -> Callable[[], Any] | None:
    for entry_point in entry_points(group=EXPORTER_ENTRY_POINT_GROUPS[signal], name=name):
        loaded: Callable[[], Any] = entry_point.load()
        return loaded
    return None


def _otlp_http_span_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _tasklens_span_exporter() -> SpanExporter:
    from tasklens.telemetry.span_exporter import FastOTLPSpanExporter

    return FastOTLPSpanExporter()


def _otlp_http_metric_exporter() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _otlp_http_log_exporter() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter()


_OTLP_HTTP_EXPORTERS: dict[str, Callable[[], Any]] = {
    "traces": _otlp_http_span_exporter,
    "metrics": _otlp_http_metric_exporter,
    "logs": _otlp_http_log_exporter,
}

_CONSOLE_EXPORTERS: dict[str, Callable[[], Any]] = {
    "traces": ConsoleSpanExporter,
    "metrics": ConsoleMetricExporter,
    "logs": ConsoleLogRecordExporter,
}
