"""The ``OTEL_*`` environment, read once into one settings object.

Everything :func:`tasklens.setup` builds is decided by a :class:`TelemetrySettings`. The
environment is read in one place, :meth:`TelemetrySettings.from_env`; a value that cannot be
parsed is logged once and replaced by its default, so a typo in a deployment never stops a worker
from booting.

Settings that the SDK's own classes read by themselves are left to them: the exporter endpoint,
headers, timeout, compression and certificates (``OTEL_EXPORTER_OTLP_*``) and the batch processor
tuning (``OTEL_BSP_*``, ``OTEL_BLRP_*``).
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_LOGS_EXPORTERS",
    "DEFAULT_METRICS_EXPORTERS",
    "DEFAULT_METRIC_EXPORT_INTERVAL_MS",
    "DEFAULT_METRIC_EXPORT_TIMEOUT_MS",
    "DEFAULT_OTLP_PROTOCOL",
    "DEFAULT_SAMPLER",
    "DEFAULT_TRACES_EXPORTERS",
    "TelemetrySettings",
]

logger = logging.getLogger(__name__)

#: Traces go to an OTLP endpoint unless ``OTEL_TRACES_EXPORTER`` says otherwise.
DEFAULT_TRACES_EXPORTERS: tuple[str, ...] = ("otlp",)
#: Metrics go to an OTLP endpoint unless ``OTEL_METRICS_EXPORTER`` says otherwise.
DEFAULT_METRICS_EXPORTERS: tuple[str, ...] = ("otlp",)
#: Logs go to an OTLP endpoint unless ``OTEL_LOGS_EXPORTER`` says otherwise, as the
#: specification's default says: a run's log lines then sit next to its trace with no extra set-up
#: (``OTEL_LOGS_EXPORTER=none`` turns it off).
DEFAULT_LOGS_EXPORTERS: tuple[str, ...] = ("otlp",)
#: ``OTEL_EXPORTER_OTLP_PROTOCOL`` when unset: OTLP over HTTP with protobuf bodies.
DEFAULT_OTLP_PROTOCOL = "http/protobuf"
#: ``OTEL_TRACES_SAMPLER`` when unset, as in the specification.
DEFAULT_SAMPLER = "parentbased_always_on"
#: Time between two metric exports, in milliseconds (``OTEL_METRIC_EXPORT_INTERVAL``).
DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000.0
#: How long one metric export may take, in milliseconds (``OTEL_METRIC_EXPORT_TIMEOUT``).
DEFAULT_METRIC_EXPORT_TIMEOUT_MS = 30_000.0

#: The signals, as they appear in ``OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL``.
SIGNALS = ("traces", "metrics", "logs")

_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True)
class TelemetrySettings:
    """What the telemetry SDK should be, as the ``OTEL_*`` environment describes it.

    Parameters:
      sdk_disabled(bool): ``OTEL_SDK_DISABLED``: when true, setup does nothing at all.
      otel_service_name(str): ``OTEL_SERVICE_NAME``.
      dramatiq_service_name(str): ``DRAMATIQ_SERVICE_NAME``, the fallback service name.
      resource_attributes(dict): ``OTEL_RESOURCE_ATTRIBUTES``, decoded.
      traces_exporters(tuple): ``OTEL_TRACES_EXPORTER`` names; empty means none.
      metrics_exporters(tuple): ``OTEL_METRICS_EXPORTER`` names; empty means none.
      logs_exporters(tuple): ``OTEL_LOGS_EXPORTER`` names; empty means none.
      otlp_protocols(dict): the OTLP protocol per signal (``traces``, ``metrics``, ``logs``).
      sampler(str): ``OTEL_TRACES_SAMPLER``.
      sampler_arg(str): ``OTEL_TRACES_SAMPLER_ARG``, or None.
      metric_export_interval_ms(float): ``OTEL_METRIC_EXPORT_INTERVAL``, in milliseconds.
      metric_export_timeout_ms(float): ``OTEL_METRIC_EXPORT_TIMEOUT``, in milliseconds.
      exemplar_filter(str): ``OTEL_METRICS_EXEMPLAR_FILTER`` (``always_on``, ``always_off``,
        ``trace_based``), or None when unset: then no exemplars are taken.

    Example:

      >>> TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": "console"}).traces_exporters
      ('console',)
    """

    sdk_disabled: bool = False
    otel_service_name: str | None = None
    dramatiq_service_name: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    traces_exporters: tuple[str, ...] = DEFAULT_TRACES_EXPORTERS
    metrics_exporters: tuple[str, ...] = DEFAULT_METRICS_EXPORTERS
    logs_exporters: tuple[str, ...] = DEFAULT_LOGS_EXPORTERS
    otlp_protocols: Mapping[str, str] = field(
        default_factory=lambda: dict.fromkeys(SIGNALS, DEFAULT_OTLP_PROTOCOL)
    )
    sampler: str = DEFAULT_SAMPLER
    sampler_arg: str | None = None
    metric_export_interval_ms: float = DEFAULT_METRIC_EXPORT_INTERVAL_MS
    metric_export_timeout_ms: float = DEFAULT_METRIC_EXPORT_TIMEOUT_MS
    exemplar_filter: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelemetrySettings:
        """Read the settings from ``environ`` (``os.environ`` when None)."""
        env = os.environ if environ is None else environ
        protocol = _text(env, "OTEL_EXPORTER_OTLP_PROTOCOL") or DEFAULT_OTLP_PROTOCOL
        return cls(
            sdk_disabled=(_text(env, "OTEL_SDK_DISABLED") or "").lower() in _TRUE,
            otel_service_name=_text(env, "OTEL_SERVICE_NAME"),
            dramatiq_service_name=_text(env, "DRAMATIQ_SERVICE_NAME"),
            resource_attributes=parse_resource_attributes(_text(env, "OTEL_RESOURCE_ATTRIBUTES") or ""),
            traces_exporters=_exporters(env, "OTEL_TRACES_EXPORTER", DEFAULT_TRACES_EXPORTERS),
            metrics_exporters=_exporters(env, "OTEL_METRICS_EXPORTER", DEFAULT_METRICS_EXPORTERS),
            logs_exporters=_exporters(env, "OTEL_LOGS_EXPORTER", DEFAULT_LOGS_EXPORTERS),
            otlp_protocols={
                signal: _text(env, f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or protocol
                for signal in SIGNALS
            },
            sampler=(_text(env, "OTEL_TRACES_SAMPLER") or DEFAULT_SAMPLER).lower(),
            sampler_arg=_text(env, "OTEL_TRACES_SAMPLER_ARG"),
            metric_export_interval_ms=_milliseconds(
                env, "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_METRIC_EXPORT_INTERVAL_MS
            ),
            metric_export_timeout_ms=_milliseconds(
                env, "OTEL_METRIC_EXPORT_TIMEOUT", DEFAULT_METRIC_EXPORT_TIMEOUT_MS
            ),
            exemplar_filter=(_text(env, "OTEL_METRICS_EXEMPLAR_FILTER") or "").lower() or None,
        )

    def service_name(self, default: str | None = None) -> str | None:
        """The ``service.name`` to report, or None to let the SDK pick its own default.

        The environment describes the deployment, so it wins over the code: ``OTEL_SERVICE_NAME``,
        then ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, then ``DRAMATIQ_SERVICE_NAME``, and
        only then ``default`` (the ``service_name`` given to :func:`tasklens.setup`).
        """
        return (
            self.otel_service_name
            or self.resource_attributes.get("service.name")
            or self.dramatiq_service_name
            or default
        )


def parse_resource_attributes(value: str) -> dict[str, str]:
    """Decode ``OTEL_RESOURCE_ATTRIBUTES``: ``key1=value1,key2=value2``, values percent-encoded.

    Parameters:
      value(str): the raw variable. Malformed pairs are logged and skipped.
    """
    attributes: dict[str, str] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            logger.warning("Ignoring malformed OTEL_RESOURCE_ATTRIBUTES entry %r.", pair)
            continue
        attributes[key.strip()] = urllib.parse.unquote(raw.strip())
    return attributes


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _exporters(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = _text(env, name)
    if value is None:
        return default
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    return () if "none" in names else names


def _milliseconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        logger.warning("Ignoring %s=%r: expected a positive number of milliseconds.", name, value)
        return default
    return number
