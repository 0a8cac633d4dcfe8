"""End to end with real processes: a FastAPI app enqueues, the ``dramatiq`` CLI works, OTLP out.

The ``dramatiq`` CLI runs as a subprocess with two worker processes of four threads, its
broker module either calling ``tasklens.setup()`` at import or instrumented with no code by
``opentelemetry-instrument``. A FastAPI app in the test process, instrumented by
opentelemetry-instrumentation-fastapi, sends 500 messages from its request handlers. Once every
message is processed the CLI gets SIGTERM, like a deployment stopping it, and the test's OTLP
receiver must then hold exactly one process span per message, each in the trace of the request
that sent it, from both worker processes, and their metrics.

Spans are exported in batches only every minute here (``OTEL_BSP_SCHEDULE_DELAY``), so every
span the receiver holds was flushed when the workers shut down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.e2e import tasks
from tests.otlp_receiver import SPAN_KIND_CONSUMER, OtlpReceiver, ReceivedMetricPoint
from tests.telemetry.python_process import ROOT, environment

pytestmark = pytest.mark.slow

#: Messages sent per run, and how many each request sends.
MESSAGES = 500
PER_REQUEST = 5
#: Bounds on each phase of a run, in seconds.
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
#: Worker processes and threads per process given to the CLI.
PROCESSES, THREADS = 2, 4

BIN = Path(sys.executable).parent


@dataclass
class Broker:
    kind: str
    url: str
    namespace: str
    queue: str


@dataclass
class Producer:
    client: TestClient
    spans: InMemorySpanExporter
    broker: dramatiq.Broker


@pytest.fixture
def counter(redis_client: Any, unique_name: str) -> Iterator[str]:
    key = f"{unique_name}:processed"
    yield key
    redis_client.delete(key, f"{key}:processes", f"{key}:go")  # and the processes' meeting point


@pytest.fixture
def redis_broker(redis_url: str, redis_client: Any, unique_name: str) -> Iterator[Broker]:
    yield Broker("redis", redis_url, unique_name, f"{unique_name}_q")
    keys = list(redis_client.scan_iter(match=f"{unique_name}:*", count=500))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def rabbitmq_broker(rabbitmq_url: str, unique_name: str) -> Iterator[Broker]:
    import pika

    queue = f"{unique_name}_q"
    yield Broker("rabbitmq", rabbitmq_url, "", queue)
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


def make_producer(broker: Broker, redis_url: str, counter_key: str) -> Producer:
    """The web app: FastAPI, instrumented, whose handler sends messages through the broker."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    if broker.kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        producer_broker: dramatiq.Broker = RedisBroker(url=broker.url, namespace=broker.namespace)
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        producer_broker = RabbitmqBroker(url=broker.url)
    # Only this app's middleware, even if something in this process instrumented every broker.
    producer_broker.middleware[:] = [
        m for m in producer_broker.middleware if not isinstance(m, OpenTelemetryMiddleware)
    ]
    producer_broker.add_middleware(
        OpenTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    )
    work = tasks.declare_work(producer_broker, broker.queue, redis_url, counter_key)

    app = FastAPI()

    @app.post("/jobs")
    def enqueue(count: int) -> dict[str, Any]:
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        message_ids = [work.send(n).message_id for n in range(count)]
        return {"trace_id": trace_id, "message_ids": message_ids}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    return Producer(TestClient(app), spans, producer_broker)


def worker_command(zero_code: bool) -> list[str]:
    dramatiq_cli = str(BIN / "dramatiq")
    args = ["-p", str(PROCESSES), "-t", str(THREADS)]
    if zero_code:
        return [str(BIN / "opentelemetry-instrument"), dramatiq_cli, "tests.e2e.app_plain", *args]
    return [dramatiq_cli, "tests.e2e.app_with_setup", *args]


def worker_env(
    broker: Broker, receiver: OtlpReceiver, redis_url: str, counter_key: str, **variables: str
) -> dict[str, str]:
    settings = {
        "TASKLENS_E2E_BROKER": broker.kind,
        "TASKLENS_E2E_BROKER_URL": broker.url,
        "TASKLENS_E2E_NAMESPACE": broker.namespace,
        "TASKLENS_E2E_QUEUE": broker.queue,
        "TASKLENS_E2E_COUNTER_URL": redis_url,
        "TASKLENS_E2E_COUNTER_KEY": counter_key,
        "TASKLENS_E2E_PROCESSES": str(PROCESSES),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # opentelemetry-distro would pick gRPC; the receiver speaks OTLP over HTTP.
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_LOGS_EXPORTER": "none",
    }
    settings.update(variables)
    return environment(**settings)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Run:
    #: The trace id of the request that sent each message, by message id.
    sent: dict[str, str]
    #: The spans of the web app: server spans and send spans.
    producer_spans: tuple[ReadableSpan, ...]


def run_workers(
    broker: Broker,
    receiver: OtlpReceiver,
    redis_url: str,
    counter_key: str,
    zero_code: bool,
    log: Path,
    messages: int = MESSAGES,
    **variables: str,
) -> Run:
    """Start the CLI, send the messages, wait until they are processed, SIGTERM, wait for exit."""
    client = redis.Redis.from_url(redis_url)
    producer = make_producer(broker, redis_url, counter_key)
    with log.open("w") as output:
        workers = subprocess.Popen(
            worker_command(zero_code),
            cwd=ROOT,
            env=worker_env(broker, receiver, redis_url, counter_key, **variables),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a failed test can stop all of it
        )
    try:
        wait_until(
            lambda: log.read_text().count("Worker process is ready for action.") == PROCESSES,
            BOOT_TIMEOUT,
            f"{PROCESSES} worker processes to boot",
        )
        sent: dict[str, str] = {}
        with producer.client:
            for _ in range(messages // PER_REQUEST):
                response = producer.client.post("/jobs", params={"count": PER_REQUEST})
                response.raise_for_status()
                body = response.json()
                sent.update(dict.fromkeys(body["message_ids"], body["trace_id"]))
        wait_until(
            lambda: int(client.get(counter_key) or 0) >= messages,
            DRAIN_TIMEOUT,
            f"the workers to process {messages} messages",
        )
        workers.send_signal(signal.SIGTERM)
        returncode = workers.wait(timeout=STOP_TIMEOUT)
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGKILL)
            workers.wait()
        producer.broker.close()
        client.close()
    assert returncode == 0, log.read_text()
    return Run(sent, producer.spans.get_finished_spans())


