"""deploy/kubernetes: every manifest is valid against the Kubernetes schemas (offline, strict:
unknown fields fail), and the worker and monitor are wired as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
#: Kubernetes releases the manifests are checked against: the oldest still maintained, the newest.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
#: The worker health endpoint's port and path (its environment variable sets the port).
WORKER_HEALTH_PORT, WORKER_HEALTH_PATH = 8099, "/healthz"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (document["kind"], document["metadata"]["name"]): document
        for path in MANIFESTS
        for document in _documents(path)
    }


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    documents = _documents(path)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validation_rejects_a_misspelt_field() -> None:
    worker = _objects()[("Deployment", "billing-worker")]
    worker["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"tcpSocket": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_worker_is_probed_on_its_own_health_endpoint_and_with_tasklens_health() -> None:
    objects = _objects()
    (container,) = objects[("Deployment", "billing-worker")]["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    assert env["TASKLENS_WORKER_HEALTH_PORT"]["value"] == str(WORKER_HEALTH_PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": WORKER_HEALTH_PATH, "port": WORKER_HEALTH_PORT}
    assert container["readinessProbe"]["exec"]["command"] == [
        "tasklens",
        "health",
        "--worker",
        f"http://127.0.0.1:{WORKER_HEALTH_PORT}",
    ]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    config = objects[("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])]
    assert config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")
    assert config["data"]["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


def test_the_monitor_takes_its_token_from_the_secret_and_is_scraped_through_its_service() -> None:
    objects = _objects()
    deployment = objects[("Deployment", "tasklens-monitor")]
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    token = _env(container)["TASKLENS_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = objects[("Secret", token["name"])]
    assert token["key"] in secret["stringData"]
    assert "value" not in _env(container)["TASKLENS_AUTH_TOKEN"]
    assert "--public-metrics" in container["command"]
    port = container["ports"][0]["containerPort"]
    annotations = template["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    service = objects[("Service", "tasklens-monitor")]
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_every_secret_reference_names_a_key_of_a_shipped_secret() -> None:
    objects = _objects()
    for (kind, name), document in objects.items():
        if kind != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    secret = objects[("Secret", reference["name"])]
                    assert reference["key"] in secret["stringData"], (name, variable["name"])
