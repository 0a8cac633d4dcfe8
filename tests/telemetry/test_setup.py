"""``tasklens.setup()`` in a fresh process, exporting to a real OTLP/HTTP receiver."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.python_process import REPORT, ROOT, environment, run_python

#: Process health metrics setup() starts, by name.
PROCESS_METRIC_NAMES = {
    "process.cpu.time",
    "process.memory.usage",
    "process.thread.count",
    "cpython.gc.collections",
}


def otlp_env(receiver: OtlpReceiver, **variables: str) -> dict[str, str]:
    return environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="60000",
        **variables,
    )


ONE_SPAN = (
    REPORT
    + """
import tasklens
from opentelemetry import trace
telemetry = tasklens.setup(service_name="from-code")
with trace.get_tracer("test").start_as_current_span("hello") as span:
    pass
trace_id = format(span.get_span_context().trace_id, "032x")
report({"instrumented": list(telemetry.instrumented), "trace_id": trace_id})
"""
)


def test_defaults_export_spans_and_process_metrics_over_otlp_http_at_exit(receiver: OtlpReceiver) -> None:
    finished = run_python(
        ONE_SPAN,
        otlp_env(
            receiver, DRAMATIQ_SERVICE_NAME="billing", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci"
        ),
    )
    assert finished.returncode == 0, finished.stderr
    assert set(finished.result["instrumented"]) == {"process_metrics", "logging", "dramatiq", "celery"}

    [span] = receiver.spans()
    assert span.name == "hello"
    assert span.trace_id == finished.result["trace_id"]
    assert span.resource["service.name"] == "billing"
    assert span.resource["deployment.environment"] == "ci"
    assert len(span.resource["service.instance.id"]) == 36

    names = {point.name for point in receiver.metric_points()}
    assert names >= PROCESS_METRIC_NAMES
    assert not any(name.startswith("system.") for name in names)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"OTEL_SERVICE_NAME": "otel-name", "DRAMATIQ_SERVICE_NAME": "dramatiq-name"}, "otel-name"),
        ({"DRAMATIQ_SERVICE_NAME": "dramatiq-name"}, "dramatiq-name"),
        ({}, "from-code"),
    ],
)
def test_service_name(receiver: OtlpReceiver, variables: dict[str, str], expected: str) -> None:
    finished = run_python(ONE_SPAN, otlp_env(receiver, OTEL_METRICS_EXPORTER="none", **variables))
    assert finished.returncode == 0, finished.stderr
    assert [span.resource["service.name"] for span in receiver.spans()] == [expected]


def test_sdk_disabled_is_a_no_op(receiver: OtlpReceiver) -> None:
    script = (
        REPORT
        + """
import logging
default_factory = logging.getLogRecordFactory()
import dramatiq
from dramatiq.brokers.stub import StubBroker
import tasklens
from opentelemetry import metrics, trace
telemetry = tasklens.setup()
broker = StubBroker()
with trace.get_tracer("test").start_as_current_span("nothing") as span:
    pass
report({
    "enabled": telemetry.enabled,
    "instrumented": list(telemetry.instrumented),
    "same_handle": tasklens.setup() is telemetry,
    "span_valid": span.get_span_context().is_valid,
    "tracer_provider": type(trace.get_tracer_provider()).__name__,
    "meter_provider": type(metrics.get_meter_provider()).__name__,
    "factory_untouched": logging.getLogRecordFactory() is default_factory,
    "middleware": [type(m).__name__ for m in broker.middleware],
})
"""
    )
    finished = run_python(script, otlp_env(receiver, OTEL_SDK_DISABLED="true", OTEL_LOGS_EXPORTER="otlp"))
    assert finished.returncode == 0, finished.stderr
    result = finished.result
    assert result["enabled"] is False
    assert result["instrumented"] == []
    assert result["same_handle"] is True
    assert result["span_valid"] is False
    assert result["tracer_provider"] == "ProxyTracerProvider"
    assert result["meter_provider"] == "_ProxyMeterProvider"
    assert result["factory_untouched"] is True
    assert "OpenTelemetryMiddleware" not in result["middleware"]
    assert receiver.spans() == [] and receiver.metric_points() == [] and receiver.logs() == []


def test_setup_is_idempotent(receiver: OtlpReceiver) -> None:
    script = (
        REPORT
        + """
import logging
import dramatiq
from dramatiq.brokers.stub import StubBroker
import tasklens
from opentelemetry import trace
first = tasklens.setup(service_name="first")
factory = logging.getLogRecordFactory()
second = tasklens.setup(service_name="second", use_links=True)
broker = StubBroker()
with trace.get_tracer("test").start_as_current_span("once"):
    pass
