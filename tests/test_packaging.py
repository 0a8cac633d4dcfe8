"""What installing tasklens pulls in: the instrumentation alone for workers, the monitor's web
stack and the CLI only with the ``monitor`` extra."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
#: The monitor's stack and the CLI's: what a worker install must not pull in.
MONITOR_STACK = {
    "fastapi",
    "uvicorn",
    "prometheus-client",
    "click",
    "rich",
    "redis",
    "httpx",
    "platformdirs",
    "opentelemetry-instrumentation-fastapi",
}
#: What the blocked imports below stand for (the stack's import names and what they bring).
BLOCKED_MODULES = {
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "click",
    "rich",
    "redis",
    "httpx",
    "platformdirs",
    "starlette",
    "pydantic",
}

#: Run in a child interpreter where the monitor stack cannot be imported, as in a worker install.
WITHOUT_THE_STACK = f"""
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(BLOCKED_MODULES)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
"""


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, set[str]]:
    """The built wheel's requirements: ``None`` -> the core, else extra -> its own."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        timeout=240,
    )
    [wheel] = out.glob("tasklens-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode())
    requirements: dict[str | None, set[str]] = {}
    for line in message.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        extra = None
        if requirement.marker is not None:
            extra = next(
                (
                    value
                    for value in ("dramatiq", "celery", "monitor", "rabbitmq", "dev", "bench")
                    if requirement.marker.evaluate({"extra": value})
                ),
                None,
            )
        requirements.setdefault(extra, set()).add(requirement.name.lower())
    return requirements


@pytest.mark.slow
def test_a_worker_install_pulls_in_only_the_instrumentation(metadata: dict[str | None, set[str]]) -> None:
    core = metadata[None]
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= core
    assert not core & MONITOR_STACK, f"the core install pulls in {sorted(core & MONITOR_STACK)}"
    assert metadata["dramatiq"] == {"dramatiq"}
    assert {requirement.split("[")[0] for requirement in metadata["celery"]} == {"celery"}
    assert metadata["monitor"] >= MONITOR_STACK


def test_setup_and_the_instrumentation_work_without_the_monitor_stack() -> None:
    script = (
        WITHOUT_THE_STACK
        + """
import tasklens
telemetry = tasklens.setup(service_name="worker")
from dramatiq.brokers.stub import StubBroker
from tasklens.dramatiq import DramatiqInstrumentor, OpenTelemetryMiddleware
StubBroker().add_middleware(OpenTelemetryMiddleware())
print(sorted(telemetry.instrumented))
"""
    )
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "PATH": "/usr/bin:/bin",
    }
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    assert finished.returncode == 0, finished.stderr
    assert "dramatiq" in finished.stdout


@pytest.mark.parametrize("command", ["monitor", "queues"])
def test_the_cli_without_the_monitor_stack_says_what_to_install(command: str) -> None:
    script = (
        WITHOUT_THE_STACK
        + f"""
sys.argv = ["tasklens", {command!r}]
from tasklens.cli import main
main()
"""
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert finished.returncode == 2
    assert finished.stdout == ""
    [line] = finished.stderr.strip().splitlines()
    assert "install tasklens[monitor]" in line and f"tasklens {command}" in line
