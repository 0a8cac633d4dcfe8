"""deploy/grafana: the committed dashboards are what the generator writes, and every panel's query
returns data from a real Prometheus scraping a monitor fed by real Dramatiq workers and a real
Celery worker on Redis, its variables filled in for each library."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.celery_fixtures import delete_prefixed
from tests.deploy import celery_app, worker_app
from tests.deploy.conftest import DEPLOY
from tests.monitor.processes import (
    SUBPROCESS_TIMEOUT,
    free_port,
    require_program,
    running_monitor,
    stop,
    wait_for_http,
)
from tests.telemetry.python_process import ROOT, environment

GRAFANA = DEPLOY / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
#: Data source variables every panel must use, by plugin.
DATASOURCE_VARIABLES = {"prometheus": "${datasource}", "tempo": "${traces}", "jaeger": "${jaeger}"}

#: How long the whole pipeline (workers -> OTLP -> monitor -> Prometheus) may take to fill every
#: panel, in seconds.
DATA_DEADLINE = 90.0
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
PROCESSES, THREADS = 2, 2
WORKER_SERVICE = "deploy-worker"
CELERY_WORKER_SERVICE = "deploy-celery-worker"
#: Threads of the Celery worker (threads pool) and its heartbeat interval, in seconds.
CELERY_THREADS, CELERY_HEARTBEAT = 2, 1
LIBRARIES = ("dramatiq", "celery")
#: Panels that have no Celery data by nature, by dashboard and panel title, with the reason.
DRAMATIQ_ONLY = {
    # Celery on Redis has no dead-letter queue: the monitor reports no "dead" depth for its
    # queues (failures for good are the "Dead-lettered messages" graph's Celery half).
    ("tasklens-overview.json", "Dead letters"): "no dead-letter queue in Celery on Redis",
}
#: Messages the producer sends, per actor.
OK_MESSAGES, FLAKY_MESSAGES, BACKLOG_MESSAGES = 20, 3, 3


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


# -- The committed files --------------------------------------------------------------------------


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def test_regenerating_the_dashboards_gives_the_committed_files(tmp_path: Path) -> None:
    generated = _generate("--output", str(tmp_path))
    assert generated.returncode == 0, generated.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [path.name for path in DASHBOARD_FILES]
    for path in DASHBOARD_FILES:
        assert (tmp_path / path.name).read_text() == path.read_text(), f"{path.name}: run make dashboards"
    assert _generate("--check").returncode == 0


def test_the_check_names_a_dashboard_that_was_edited_by_hand(tmp_path: Path) -> None:
    for path in DASHBOARD_FILES:
        (tmp_path / path.name).write_text(path.read_text())
    edited = tmp_path / DASHBOARD_FILES[0].name
    edited.write_text(edited.read_text().replace('"tasklens"', '"hand-edited"', 1))
    checked = _generate("--check", "--output", str(tmp_path))
    assert checked.returncode == 1
    assert edited.name in checked.stderr


def test_there_are_an_overview_a_per_task_and_a_worker_processes_dashboard() -> None:
    boards = _dashboards()
    assert set(boards) == {"tasklens-overview.json", "tasklens-task.json", "tasklens-worker-processes.json"}
    variables = {name: {v["name"] for v in board["templating"]["list"]} for name, board in boards.items()}
    assert variables["tasklens-overview.json"] >= {"datasource", "library", "queue"}
    assert variables["tasklens-task.json"] >= {"datasource", "traces", "jaeger", "library", "queue", "task"}
    assert variables["tasklens-worker-processes.json"] >= {"datasource", "service", "instance"}
    for name, board in boards.items():
        ids = [panel["id"] for panel in _panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        assert len({board["uid"] for board in boards.values()}) == len(boards)


def test_every_panel_reads_a_data_source_chosen_by_a_variable() -> None:
    for name, board in _dashboards().items():
        for panel in _panels(board):
            if panel["type"] == "row":
                continue
            datasource = panel["datasource"]
            assert datasource["uid"] == DATASOURCE_VARIABLES[datasource["type"]], (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target.get("datasource", datasource) == datasource, (name, panel["title"])


# -- Against a real Prometheus --------------------------------------------------------------------


@dataclass
class Stack:
    prometheus: str
    queue: str
    backlog: str
    celery_queue: str
    celery_backlog: str

    def variables(self, library: str) -> dict[str, str]:
        """Each dashboard variable as Grafana fills it in (regex-formatted multi-values) for
        ``library``: ``dramatiq``, ``celery``, or ``(dramatiq|celery)`` for both."""
        queues, tasks, services = [], [], []
        if "dramatiq" in library:
            queues += [self.queue, self.backlog]
            tasks += [worker_app.OK_ACTOR, worker_app.FLAKY_ACTOR, worker_app.LATER_ACTOR]
            services.append(WORKER_SERVICE)
        if "celery" in library:
            queues += [self.celery_queue, self.celery_backlog]
            tasks += [celery_app.OK_TASK, celery_app.FLAKY_TASK, celery_app.LATER_TASK]
            services.append(CELERY_WORKER_SERVICE)
        return {
            "library": library,
            "queue": f"({'|'.join(queues)})",
            "task": f"({'|'.join(tasks)})",
            "service": f"({'|'.join(services)})",
            "instance": ".*",
            "__rate_interval": "1m",
        }

    def fill(self, text: str, library: str) -> str:
        values = self.variables(library)
        return re.sub(r"\$(\w+)", lambda match: values[match.group(1)], text)

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expression}, timeout=10)
        assert response.status_code == 200, f"{expression}: {response.text}"
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def label_values(self, selector: str, label: str) -> list[str]:
        response = httpx.get(
            f"{self.prometheus}/api/v1/label/{label}/values", params={"match[]": selector}, timeout=10
        )
        assert response.status_code == 200, f"{selector}: {response.text}"
        values: list[str] = response.json()["data"]
        return values


def prometheus_config(monitor: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tasklens-monitor
    static_configs:
      - targets: ["{monitor}"]
"""