report({
    "same_handle": first is second,
    "same_factory": logging.getLogRecordFactory() is factory,
    "middleware": [type(m).__name__ for m in broker.middleware],
})
"""
    )
    finished = run_python(script, otlp_env(receiver, OTEL_METRICS_EXPORTER="none"))
    assert finished.returncode == 0, finished.stderr
    assert finished.result["same_handle"] is True
    assert finished.result["same_factory"] is True
    assert finished.result["middleware"].count("OpenTelemetryMiddleware") == 1
    [span] = receiver.spans()
    assert span.resource["service.name"] == "first"


def test_unknown_option_is_a_type_error() -> None:
    finished = run_python(
        "import tasklens; tasklens.setup(colour='blue')", environment(OTEL_SDK_DISABLED="true")
    )
    assert finished.returncode != 0
    assert "TypeError" in finished.stderr and "colour" in finished.stderr


def test_console_exporters_print_every_signal() -> None:
    script = """
import logging
import tasklens
from opentelemetry import metrics, trace
telemetry = tasklens.setup()
metrics.get_meter("test").create_counter("printed.counter").add(1)
with trace.get_tracer("test").start_as_current_span("printed-span"):
    logging.getLogger("test").warning("printed log")
"""
    finished = run_python(
        script,
        environment(
            OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="console", OTEL_LOGS_EXPORTER="console"
        ),
    )
    assert finished.returncode == 0, finished.stderr
    assert '"name": "printed-span"' in finished.stdout
    assert '"name": "printed.counter"' in finished.stdout
    assert '"body": "printed log"' in finished.stdout


def test_none_exports_nothing_but_spans_still_carry_context(receiver: OtlpReceiver) -> None:
    finished = run_python(
        ONE_SPAN, otlp_env(receiver, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.result["trace_id"] != "0" * 32
    assert receiver.spans() == [] and receiver.metric_points() == []


def test_sampler_from_the_environment_drops_spans_not_metrics(receiver: OtlpReceiver) -> None:
    finished = run_python(ONE_SPAN, otlp_env(receiver, OTEL_TRACES_SAMPLER="always_off"))
    assert finished.returncode == 0, finished.stderr
    assert receiver.spans() == []
    assert {point.name for point in receiver.metric_points()} >= PROCESS_METRIC_NAMES


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_collector_never_raises_nor_blocks_the_caller() -> None:
    script = (
        REPORT
        + """
import logging, time
logging.basicConfig()
started = time.monotonic()
import tasklens
from opentelemetry import metrics, trace
telemetry = tasklens.setup()
setup_s = time.monotonic() - started
tracer = trace.get_tracer("test")
counter = metrics.get_meter("test").create_counter("work.done")
started = time.monotonic()
for _ in range(2000):  # more than a batch: the exporter thread tries to send while we work
    with tracer.start_as_current_span("work"):
        counter.add(1)
spans_s = time.monotonic() - started
started = time.monotonic()
telemetry.shutdown()
report({"setup_s": setup_s, "spans_s": spans_s, "shutdown_s": time.monotonic() - started})
"""
    )
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="100",
    )
    started = time.monotonic()
    finished = run_python(script, env, timeout=60)
    elapsed = time.monotonic() - started
    assert finished.returncode == 0, finished.stderr
    result = finished.result
    assert result["setup_s"] < 5
    assert result["spans_s"] < 5
    # Each signal waits for at most the export timeout (1 s) plus its retries' bookkeeping.
    assert result["shutdown_s"] < 10
    assert elapsed < 30
    assert "Failed to export" in finished.stderr


def test_a_forked_child_gets_its_own_instance_id_and_flushes_when_it_exits(receiver: OtlpReceiver) -> None:
    script = (
        REPORT
        + """
import multiprocessing
import os
import tasklens
from opentelemetry import metrics, trace

def child():
    tasklens.setup()  # at import of the broker module, as in every worker process: nothing new
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(200)]  # the child, not the parent
    with trace.get_tracer("test").start_as_current_span("in-child"):
        metrics.get_meter("test").create_counter("child.work").add(7)
    # no flush here: the process must flush by itself when it ends

telemetry = tasklens.setup()
with trace.get_tracer("test").start_as_current_span("in-parent"):
    pass
