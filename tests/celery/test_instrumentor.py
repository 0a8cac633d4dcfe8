"""CeleryInstrumentor: the opentelemetry_instrumentor entry point, setup()'s library list, and an
uninstrument() that removes everything."""

from __future__ import annotations

import threading
import weakref
from importlib.metadata import entry_points

from celery import signals
from celery.app.base import Celery

from tasklens.celery import CeleryInstrumentor
from tasklens.celery.instrumentor import _RECEIVERS
from tasklens.libraries import LIBRARIES
from tests.celery.conftest import WAIT_S, AppRig
from tests.dramatiq.conftest import Telemetry


def test_the_entry_point_and_setup_find_the_instrumentor() -> None:
    [entry] = [
        e
        for e in entry_points(group="opentelemetry_instrumentor")
        if e.name == "celery" and "tasklens" in e.value
    ]
    assert entry.load() is CeleryInstrumentor
    [library] = [library for library in LIBRARIES if library.name == "celery"]
    assert library.instrumentor == "tasklens.celery:CeleryInstrumentor" and library.installed()


def test_uninstrument_disconnects_every_receiver_and_unwraps_send_task(
    rig: AppRig, telemetry: Telemetry
) -> None:
    original = Celery.send_task
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    tracing = instrumentor.tracing
    assert tracing is not None
    assert Celery.send_task is not original
    for signal_name, _ in _RECEIVERS:
        assert getattr(signals, signal_name).receivers, signal_name
    instrumentor.uninstrument()

    assert Celery.send_task is original
    for signal_name, method in _RECEIVERS:
        receivers = [
            ref() if isinstance(ref, weakref.ReferenceType) else ref
            for _, ref in getattr(signals, signal_name).receivers
        ]
        assert getattr(tracing, method) not in receivers, signal_name

    ran = threading.Event()

    @rig.task(name=f"{rig.queue_name}.quiet")
    def quiet() -> None:
        ran.set()

    quiet.delay()
    with rig.worker():
        assert ran.wait(WAIT_S), "the task still runs, untraced"
    assert telemetry.spans() == []


def test_instrumenting_twice_traces_once(rig: AppRig, telemetry: Telemetry) -> None:
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:

        @rig.task(name=f"{rig.queue_name}.once")
        def once() -> None:
            pass

        once.delay()
        rig.run(telemetry, 1)
    finally:
        instrumentor.uninstrument()
    assert len(telemetry.spans("send ")) == 1
    assert len(telemetry.spans("process ")) == 1