def check_producer_spans(run: Run) -> set[str]:
    """Each send span sits in the trace of the request (server span) that made it.

    Returns the send spans' ids.
    """
    by_id = {span.context.span_id: span for span in run.producer_spans}
    sends = [span for span in run.producer_spans if span.kind is trace.SpanKind.PRODUCER]
    assert len(sends) == MESSAGES
    for send in sends:
        message_id = str((send.attributes or {})["messaging.message.id"])
        assert format(send.context.trace_id, "032x") == run.sent[message_id]
        ancestor = send
        while ancestor.parent is not None and ancestor.kind is not trace.SpanKind.SERVER:
            ancestor = by_id[ancestor.parent.span_id]
        assert ancestor.kind is trace.SpanKind.SERVER
    return {format(send.context.span_id, "016x") for send in sends}


def check_worker_telemetry(receiver: OtlpReceiver, run: Run, send_span_ids: set[str]) -> None:
    process_spans = [span for span in receiver.spans() if span.kind == SPAN_KIND_CONSUMER]
    assert len(process_spans) == MESSAGES
    by_message = {span.attributes["messaging.message.id"]: span for span in process_spans}
    assert set(by_message) == set(run.sent), "one process span per message, none twice"
    for message_id, span in by_message.items():
        assert span.trace_id == run.sent[message_id], "in the trace of the request that sent it"
        assert span.parent_span_id in send_span_ids, "a child of its send span"

    instances = {span.resource["service.instance.id"] for span in process_spans}
    assert len(instances) == PROCESSES, f"process spans from {len(instances)} worker processes"

    points = receiver.metric_points()
    metric_instances = {point.resource.get("service.instance.id") for point in points}
    assert instances <= metric_instances, "metric points from every worker process"
    assert processed_count(points, instances) == MESSAGES


def processed_count(points: list[ReceivedMetricPoint], instances: set[str]) -> float:
    """The final value of the consumed-messages counter, summed over the worker processes."""
    latest: dict[tuple[Any, ...], float] = defaultdict(float)
    for point in points:
        instance = point.resource.get("service.instance.id")
        if point.name != "messaging.client.consumed.messages" or instance not in instances:
            continue
        series = (instance, tuple(sorted(point.attributes.items())))
        latest[series] = max(latest[series], point.value)  # cumulative: the last export is the largest
    return sum(latest.values())


def run_and_check(broker: Broker, redis_url: str, counter: str, zero_code: bool, tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        run = run_workers(broker, receiver, redis_url, counter, zero_code, tmp_path / "workers.log")
        send_span_ids = check_producer_spans(run)
        check_worker_telemetry(receiver, run, send_span_ids)
        assert receiver.rejected == 0


@pytest.mark.redis
def test_setup_at_import_on_redis(redis_broker: Broker, redis_url: str, counter: str, tmp_path: Path) -> None:
    run_and_check(redis_broker, redis_url, counter, zero_code=False, tmp_path=tmp_path)


@pytest.mark.redis
def test_zero_code_on_redis(redis_broker: Broker, redis_url: str, counter: str, tmp_path: Path) -> None:
    run_and_check(redis_broker, redis_url, counter, zero_code=True, tmp_path=tmp_path)


@pytest.mark.redis
@pytest.mark.rabbitmq
def test_setup_at_import_on_rabbitmq(
    rabbitmq_broker: Broker, redis_url: str, counter: str, tmp_path: Path
) -> None:
    run_and_check(rabbitmq_broker, redis_url, counter, zero_code=False, tmp_path=tmp_path)


@pytest.mark.redis
@pytest.mark.rabbitmq
def test_zero_code_on_rabbitmq(rabbitmq_broker: Broker, redis_url: str, counter: str, tmp_path: Path) -> None:
    run_and_check(rabbitmq_broker, redis_url, counter, zero_code=True, tmp_path=tmp_path)


@pytest.mark.redis
def test_logs_from_actors_are_flushed_when_the_workers_stop(
    redis_broker: Broker, redis_url: str, counter: str, tmp_path: Path
) -> None:
    with OtlpReceiver() as receiver:
        run = run_workers(
            redis_broker,
            receiver,
            redis_url,
            counter,
            zero_code=False,
            log=tmp_path / "workers.log",
            messages=20,
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_BLRP_SCHEDULE_DELAY="60000",  # only the flush at shutdown exports them
            TASKLENS_E2E_LOG="1",
        )
        process_spans = {
            span.attributes["messaging.message.id"]: span
            for span in receiver.spans()
            if span.kind == SPAN_KIND_CONSUMER
        }
        logs = [log for log in receiver.logs() if log.body == tasks.LOG_LINE]
    assert len(logs) == len(run.sent) == 20
    for log in logs:
        message_id = log.attributes["dramatiq_message_id"]
        assert log.attributes["dramatiq_actor_name"] == tasks.ACTOR_NAME
        span = process_spans[message_id]
        assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)
        assert log.trace_id == run.sent[message_id]