process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join(30)
report({"exitcode": process.exitcode})
"""
    )
    finished = run_python(script, otlp_env(receiver))
    assert finished.returncode == 0, finished.stderr
    assert finished.result["exitcode"] == 0
    spans = {span.name: span for span in receiver.spans()}
    assert set(spans) == {"in-parent", "in-child"}
    child_id = spans["in-child"].resource["service.instance.id"]
    assert child_id != spans["in-parent"].resource["service.instance.id"]
    # Each process is named by its host and its own pid.
    assert spans["in-child"].resource["host.name"] == socket.gethostname()
    child_pid, parent_pid = (spans[name].resource["process.pid"] for name in ("in-child", "in-parent"))
    assert child_pid != parent_pid
    assert spans["in-child"].resource["process.parent_pid"] == parent_pid
    assert "process.command_args" not in spans["in-child"].resource
    [point] = [point for point in receiver.metric_points() if point.name == "child.work"]
    assert point.value == 7
    assert point.resource["service.instance.id"] == child_id
    child_descriptors = [
        point.value
        for point in receiver.metric_points()
        if point.name == "process.open_file_descriptor.count"
        and point.resource["service.instance.id"] == child_id
    ]
    assert child_descriptors, "the child reports its own process metrics"
    assert max(child_descriptors) >= 200, "measured in the child, which opened 200 more files"


def test_a_new_process_reports_its_metrics_within_seconds_not_an_export_interval(
    receiver: OtlpReceiver,
) -> None:
    script = """
import sys, tasklens
tasklens.setup(service_name="fresh-worker")
sys.stdin.read()  # alive until the test closes stdin
"""
    env = environment(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_METRIC_EXPORT_INTERVAL="600000")
    child = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, stdin=subprocess.PIPE)
    try:
        # The export interval is ten minutes: only the early first export can deliver these.
        arrived = receiver.wait_for(
            lambda r: any(point.name == "process.cpu.time" for point in r.metric_points()), timeout=20
        )
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    assert arrived, "no metric export within 20 s of setup()"
    [resource] = {tuple(sorted(point.resource.items())) for point in receiver.metric_points()}
    assert dict(resource)["service.name"] == "fresh-worker"


def test_logs_are_exported_with_their_span_by_default(receiver: OtlpReceiver) -> None:
    script = """
import logging
import tasklens
from opentelemetry import trace
tasklens.setup()
logging.basicConfig(level=logging.INFO, format="console: %(message)s")  # after setup, as apps do
with trace.get_tracer("test").start_as_current_span("logging-span"):
    logging.getLogger("app").info("inside %s", "span")
logging.getLogger("app").info("outside")
"""
    # No OTEL_LOGS_EXPORTER: the specification's default, otlp, applies.
    finished = run_python(script, otlp_env(receiver, OTEL_METRICS_EXPORTER="none"))
    assert finished.returncode == 0, finished.stderr
    [span] = receiver.spans()
    logs = {log.body: log for log in receiver.logs()}
    inside = logs["inside span"]
    assert (inside.trace_id, inside.span_id) == (span.trace_id, span.span_id)
    assert inside.attributes["otelTraceID"] == span.trace_id
    assert inside.attributes["otelSpanID"] == span.span_id
    assert inside.severity_text == "INFO"
    assert logs["outside"].trace_id == ""
    assert "console: inside span" in finished.stderr


def test_under_opentelemetry_instrument_setup_uses_the_configured_sdk(receiver: OtlpReceiver) -> None:
    script = (
        REPORT
        + """
import tasklens
from opentelemetry import trace
telemetry = tasklens.setup(service_name="ignored")
with trace.get_tracer("test").start_as_current_span("once"):
    pass
report({
    "same_provider": telemetry.tracer_provider is trace.get_tracer_provider(),
    "instrumented": list(telemetry.instrumented),
})
"""
    )
    env = otlp_env(
        receiver,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="zero-code",
        OTEL_LOGS_EXPORTER="none",
    )
    finished = run_python(script, env, prefix=["opentelemetry-instrument"])
    assert finished.returncode == 0, finished.stderr
    assert finished.result["same_provider"] is True
    assert "dramatiq" not in finished.result["instrumented"]  # opentelemetry-instrument did it
    [span] = receiver.spans()
    assert span.resource["service.name"] == "zero-code"


def test_import_tasklens_stays_light() -> None:
    script = (
        REPORT
        + """
import sys
import tasklens
report(sorted(name for name in sys.modules if name.startswith(("opentelemetry", "dramatiq"))))
"""
    )
    finished = run_python(script, environment())
    assert finished.returncode == 0, finished.stderr
    assert finished.result == []


def test_metrics_are_exported_every_otel_metric_export_interval(receiver: OtlpReceiver) -> None:
    script = """
import sys
import tasklens
from opentelemetry import metrics
tasklens.setup(process_metrics=False)
metrics.get_meter("test").create_counter("ticks").add(1)
sys.stdin.readline()  # until the test has seen the exports it waits for
"""
    env = otlp_env(receiver, OTEL_TRACES_EXPORTER="none")
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "200"
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdin=subprocess.PIPE, text=True
    )
    try:
        exported = receiver.wait_for(
            lambda r: sum(point.name == "ticks" for point in r.metric_points()) >= 3, timeout=10
        )
    finally:
        process.communicate("done\n", timeout=30)
    assert exported, "three exports of a 200 ms interval within 10 s"
    assert process.returncode == 0
