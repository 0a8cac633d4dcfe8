"""Exit paths that run no ``atexit`` handler, and logging set-ups that drop the export handler."""

from __future__ import annotations

from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.python_process import REPORT, environment, run_python

#: A forked child that ends with os._exit(), as billiard's pool processes do; SHUTDOWN says
#: whether it calls shutdown_prepared() first.
FORKED_CHILD_EXITS = (
    REPORT
    + """
import os
import tasklens
from tasklens.telemetry import shutdown_prepared
from opentelemetry import trace
tasklens.setup(process_metrics=False)
pid = os.fork()
if pid == 0:
    trace.get_tracer("test").start_span("in the child").end()
    if SHUTDOWN:
        shutdown_prepared()
    os._exit(0)
_, status = os.waitpid(pid, 0)
report({"status": status})
"""
)


def _run_child(receiver: OtlpReceiver, shutdown: bool) -> list[str]:
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRICS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    finished = run_python(FORKED_CHILD_EXITS.replace("SHUTDOWN", str(shutdown)), env)
    assert finished.returncode == 0, finished.stderr
    assert finished.result == {"status": 0}
    return [span.name for span in receiver.spans()]


def test_shutdown_prepared_exports_what_a_process_ending_with_os_exit_holds(receiver: OtlpReceiver) -> None:
    assert _run_child(receiver, shutdown=True) == ["in the child"]


def test_without_it_a_process_ending_with_os_exit_loses_its_spans(receiver: OtlpReceiver) -> None:
    assert _run_child(receiver, shutdown=False) == []


def test_restore_log_export_puts_the_handler_back_after_the_root_handlers_are_replaced(
    receiver: OtlpReceiver,
) -> None:
    script = (
        REPORT
        + """
import logging
import tasklens
from tasklens.telemetry.logs import restore_log_export
telemetry = tasklens.setup(process_metrics=False)
root = logging.getLogger()
root.handlers = [logging.StreamHandler()]  # what Celery's worker does when it sets logging up
logging.getLogger("app").warning("lost")
restored = restore_log_export()
logging.getLogger("app").warning("exported")
telemetry.force_flush()
report({"restored": restored, "again": restore_log_export()})
"""
    )
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_TRACES_EXPORTER="none",
    )
    finished = run_python(script, env)
    assert finished.returncode == 0, finished.stderr
    assert finished.result == {"restored": True, "again": False}
    assert [log.body for log in receiver.logs()] == ["exported"]
