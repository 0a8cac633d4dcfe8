"""opentelemetry-instrumentation-celery in the same process: tasklens takes over, in one line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor as ContribInstrumentor

from tasklens.celery import CeleryInstrumentor
from tasklens.celery.contrib import TAKE_OVER_MESSAGE
from tasklens.libraries import after_auto_instrumentation
from tests.celery.conftest import AppRig, make_app
from tests.dramatiq.conftest import Telemetry
from tests.telemetry.python_process import REPORT, environment, run_python

#: The instrumentation scope of the contrib instrumentation's spans.
CONTRIB_SCOPE = "opentelemetry.instrumentation.celery"


@pytest.fixture
def contrib(telemetry: Telemetry) -> Iterator[ContribInstrumentor]:
    instrumentor = ContribInstrumentor()
    yield instrumentor
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def memory_rig(request: pytest.FixtureRequest, unique_name: str) -> Iterator[AppRig]:
    app, cleanups = make_app("memory", request, unique_name)
    yield AppRig("memory", app, unique_name, cleanups)
    app.close()


def take_over_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == TAKE_OVER_MESSAGE]


def run_one_task(rig: AppRig, telemetry: Telemetry) -> None:
    @rig.task(name=f"{rig.queue_name}.ping")
    def ping() -> str:
        return "pong"

    ping.delay()
    rig.run(telemetry, 1)


def test_contrib_instrumented_first_is_uninstrumented_when_tasklens_instruments(
    memory_rig: AppRig,
    telemetry: Telemetry,
    contrib: ContribInstrumentor,
    instrument: Callable[..., CeleryInstrumentor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    contrib.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    with caplog.at_level(logging.WARNING):
        instrument()
    assert not contrib.is_instrumented_by_opentelemetry
    assert len(take_over_lines(caplog)) == 1

    run_one_task(memory_rig, telemetry)
    spans = telemetry.exporter.get_finished_spans()
    assert [span.name for span in spans if span.name.startswith("process ")] == [
        f"process {memory_rig.queue_name}"
    ]
    assert {span.instrumentation_scope.name for span in spans if span.instrumentation_scope} == {
        "tasklens.celery"
    }


def test_contrib_instrumented_after_tasklens_is_uninstrumented_once_auto_instrumentation_is_done(
    memory_rig: AppRig,
    telemetry: Telemetry,
    contrib: ContribInstrumentor,
    instrument: Callable[..., CeleryInstrumentor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    instrument()
    contrib.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    with caplog.at_level(logging.WARNING):
        after_auto_instrumentation()
        after_auto_instrumentation()  # nothing left to do: no second line
    assert not contrib.is_instrumented_by_opentelemetry
    assert len(take_over_lines(caplog)) == 1

    run_one_task(memory_rig, telemetry)
    scopes = {span.instrumentation_scope.name for span in telemetry.exporter.get_finished_spans()}
    assert CONTRIB_SCOPE not in scopes


def test_contrib_alone_is_left_alone(
    telemetry: Telemetry, contrib: ContribInstrumentor, caplog: pytest.LogCaptureFixture
) -> None:
    contrib.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    with caplog.at_level(logging.WARNING):
        after_auto_instrumentation()
    assert contrib.is_instrumented_by_opentelemetry
    assert not take_over_lines(caplog)


def test_opentelemetry_instrument_leaves_one_celery_instrumentation() -> None:
    script = (
        REPORT
        + """
from celery import signals
from opentelemetry.instrumentation.celery import CeleryInstrumentor as Contrib
from tasklens.celery import CeleryInstrumentor
report({
    "tasklens": CeleryInstrumentor().is_instrumented_by_opentelemetry,
    "contrib": Contrib().is_instrumented_by_opentelemetry,
    "prerun_receivers": len(signals.task_prerun.receivers),
})
"""
    )
    env = environment(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    finished = run_python(script, env, prefix=("opentelemetry-instrument",))
    assert finished.returncode == 0, finished.stderr
    assert finished.result == {"tasklens": True, "contrib": False, "prerun_receivers": 1}
