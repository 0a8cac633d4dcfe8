"""deploy/compose: the Compose file is valid against the Compose specification's schema, and the
configurations it mounts (Prometheus, the Collector, Tempo, Grafana provisioning) exist, load
where a checker is at hand (promtool), and refer to each other correctly.

Docker cannot run on the test machines, so the stack is never started here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import DEPLOY
from tests.monitor.processes import SUBPROCESS_TIMEOUT, require_program

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
#: The services the stack must have.
SERVICES = {"redis", "worker", "producer", "monitor", "otel-collector", "prometheus", "tempo", "grafana"}
#: Component types of the Collector configuration, all in the otelcol-contrib distribution.
COLLECTOR_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "transform", "batch"},
    "exporters": {"otlp", "prometheus"},
    "extensions": {"health_check"},
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(COMPOSE_FILE)
    return document


def _mounts(service: str) -> dict[str, Path]:
    """The service's bind mounts: container path -> the repository file or folder."""
    mounts = {}
    for volume in _compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def _mounted(service: str, container_path: str) -> Path:
    for target, source in _mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target) :].lstrip("/") if source.is_dir() else source
    raise AssertionError(f"{service} does not mount {container_path}")


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    checked = _check_compose(COMPOSE_FILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_rejects_a_misspelt_service_key(tmp_path: Path) -> None:
    document = _compose()
    document["services"]["worker"]["comand"] = document["services"]["worker"].pop("command")
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(document))
    checked = _check_compose(broken)
    assert checked.returncode != 0
    assert "comand" in checked.stdout + checked.stderr


def test_the_stack_has_every_service_and_every_file_it_mounts_or_builds_from() -> None:
    compose = _compose()
    assert set(compose["services"]) == SERVICES
    for name in compose["services"]:
        for target, source in _mounts(name).items():
            assert source.exists(), f"{name} mounts {source} at {target}"
    build = compose["services"]["worker"]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), f"{dockerfile.name}: {line}"


def test_prometheus_loads_its_config_and_the_tasklens_rules(tmp_path: Path) -> None:
    config = _yaml(_mounted("prometheus", "/etc/prometheus/prometheus.yml"))
    rules = [_mounted("prometheus", path) for path in config["rule_files"]]
    assert [path.name for path in rules] == ["tasklens-rules.yml"]
    assert rules[0] == (DEPLOY / "prometheus" / "tasklens-rules.yml").resolve()
    local = dict(config, rule_files=[str(path) for path in rules])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local))
    checked = subprocess.run(
        [require_program("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


def test_prometheus_scrapes_the_monitor_and_the_collector_where_they_listen() -> None:
    config = _yaml(_mounted("prometheus", "/etc/prometheus/prometheus.yml"))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    monitor_port = next(
        arg.split("=")[1] for arg in _compose()["services"]["monitor"]["command"] if arg.startswith("--port=")
    )
    assert targets["tasklens-monitor"] == [f"monitor:{monitor_port}"]
    collector = _yaml(_mounted("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    exporter_port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert targets["otel-collector"] == [f"otel-collector:{exporter_port}"]


def test_the_collector_pipelines_use_only_components_it_defines() -> None:
    collector = _yaml(_mounted("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    used: dict[str, set[str]] = {kind: set() for kind in COLLECTOR_COMPONENTS}
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] and pipeline["exporters"], name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"pipeline {name} uses undefined {kind[:-1]} {component}"
                used[kind].add(component)
    used["extensions"] = set(collector["service"].get("extensions", []))
    for kind, known in COLLECTOR_COMPONENTS.items():
        defined = set(collector.get(kind) or {})
        assert defined == used[kind], f"{kind}: defined {sorted(defined)}, used {sorted(used[kind])}"
        assert {component.split("/")[0] for component in defined} <= known, kind


def test_the_collector_labels_metrics_as_the_monitor_does_and_sends_traces_to_tempo() -> None:
    collector = _yaml(_mounted("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    prometheus = collector["exporters"]["prometheus"]
    assert prometheus["resource_to_telemetry_conversion"] == {"enabled": True}
    (statement,) = collector["processors"]["transform/prometheus-labels"]["metric_statements"][0][
        "statements"
    ]
    assert "service.name" in statement and "service.instance.id" in statement
    tempo_host, tempo_port = collector["exporters"]["otlp/tempo"]["endpoint"].split(":")
    assert tempo_host in _compose()["services"]
    tempo = _yaml(_mounted("tempo", "/etc/tempo/tempo.yaml"))
    grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc.rsplit(":", 1)[1] == tempo_port


def test_the_workers_export_to_the_collector_over_otlp_http() -> None:
    compose = _compose()
    collector = _yaml(_mounted("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    http_port = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    for name in ("worker", "producer"):
        environment = compose["services"][name]["environment"]
        endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (endpoint.hostname, str(endpoint.port)) == ("otel-collector", http_port), name
        assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


def test_grafana_is_provisioned_with_the_data_sources_and_dashboards_the_dashboards_use() -> None:
    datasources = _yaml(_mounted("grafana", "/etc/grafana/provisioning/datasources/datasources.yaml"))
    types = {source["type"] for source in datasources["datasources"]}
    dashboards = DEPLOY / "grafana" / "dashboards"
    wanted = {
        variable["query"]
        for path in dashboards.glob("*.json")
        for variable in yaml.safe_load(path.read_text())["templating"]["list"]
        if variable["type"] == "datasource"
    }
    # The stack runs Tempo; the dashboards' Jaeger row stays collapsed, and queries nothing.
    assert wanted == {"prometheus", "tempo", "jaeger"}
    assert wanted - types == {"jaeger"}
    urls = {source["type"]: urlsplit(source["url"]) for source in datasources["datasources"]}
    assert (urls["prometheus"].hostname, urls["prometheus"].port) == ("prometheus", 9090)
    tempo = _yaml(_mounted("tempo", "/etc/tempo/tempo.yaml"))
    assert (urls["tempo"].hostname, urls["tempo"].port) == ("tempo", tempo["server"]["http_listen_port"])
    providers = _yaml(_mounted("grafana", "/etc/grafana/provisioning/dashboards/dashboards.yaml"))
    (provider,) = providers["providers"]
    assert _mounted("grafana", provider["options"]["path"]) == dashboards.resolve()


@pytest.mark.parametrize("path", sorted(COMPOSE_DIR.rglob("*.yaml")), ids=lambda path: path.name)
def test_every_configuration_file_is_yaml(path: Path) -> None:
    assert isinstance(_yaml(path), dict)
