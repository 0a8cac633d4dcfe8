"""Resource, sampler and exporters built from the settings (no global state involved)."""

from __future__ import annotations

import pytest
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource

from tasklens.telemetry.providers import (
    build_logger_provider,
    build_meter_provider,
    build_resource,
    build_sampler,
    build_tracer_provider,
)
from tasklens.telemetry.settings import TelemetrySettings


def settings(**env: str) -> TelemetrySettings:
    return TelemetrySettings.from_env(env)


def test_resource_has_service_name_attributes_and_an_instance_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    resource = build_resource(
        settings(DRAMATIQ_SERVICE_NAME="billing", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging"),
        service_name="ignored",
    )
    assert resource.attributes[SERVICE_NAME] == "billing"
    assert resource.attributes["deployment.environment"] == "staging"
    assert len(str(resource.attributes[SERVICE_INSTANCE_ID])) == 36


def test_resource_uses_the_argument_when_the_environment_names_no_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert build_resource(settings(), service_name="billing").attributes[SERVICE_NAME] == "billing"


@pytest.mark.parametrize(
    ("name", "arg", "description"),
    [
        ("always_on", None, "AlwaysOnSampler"),
        ("always_off", None, "AlwaysOffSampler"),
        ("parentbased_always_on", None, "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_always_off", None, "ParentBased{root:AlwaysOffSampler"),
        ("traceidratio", "0.5", "TraceIdRatioBased{0.5}"),
        ("parentbased_traceidratio", "0.1", "ParentBased{root:TraceIdRatioBased{0.1}"),
        ("traceidratio", "2", "TraceIdRatioBased{1.0}"),
        ("no_such_sampler", None, "ParentBased{root:AlwaysOnSampler"),
    ],
)
def test_sampler_from_the_environment(name: str, arg: str | None, description: str) -> None:
    env = {"OTEL_TRACES_SAMPLER": name}
    if arg is not None:
        env["OTEL_TRACES_SAMPLER_ARG"] = arg
    assert build_sampler(TelemetrySettings.from_env(env)).get_description().startswith(description)


def test_no_exporter_still_makes_real_spans_but_records_none() -> None:
    provider = build_tracer_provider(settings(OTEL_TRACES_EXPORTER="none"), build_resource(settings()))
    with provider.get_tracer("test").start_as_current_span("quiet") as span:
        assert span.get_span_context().is_valid
        assert not span.is_recording()
        carrier: dict[str, str] = {}
        inject(carrier)
        flags = int(carrier["traceparent"].rsplit("-", 1)[1], 16)
        assert flags & 0x01 == 0  # the context travels, marked not sampled
    provider.shutdown()


def test_logs_are_exported_unless_turned_off() -> None:
    assert build_logger_provider(settings(OTEL_LOGS_EXPORTER="none"), build_resource(settings())) is None
    for value in (None, "console"):
        variables = {} if value is None else {"OTEL_LOGS_EXPORTER": value}
        provider = build_logger_provider(settings(**variables), build_resource(settings()))
        assert provider is not None
        provider.shutdown()


def test_an_unknown_exporter_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    provider = build_tracer_provider(
        settings(OTEL_TRACES_EXPORTER="no_such_exporter"), build_resource(settings())
    )
    with provider.get_tracer("test").start_as_current_span("kept") as span:
        assert span.get_span_context().is_valid
    provider.shutdown()
    assert "Unknown traces exporter 'no_such_exporter'" in caplog.text


def test_grpc_without_the_grpc_exporter_falls_back_to_http(caplog: pytest.LogCaptureFixture) -> None:
    provider = build_tracer_provider(
        settings(OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9"),
        build_resource(settings()),
    )
    provider.shutdown()
    assert "using OTLP over HTTP" in caplog.text


def _exemplar_filter(provider: object) -> str:
    return type(provider._sdk_config.exemplar_filter).__name__  # type: ignore[attr-defined]


def test_setup_meter_provider_takes_exemplars_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_METRICS_EXEMPLAR_FILTER", raising=False)
    provider = build_meter_provider(
        TelemetrySettings.from_env({"OTEL_METRICS_EXPORTER": "none"}), Resource.create()
    )
    assert _exemplar_filter(provider) == "AlwaysOffExemplarFilter"
    provider.shutdown(timeout_millis=100)

    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    provider = build_meter_provider(TelemetrySettings.from_env(), Resource.create())
    assert _exemplar_filter(provider) == "TraceBasedExemplarFilter"
    provider.shutdown(timeout_millis=100)
