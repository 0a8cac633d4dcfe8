"""Log records emitted inside an actor carry the trace, the span, the message and the actor."""

from __future__ import annotations

from tests.otlp_receiver import SPAN_KIND_CONSUMER, OtlpReceiver
from tests.telemetry.python_process import REPORT, environment, run_python

ACTOR_LOGS = (
    REPORT
    + """
import logging
import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
import tasklens

broker = StubBroker()
dramatiq.set_broker(broker)
tasklens.setup(service_name="log-correlation")

FIELDS = ("otelTraceID", "otelSpanID", "dramatiq_message_id", "dramatiq_actor_name")
seen = []

class Keep(logging.Handler):
    def emit(self, record):
        seen.append({"message": record.getMessage(), **{f: getattr(record, f, None) for f in FIELDS}})

logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.INFO)

@dramatiq.actor(queue_name="logs")
def chatty(n):
    logging.getLogger("chatty").info("working on %d", n)

messages = [chatty.send(n) for n in range(3)]
logging.getLogger("outside").info("not in an actor")
worker = Worker(broker, worker_timeout=50)
worker.start()
broker.join("logs", timeout=10_000)
worker.join()
worker.stop()
report({"sent": {m.message_id: m.args[0] for m in messages}, "seen": seen})
"""
)


def test_records_inside_an_actor_carry_trace_span_message_and_actor(receiver: OtlpReceiver) -> None:
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="otlp",
    )
    finished = run_python(ACTOR_LOGS, env)
    assert finished.returncode == 0, finished.stderr
    sent: dict[str, int] = finished.result["sent"]
    records = {record["message"]: record for record in finished.result["seen"]}
    process_spans = {
        span.attributes["messaging.message.id"]: span
        for span in receiver.spans()
        if span.kind == SPAN_KIND_CONSUMER
    }
    assert set(process_spans) == set(sent)

    for message_id, n in sent.items():
        record = records[f"working on {n}"]
        span = process_spans[message_id]
        assert record["otelTraceID"] == span.trace_id
        assert record["otelSpanID"] == span.span_id
        assert record["dramatiq_message_id"] == message_id
        assert record["dramatiq_actor_name"] == "chatty"

    outside = records["not in an actor"]
    assert outside["dramatiq_message_id"] is None and outside["dramatiq_actor_name"] is None

    exported = {log.body: log for log in receiver.logs()}
    for message_id, n in sent.items():
        log = exported[f"working on {n}"]
        assert (log.trace_id, log.span_id) == (
            process_spans[message_id].trace_id,
            process_spans[message_id].span_id,
        )
        assert log.attributes["dramatiq_message_id"] == message_id
        assert log.attributes["dramatiq_actor_name"] == "chatty"


def test_message_fields_without_setup() -> None:
    script = (
        REPORT
        + """
import logging
import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from tasklens.dramatiq import OpenTelemetryMiddleware

broker = StubBroker()
broker.add_middleware(OpenTelemetryMiddleware())
seen = []

class Keep(logging.Handler):
    def emit(self, record):
        fields = ("dramatiq_message_id", "dramatiq_actor_name")
        if record.name == "quiet":
            seen.append([getattr(record, field, None) for field in fields])

logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.INFO)

@dramatiq.actor(queue_name="fields", broker=broker)
def quiet():
    logging.getLogger("quiet").info("inside")

message = quiet.send()
worker = Worker(broker, worker_timeout=50)
worker.start()
broker.join("fields", timeout=10_000)
worker.join()
worker.stop()
report({"message_id": message.message_id, "seen": seen})
"""
    )
    finished = run_python(script, environment(OTEL_SDK_DISABLED="true"))
    assert finished.returncode == 0, finished.stderr
    assert finished.result["seen"] == [[finished.result["message_id"], "quiet"]]
