"""A fork while the parent is exporting metrics leaves the child able to export."""

from __future__ import annotations

import pytest

from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.python_process import REPORT, environment, run_python

FORK_DURING_EXPORT = (
    REPORT
    + """
import multiprocessing, os, threading
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from tasklens.telemetry.lifecycle import prepare_worker_processes

PARENT = os.getpid()
exporting, finish_export = threading.Event(), threading.Event()

class SlowInParent(MetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        if os.getpid() == PARENT:
            exporting.set()
            finish_export.wait(10)
        return MetricExportResult.SUCCESS
    def force_flush(self, timeout_millis=10_000):
        return True
    def shutdown(self, timeout_millis=30_000, **kwargs):
        pass

provider = MeterProvider(
    metric_readers=[PeriodicExportingMetricReader(SlowInParent(), export_interval_millis=600_000)]
)
if GUARD:
    prepare_worker_processes(meter_provider=provider)
provider.get_meter("test").create_counter("work").add(1)
threading.Thread(target=provider.force_flush, daemon=True).start()
assert exporting.wait(10)  # the parent's export is under way: the fork comes now
threading.Timer(0.3, finish_export.set).start()

def child():
    provider.force_flush()

process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join(10)
report({"exitcode": process.exitcode})
if process.exitcode is None:
    process.kill()
"""
)


@pytest.mark.parametrize("guard", [True])
def test_a_child_forked_during_an_export_can_still_flush_its_metrics(guard: bool) -> None:
    finished = run_python(FORK_DURING_EXPORT.replace("GUARD", str(guard)), environment())
    assert finished.returncode == 0, finished.stderr
    assert finished.result["exitcode"] == 0, "the child's flush finished"


def test_a_forked_child_opens_its_own_connection_to_the_collector(receiver: OtlpReceiver) -> None:
    script = (
        REPORT
        + """
import multiprocessing
import tasklens
from opentelemetry import metrics
telemetry = tasklens.setup(process_metrics=False)
counter = metrics.get_meter("test").create_counter("work")
counter.add(1)
telemetry.force_flush()  # the parent now keeps a connection to the collector open

def child():
    counter.add(1)
    telemetry.force_flush()

process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join(30)
report({"exitcode": process.exitcode})
"""
    )
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRIC_EXPORT_INTERVAL="600000",
    )
    finished = run_python(script, env)
    assert finished.returncode == 0, finished.stderr
    assert finished.result["exitcode"] == 0
    ports = [port for path, port in receiver.requests() if path == "/v1/metrics"]
    parent_port, child_port = ports[0], ports[1]
    assert child_port != parent_port, "the child did not reuse the parent's connection"
    assert receiver.rejected == 0
