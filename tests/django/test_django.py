"""``tasklens.django`` in a real minimal Django project (tests/django/project) with django_dramatiq
on the real Redis: the app's setup() and the health view, through Django's test client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from tests.monitor.processes import free_port, run_tasklens

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.django.project.settings"


@pytest.fixture(scope="module")
def project(redis_url: str) -> Iterator[dict[str, str]]:
    """Django set up in this process, on a namespace of its own; the global Dramatiq broker that
    django_dramatiq installs is put back afterwards."""
    import dramatiq.broker

    namespace = f"tl-django-{uuid.uuid4().hex[:10]}"
    previous = dramatiq.broker.global_broker
    environment = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SHOP_REDIS_URL": redis_url,
        "SHOP_NAMESPACE": namespace,
        # Here setup() must not install global providers for the rest of the test session; the
        # subprocess test below checks what it configures.
        "OTEL_SDK_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    import django

    django.setup()
    yield {"namespace": namespace, "redis_url": redis_url}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()
    dramatiq.broker.global_broker = previous


@pytest.fixture
def client(project: dict[str, str]):
    from django.test import Client

    return Client()


@pytest.fixture
def orders(project: dict[str, str]) -> Iterator[None]:
    yield
    client = redis.Redis.from_url(project["redis_url"])
    client.delete(f"{project['namespace']}:orders", f"{project['namespace']}:orders.msgs")
    client.close()


def test_healthy(client, orders: None) -> None:
    response = client.get("/tasklens/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert [q["name"] for q in body["queues"]] == ["orders"]
    assert body["reasons"] == []


def test_degraded_is_the_same_verdict_as_tasklens_health(
    client, project: dict[str, str], orders: None
) -> None:
    from tests.django.project.shop.tasks import place_order

    for order_id in range(3):
        place_order.send(order_id)
    response = client.get("/tasklens/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["reasons"] == ["queue 'orders' has 3 pending messages (max 2)"]
    assert client.get("/tasklens/health/?strict=1").status_code == 503

    cli = run_tasklens(
        "health",
        "--broker",
        f"{project['redis_url']}?namespace={project['namespace']}",
        "--max-backlog",
        "2",
        "--json",
    )
    assert cli.returncode == 1
    report = json.loads(cli.stdout)
    assert (report["status"], report["reasons"]) == (body["status"], body["reasons"])
    assert [(q["name"], q["ready"]) for q in report["queues"]] == [
        (q["name"], q["ready"]) for q in body["queues"]
    ]


def test_an_unreachable_broker_is_503(client, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasklens.django.apps import TasklensConfig

    settings = TasklensConfig.tasklens
    closed = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(
        TasklensConfig,
        "tasklens",
        replace(settings, health=replace(settings.health, broker_url=closed, timeout=1.0)),
    )
    response = client.get("/tasklens/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert "hunter2" not in response.content.decode()
    assert client.post("/tasklens/health/").status_code == 405


def test_setup_runs_once_per_process_from_the_settings(redis_url: str) -> None:
    script = """
import json, django
from django.apps import apps
django.setup()
apps.get_app_config("tasklens").ready()  # a second ready() adds nothing
import dramatiq
from opentelemetry import trace
from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.libraries import _instrumented
broker = dramatiq.get_broker()
print(json.dumps({
    "service": trace.get_tracer_provider().resource.attributes["service.name"],
    "instrumented": sorted(name for name, done in _instrumented.items() if done),
    "middleware": sum(isinstance(m, OpenTelemetryMiddleware) for m in broker.middleware),
}))
"""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SHOP_REDIS_URL": redis_url,
        "SHOP_NAMESPACE": f"tl-django-{uuid.uuid4().hex[:10]}",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    env.pop("OTEL_SERVICE_NAME", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    # setup() instruments every installed task library: Celery is installed with the dev extras.
    assert state == {"service": "shop-web", "instrumented": ["celery", "dramatiq"], "middleware": 1}


def test_a_wrong_setting_is_named() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from tasklens.django.settings import read_settings

    with pytest.raises(ImproperlyConfigured, match="TASKLENS has an unknown key 'SERVICE'"):
        read_settings({"SERVICE": "x"})
    with pytest.raises(
        ImproperlyConfigured, match=r"TASKLENS\['HEALTH'\]\['MAX_BACKLOG'\] must be a non-negative int"
    ):
        read_settings({"HEALTH": {"MAX_BACKLOG": "many"}})
    assert read_settings({"CAPTURE_ARGS": True}).options == {"capture_args": True}


def test_a_celery_project_gets_the_verdict_of_tasklens_health_for_its_app(
    client, project: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tasklens.django.apps import TasklensConfig
    from tests.celery_fixtures import delete_prefixed, write_app

    name = f"tldjango{uuid.uuid4().hex[:10]}"
    files = write_app(tmp_path, name, project["redis_url"], project["redis_url"])
    app = files.load()
    settings = TasklensConfig.tasklens
    monkeypatch.setattr(
        TasklensConfig,
        "tasklens",
        replace(settings, health=replace(settings.health, celery_app=f"{files.module}:app", timeout=10.0)),
    )
    try:
        for priority in (0, 9, 9):
            app.send_task("quick", (priority,), queue=name, priority=priority)
        response = client.get("/tasklens/health/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "degraded"
        assert body["reasons"] == [f"queue {name!r} has 3 pending messages (max 2)"]
        (queue,) = [q for q in body["queues"] if q["name"] == name]
        assert queue["ready"] == 3

        cli = run_tasklens(
            "health", "--app", files.module, "--max-backlog", "2", "--json", env={"PYTHONPATH": str(tmp_path)}
        )
        assert cli.returncode == 1, cli.stderr
        report = json.loads(cli.stdout)
        assert (report["status"], report["reasons"]) == (body["status"], body["reasons"])
        assert [(q["name"], q["ready"]) for q in report["queues"]] == [
            (q["name"], q["ready"]) for q in body["queues"]
        ]
    finally:
        app.close()
        delete_prefixed(project["redis_url"], files.prefix)
