"""The OTEL_* environment as :class:`TelemetrySettings` reads it."""

from __future__ import annotations

import pytest

from tasklens.telemetry.settings import TelemetrySettings


def test_defaults_export_traces_metrics_and_logs_over_otlp_http() -> None:
    settings = TelemetrySettings.from_env({})
    assert settings.traces_exporters == ("otlp",)
    assert settings.metrics_exporters == ("otlp",)
    # The specification's default: log lines reach the same endpoint as the spans.
    assert settings.logs_exporters == ("otlp",)
    assert TelemetrySettings.from_env({"OTEL_LOGS_EXPORTER": "none"}).logs_exporters == ()
    assert set(settings.otlp_protocols.values()) == {"http/protobuf"}
    assert settings.sampler == "parentbased_always_on"
    assert settings.metric_export_interval_ms == 60_000
    assert not settings.sdk_disabled


def test_exporter_lists_and_none() -> None:
    settings = TelemetrySettings.from_env(
        {
            "OTEL_TRACES_EXPORTER": "console, OTLP",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "otlp",
        }
    )
    assert settings.traces_exporters == ("console", "otlp")
    assert settings.metrics_exporters == ()
    assert settings.logs_exporters == ("otlp",)


def test_protocol_per_signal_overrides_the_general_one() -> None:
    settings = TelemetrySettings.from_env(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}
    )
    assert settings.otlp_protocols == {"traces": "grpc", "metrics": "grpc", "logs": "http/protobuf"}


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_sdk_disabled(value: str) -> None:
    assert TelemetrySettings.from_env({"OTEL_SDK_DISABLED": value}).sdk_disabled


def test_sdk_not_disabled_by_false() -> None:
    assert not TelemetrySettings.from_env({"OTEL_SDK_DISABLED": "false"}).sdk_disabled


def test_sampler_and_interval() -> None:
    settings = TelemetrySettings.from_env(
        {
            "OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        }
    )
    assert settings.sampler == "parentbased_traceidratio"
    assert settings.sampler_arg == "0.25"
    assert settings.metric_export_interval_ms == 500


@pytest.mark.parametrize("value", ["soon", "-5", "0"])
def test_a_bad_interval_falls_back_to_the_default(value: str) -> None:
    assert (
        TelemetrySettings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": value}).metric_export_interval_ms == 60_000
    )


def test_resource_attributes_are_percent_decoded_and_malformed_pairs_skipped() -> None:
    settings = TelemetrySettings.from_env(
        {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%2Cb, broken ,=x,k8s.pod.name=w-1"}
    )
    assert settings.resource_attributes == {
        "deployment.environment": "prod",
        "team": "a,b",
        "k8s.pod.name": "w-1",
    }


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        ({"OTEL_SERVICE_NAME": "otel", "DRAMATIQ_SERVICE_NAME": "dramatiq"}, "code", "otel"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=attrs", "DRAMATIQ_SERVICE_NAME": "dq"}, "code", "attrs"),
        ({"DRAMATIQ_SERVICE_NAME": "dramatiq"}, "code", "dramatiq"),
        ({}, "code", "code"),
        ({}, None, None),
    ],
)
def test_service_name_precedence(env: dict[str, str], argument: str | None, expected: str | None) -> None:
    assert TelemetrySettings.from_env(env).service_name(argument) == expected