@contextmanager
def running_prometheus(config: Path, data: Path) -> Iterator[str]:
    """A real Prometheus on a free port with ``config``; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            require_program("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready", process)
        yield url
    finally:
        stop(process)
        if process.stderr is not None:
            process.stderr.close()


@contextmanager
def running_workers(
    redis_url: str, namespace: str, queue: str, backlog: str, monitor: str, log: Path
) -> Iterator[None]:
    """The ``dramatiq`` CLI on ``queue`` (not ``backlog``), its module calling ``tasklens.setup()``
    and exporting OTLP to the monitor at ``monitor``."""
    env = environment(
        TASKLENS_DEPLOY_BROKER_URL=redis_url,
        TASKLENS_DEPLOY_NAMESPACE=namespace,
        TASKLENS_DEPLOY_QUEUE=queue,
        TASKLENS_DEPLOY_BACKLOG=backlog,
        OTEL_SERVICE_NAME=WORKER_SERVICE,
        OTEL_EXPORTER_OTLP_ENDPOINT=monitor,
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    command = [
        str(Path(sys.executable).parent / "dramatiq"),
        "tests.deploy.worker_app",
        "-p",
        str(PROCESSES),
        "-t",
        str(THREADS),
        "--queues",
        queue,
    ]
    with log.open("w") as output:
        workers = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while log.read_text().count("Worker process is ready for action.") < PROCESSES:
            assert workers.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the workers did not boot:\n{log.read_text()}"
            time.sleep(0.1)
        yield
    finally:
        if workers.poll() is None:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(workers.pid, signal.SIGKILL)
                workers.wait()


@contextmanager
def producing(redis_url: str, namespace: str, queue: str, backlog: str, monitor: str) -> Iterator[None]:
    """A web app's side: sends the test's messages through an instrumented broker whose metrics
    go to the monitor over OTLP."""
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{monitor}/v1/metrics", timeout=10), export_interval_millis=500
    )
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "deploy-producer"})
    )
    broker = RedisBroker(url=redis_url, namespace=namespace)
    broker.add_middleware(OpenTelemetryMiddleware(meter_provider=provider))
    actors = worker_app.declare(broker, queue, backlog)
    try:
        for n in range(OK_MESSAGES):
            actors[worker_app.OK_ACTOR].send(n)
        for n in range(FLAKY_MESSAGES):
            actors[worker_app.FLAKY_ACTOR].send(n)
        for n in range(BACKLOG_MESSAGES):
            actors[worker_app.LATER_ACTOR].send(n)
        yield
    finally:
        provider.shutdown()
        broker.close()


def celery_environment(
    redis_url: str, prefix: str, queue: str, backlog: str, monitor: str, service: str
) -> dict[str, str]:
    """What ``tests.deploy.celery_app`` reads, exporting metrics to the monitor as ``service``."""
    return environment(
        TASKLENS_DEPLOY_BROKER_URL=redis_url,
        TASKLENS_DEPLOY_CELERY_PREFIX=prefix,
        TASKLENS_DEPLOY_CELERY_QUEUE=queue,
        TASKLENS_DEPLOY_CELERY_BACKLOG=backlog,
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=monitor,
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )


@contextmanager
def running_celery_worker(env: dict[str, str], hostname: str, queue: str, log: Path) -> Iterator[None]:
    """``celery worker`` (threads pool) on ``queue``, its app module calling ``tasklens.setup()``."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.deploy.celery_app",
        "worker",
        "-n",
        hostname,
        "--pool",
        "threads",
        "--concurrency",
        str(CELERY_THREADS),
        "-Q",
        queue,
        "--heartbeat-interval",
        str(CELERY_HEARTBEAT),
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
    ]
    with log.open("w") as output:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while f"{hostname} ready." not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the Celery worker did not boot:\n{log.read_text()}"
            time.sleep(0.1)
        yield
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def produce_celery(env: dict[str, str]) -> None:
    """A web app's side for Celery: ``python -m tests.deploy.celery_app`` sends the test's tasks
    through ``tasklens.setup()``'s instrumentation and exits, its metrics flushed to the monitor."""
    sent = subprocess.run(
        [sys.executable, "-m", "tests.deploy.celery_app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert sent.returncode == 0, sent.stderr


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole pipeline, started once for the module's tests (it takes the longest to fill):
    one monitor reads Dramatiq's namespace and Celery's key prefix on the same Redis."""
    name = "t" + uuid.uuid4().hex[:10]
    prefix = f"{name}-celery:"
    folder = tmp_path_factory.mktemp("dashboards")
    queue, backlog = f"{name}_work", f"{name}_backlog"
    celery_queue, celery_backlog = f"{name}_celery_work", f"{name}_celery_backlog"
    try:
        with running_monitor(
            "--broker",
            f"dramatiq={redis_url}?namespace={name}",
            "--broker",
            f"celery={redis_url}",
            "--transport-option",
            f"global_keyprefix={prefix}",
            "--cache-ttl",
            "0.5",
        ) as monitor:
            config = folder / "prometheus.yml"
            config.write_text(prometheus_config(monitor.removeprefix("http://")))

            def celery_env(service: str) -> dict[str, str]:
                return celery_environment(redis_url, prefix, celery_queue, celery_backlog, monitor, service)

            with (
                running_workers(redis_url, name, queue, backlog, monitor, folder / "workers.log"),
                running_celery_worker(
                    celery_env(CELERY_WORKER_SERVICE), f"deploy@{name}", celery_queue, folder / "celery.log"
                ),
                producing(redis_url, name, queue, backlog, monitor),
                running_prometheus(config, folder / "data") as prometheus,
            ):
                produce_celery(celery_env("deploy-celery-producer"))
                yield Stack(prometheus, queue, backlog, celery_queue, celery_backlog)
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{name}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
        delete_prefixed(redis_url, prefix)


def _prometheus_queries(stack: Stack, library: str) -> dict[str, str]:
    """Every Prometheus query of every panel, variables filled in for ``library``, by dashboard /
    panel / refId; without the panels ``DRAMATIQ_ONLY`` names when ``library`` is Celery."""
    queries = {}
    for name, board in _dashboards().items():
        for panel in _panels(board):
            if panel.get("datasource", {}).get("type") != "prometheus":
                continue
            if library == "celery" and (name, panel["title"]) in DRAMATIQ_ONLY:
                continue
            for target in panel["targets"]:
                queries[f"{name} / panel {panel['id']} {panel['title']} / {target['refId']}"] = stack.fill(
                    target["expr"], library
                )
    return queries


def test_the_dramatiq_only_panels_exist() -> None:
    titles = {(name, panel["title"]) for name, board in _dashboards().items() for panel in _panels(board)}
    assert set(DRAMATIQ_ONLY) <= titles


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("library", LIBRARIES)
def test_every_panel_query_parses_and_returns_data(stack: Stack, library: str) -> None:
    queries = _prometheus_queries(stack, library)
    targets = sum(
        len(panel["targets"])
        for name, board in _dashboards().items()
        for panel in _panels(board)
        if panel.get("datasource", {}).get("type") == "prometheus"
        and not (library == "celery" and (name, panel["title"]) in DRAMATIQ_ONLY)
    )
    assert len(queries) == targets > 30
    deadline = time.monotonic() + DATA_DEADLINE
    empty = dict(queries)
    while empty:
        # A query Prometheus cannot parse fails at once (HTTP 400), with its text.
        empty = {key: expression for key, expression in empty.items() if not stack.query(expression)}
        if empty and time.monotonic() > deadline:
            pytest.fail(
                f"{library}: panels without data:\n" + "\n".join(f"{k}: {v}" for k, v in empty.items())
            )
        time.sleep(1.0)
    if library == "celery":
        # Every other panel has Celery data now: the allowed ones have none, by nature.
        allowed = {
            f"{name} / panel {panel['id']} {panel['title']} / {target['refId']}": target["expr"]
            for name, board in _dashboards().items()
            for panel in _panels(board)
            if (name, panel["title"]) in DRAMATIQ_ONLY
            for target in panel["targets"]
        }
        assert allowed
        for key, expression in allowed.items():
            assert not stack.query(stack.fill(expression, library)), (
                f"{key} has Celery data: allow it no more"
            )


@pytest.mark.slow
@pytest.mark.redis
def test_a_celery_panel_shows_only_celery(stack: Stack) -> None:
    """The variables set to Celery select Celery's series alone, not Dramatiq's too."""
    board = _dashboards()["tasklens-overview.json"]
    throughput = next(panel for panel in _panels(board) if panel["title"] == "Throughput")
    deadline = time.monotonic() + DATA_DEADLINE
    while not (series := stack.query(stack.fill(throughput["targets"][0]["expr"], "celery"))):
        assert time.monotonic() < deadline, "no Celery throughput"
        time.sleep(1.0)
    assert {(s["metric"]["messaging_system"], s["metric"]["messaging_destination_name"]) for s in series} == {
        ("celery", stack.celery_queue)
    }


@pytest.mark.slow
@pytest.mark.redis
def test_every_variable_query_offers_the_running_queues_tasks_and_processes(stack: Stack) -> None:
    both = "(dramatiq|celery)"
    expected = {
        "library": set(LIBRARIES),
        "queue": {stack.queue, stack.backlog, stack.celery_queue, stack.celery_backlog},
        "task": {worker_app.OK_ACTOR, worker_app.FLAKY_ACTOR, celery_app.OK_TASK, celery_app.FLAKY_TASK},
        "service": {WORKER_SERVICE, CELERY_WORKER_SERVICE},
    }
    label_values = re.compile(r"^label_values\((?P<selector>.*), (?P<label>\w+)\)$")
    query_result = re.compile(r"^query_result\((?P<expr>.*)\)$")
    deadline = time.monotonic() + DATA_DEADLINE
    for name, board in _dashboards().items():
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            text = variable["query"]
            while True:
                if match := label_values.match(text):
                    offered = set(stack.label_values(stack.fill(match["selector"], both), match["label"]))
                else:
                    match = query_result.match(text)
                    assert match, f"{name}: unexpected variable query {text}"
                    pattern = re.compile(variable["regex"].strip("/"))
                    offered = {
                        found
                        for series in stack.query(stack.fill(match["expr"], both))
                        for key, value in series["metric"].items()
                        for found in pattern.findall(f'{key}="{value}"')
                    }
                wanted = expected.get(variable["name"], set())
                if offered and wanted <= offered:
                    break
                assert time.monotonic() < deadline, f"{name}: ${variable['name']} offers {sorted(offered)}"
                time.sleep(1.0)
