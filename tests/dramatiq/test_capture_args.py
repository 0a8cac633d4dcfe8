"""capture_args on Dramatiq messages: the process span records them, a failing callable is harmless."""

from __future__ import annotations

import json

from tasklens import semconv
from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.messaging.arguments import REDACTED
from tests.dramatiq.conftest import Telemetry


def test_process_span_carries_captured_args(make_rig, telemetry: Telemetry) -> None:
    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            capture_args=True,
        )
    )

    @rig.actor
    def charge(amount: int, *, secret: str) -> None:
        pass

    charge.send(12, secret="hunter2")
    [process] = rig.process(telemetry, 1)
    recorded = json.loads(process.attributes[semconv.DRAMATIQ_MESSAGE_ARGS])
    assert recorded == {"args": [12], "kwargs": {"secret": REDACTED}}
    assert (
        telemetry.sampler.seen[process.name][semconv.DRAMATIQ_MESSAGE_ARGS]
        == process.attributes[semconv.DRAMATIQ_MESSAGE_ARGS]
    )


def test_failing_capture_callable_never_breaks_processing(make_rig, telemetry: Telemetry) -> None:
    def broken(args, kwargs):
        raise RuntimeError("bug in user code")

    rig = make_rig(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            capture_args=broken,
        )
    )

    @rig.actor
    def job() -> None:
        pass

    job.send()
    [process] = rig.process(telemetry, 1)
    assert semconv.DRAMATIQ_MESSAGE_ARGS not in process.attributes
