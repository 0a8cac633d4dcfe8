"""End to end with real processes: a FastAPI app sends Celery tasks, the ``celery`` CLI runs them.

``celery worker -P prefork -c 2`` runs as a subprocess, its app module either calling
``tasklens.setup()`` at import or instrumented with no code by ``opentelemetry-instrument`` (with
opentelemetry-instrumentation-celery installed too). Its pool processes are recycled after a few
tasks (``--max-tasks-per-child``), each recycle an ``os._exit()`` that runs no ``atexit`` handler.
One run keeps its pool processes to the end, each holding fewer spans than a batch, so that only
their exit at warm shutdown exports them. A FastAPI app in the test process, instrumented by
opentelemetry-instrumentation-fastapi and tasklens, sends the tasks from its request handlers.
Once every task ran, the worker gets SIGTERM (a warm shutdown), and the test's OTLP receiver
must then hold exactly one ``process`` span per task, each in the trace of the request that sent
it, from as many ``service.instance.id`` as there were pool processes, and their metrics.

Spans are exported in batches only every minute (``OTEL_BSP_SCHEDULE_DELAY``), so every span the
receiver holds was flushed when a pool process exited or the worker stopped.

Recycling costs about a second per pool process (billiard waits that long before a child exits),
so 500 tasks with ``--max-tasks-per-child=1`` would take four minutes on two cores: the 500-task
run recycles every 25 tasks, and another run recycles after every task, with 10 tasks.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tasklens.celery.contrib import TAKE_OVER_MESSAGE
from tests.e2e import celery_tasks
from tests.otlp_receiver import (
    SPAN_KIND_CONSUMER,
    SPAN_KIND_PRODUCER,
    OtlpReceiver,
    ReceivedMetricPoint,
    ReceivedSpan,
)
from tests.telemetry.python_process import ROOT, environment

pytestmark = pytest.mark.slow

#: Tasks each request handler sends.
PER_REQUEST = 5
#: Pool processes of the worker.
CONCURRENCY = 2
#: Bounds on each phase of a run, in seconds.
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
#: The hard time limit of the task that hangs, in seconds.
HARD_TIME_LIMIT_S = 2
#: What the worker logs when it is ready, and when it kills a child at its hard time limit.
READY_LINE = "ready."
HARD_LIMIT_LINE = "Hard time limit"
#: The instrumentation scope of opentelemetry-instrumentation-celery's spans.
CONTRIB_SCOPE = "opentelemetry.instrumentation.celery"

BIN = Path(sys.executable).parent


@dataclass
class Broker:
    url: str
    queue: str


@dataclass
class Producer:
    """The web app: FastAPI, instrumented, whose handler sends tasks."""

    client: TestClient
    spans: InMemorySpanExporter
    app: Celery


@dataclass
class Run:
    #: The trace id of the request that sent each task, by task id.
    sent: dict[str, str]
    #: The spans of the web app: server spans and send spans.
    producer_spans: tuple[ReadableSpan, ...]
    #: The ids of the tasks sent with a mode other than plain work, by mode.
    special: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def counter(redis_client: Any, unique_name: str) -> Iterator[str]:
    key = f"{unique_name}:runs"
    yield key
    redis_client.delete(key)


@pytest.fixture
def redis_broker(redis_url: str, redis_client: Any, unique_name: str) -> Iterator[Broker]:
    queue = f"{unique_name}_q"
    yield Broker(redis_url, queue)
    # kombu's keys for this queue: the list (and its priority siblings) and the exchange binding.
    keys = list(redis_client.scan_iter(match=f"{queue}*", count=500))
    keys += list(redis_client.scan_iter(match=f"_kombu.binding.{queue}", count=500))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def rabbitmq_broker(rabbitmq_url: str, unique_name: str) -> Iterator[Broker]:
    import pika

    queue = f"{unique_name}_q"
    yield Broker(rabbitmq_url, queue)
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
    finally:
        connection.close()


@pytest.fixture
def producer_instrumentation() -> Iterator[TracerProvider]:
    """tasklens's Celery instrumentation in the test process, for the web app's send spans."""
    instrumentor = CeleryInstrumentor()
    assert not instrumentor.is_instrumented_by_opentelemetry, "something else instrumented Celery here"
    # Shut down by the instrumentation's flush at exit only.
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(shutdown_on_exit=False)
    )
    yield tracer_provider
    instrumentor.uninstrument()


def make_producer(tracer_provider: TracerProvider, broker: Broker) -> Producer:
    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    app = celery_tasks.make_app(broker.url, broker.queue)
    work = app.tasks[celery_tasks.TASK_NAME]

    web = FastAPI()

    @web.post("/jobs")
    def enqueue(
        count: int, mode: str = celery_tasks.MODE_WORK, time_limit: int | None = None
    ) -> dict[str, Any]:
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        task_ids = [work.apply_async((n, mode), time_limit=time_limit).id for n in range(count)]
        return {"trace_id": trace_id, "task_ids": task_ids}

    FastAPIInstrumentor.instrument_app(web, tracer_provider=tracer_provider)
    return Producer(TestClient(web), spans, app)


def worker_command(zero_code: bool, pool: str, recycling: tuple[str, ...]) -> list[str]:
    module = "tests.e2e.celery_app_plain" if zero_code else "tests.e2e.celery_app_with_setup"
    command = [str(BIN / "celery"), "-A", module, "worker", "-P", pool, "-c", str(CONCURRENCY)]
    command += ["-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle", *recycling]
    if zero_code:
        return [str(BIN / "opentelemetry-instrument"), *command]
    return command


def celery_env(
    broker: Broker, receiver: OtlpReceiver, redis_url: str, counter: str, **variables: str
) -> dict[str, str]:
    settings = {
        "TASKLENS_E2E_BROKER_URL": broker.url,
        "TASKLENS_E2E_QUEUE": broker.queue,
        "TASKLENS_E2E_COUNTER_URL": redis_url,
        "TASKLENS_E2E_COUNTER_KEY": counter,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # opentelemetry-distro would pick gRPC; the receiver speaks OTLP over HTTP.
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_LOGS_EXPORTER": "none",
    }
    settings.update(variables)
    return environment(**settings)


def wait_until(
    condition: Any, timeout: float, what: str, log: Path, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process exited while waiting for {what}\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as a deployment stops the process, then wait for it to exit cleanly."""
    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the process did not stop within {STOP_TIMEOUT:.0f} s\n{log.read_text()[-3000:]}")
    assert returncode == 0, log.read_text()[-3000:]


def run_worker(
    producer: Producer,
    broker: Broker,
    receiver: OtlpReceiver,
    redis_url: str,
    counter: str,
    log: Path,
    *,
    tasks: int,
    zero_code: bool = False,
    max_tasks_per_child: int | None = None,
    special: tuple[str, ...] = (),
    variables: dict[str, str] | None = None,
    pool: str = "prefork",
    recycling: tuple[str, ...] = (),
) -> Run:
    """Start the worker, send the tasks (and one of each ``special`` mode), wait until every one
    ran (and the hanging one was killed), SIGTERM, wait for the exit."""
    assert tasks % PER_REQUEST == 0, f"tasks are sent {PER_REQUEST} per request"
    client = redis.Redis.from_url(redis_url)
    with log.open("w") as output:
        worker = subprocess.Popen(
            worker_command(zero_code, pool, recycling + _max_tasks(max_tasks_per_child)),
            cwd=ROOT,
            env=celery_env(broker, receiver, redis_url, counter, **(variables or {})),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a failed test can stop all of it
        )
    try:
        wait_until(lambda: READY_LINE in log.read_text(), BOOT_TIMEOUT, "the worker to boot", log, worker)
        sent: dict[str, str] = {}
        run = Run(sent, ())
        with producer.client:
            for mode in special:
                time_limit = HARD_TIME_LIMIT_S if mode == celery_tasks.MODE_HANG else None
                params: dict[str, Any] = {"count": 1, "mode": mode}
                if time_limit is not None:
                    params["time_limit"] = time_limit
                body = producer.client.post("/jobs", params=params).raise_for_status().json()
                sent[body["task_ids"][0]] = body["trace_id"]
                run.special[mode] = body["task_ids"][0]
            for _ in range(tasks // PER_REQUEST):
                body = producer.client.post("/jobs", params={"count": PER_REQUEST}).raise_for_status().json()
                sent.update(dict.fromkeys(body["task_ids"], body["trace_id"]))
        if celery_tasks.MODE_WAIT_FOR_SIGNAL in special:
            pid_key = counter + celery_tasks.PID_SUFFIX
            wait_until(lambda: client.get(pid_key) is not None, DRAIN_TIMEOUT, "the task's pid", log, worker)
            # SIGTERM from outside Celery (an operator, a supervisor) to the pool process.
            os.kill(int(client.get(pid_key) or 0), signal.SIGTERM)
            client.delete(pid_key)
        wait_until(
            lambda: int(client.get(counter) or 0) >= len(sent),
            DRAIN_TIMEOUT,
            f"the worker to run {len(sent)} tasks",
            log,
            worker,
        )
        if celery_tasks.MODE_HANG in special:
            wait_until(
                lambda: HARD_LIMIT_LINE in log.read_text(), DRAIN_TIMEOUT, "the hard time limit", log, worker
            )
        stop(worker, log)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        client.close()
    run.producer_spans = producer.spans.get_finished_spans()
    return run


def _max_tasks(max_tasks_per_child: int | None) -> tuple[str, ...]:
    return () if max_tasks_per_child is None else (f"--max-tasks-per-child={max_tasks_per_child}",)


def check_producer_spans(run: Run) -> dict[str, str]:
    """Each send span sits in the trace of the request (server span) that made it.

    Returns the send span's id by task id.
    """
    by_id = {span.context.span_id: span for span in run.producer_spans}
    sends = [span for span in run.producer_spans if span.kind is trace.SpanKind.PRODUCER]
    assert len(sends) == len(run.sent)
    send_ids: dict[str, str] = {}
    for send in sends:
        task_id = str((send.attributes or {})[semconv.MESSAGING_MESSAGE_ID])
        assert format(send.context.trace_id, "032x") == run.sent[task_id]
        ancestor = send
        while ancestor.parent is not None and ancestor.kind is not trace.SpanKind.SERVER:
            ancestor = by_id[ancestor.parent.span_id]
        assert ancestor.kind is trace.SpanKind.SERVER
        send_ids[task_id] = format(send.context.span_id, "016x")
    return send_ids


def process_spans(receiver: OtlpReceiver) -> list[ReceivedSpan]:
    return [span for span in receiver.spans() if span.kind == SPAN_KIND_CONSUMER]


def check_process_spans(receiver: OtlpReceiver, run: Run) -> dict[str, ReceivedSpan]:
    """Exactly one process span per task, each a child of its send span in its request's trace.

    Returns them by task id.
    """
    send_ids = check_producer_spans(run)
    spans = process_spans(receiver)
    assert len(spans) == len(run.sent), f"{len(spans)} process spans for {len(run.sent)} tasks"
    by_task = {span.attributes[semconv.MESSAGING_MESSAGE_ID]: span for span in spans}
    assert set(by_task) == set(run.sent), "one process span per task, none twice"
    for task_id, span in by_task.items():
        assert span.trace_id == run.sent[task_id], "in the trace of the request that sent it"
        assert span.parent_span_id == send_ids[task_id], "a child of its send span"
        assert span.attributes[semconv.MESSAGING_SYSTEM] == semconv.MESSAGING_SYSTEM_CELERY
    assert not [span for span in receiver.spans() if span.scope == CONTRIB_SCOPE], "each task traced once"
    assert receiver.rejected == 0
    return by_task


def check_pool_processes(spans: list[ReceivedSpan], max_tasks_per_child: int) -> set[str]:
    """Each pool process reported as its own instance, and none ran more than its share."""
    per_instance = Counter(span.resource["service.instance.id"] for span in spans)
    assert len(per_instance) >= math.ceil(len(spans) / max_tasks_per_child)
    assert max(per_instance.values()) <= max_tasks_per_child
    return set(per_instance)


def consumed_count(points: list[ReceivedMetricPoint]) -> float:
    """The final value of the consumed-tasks counter, summed over every process."""
    latest: dict[tuple[Any, ...], float] = defaultdict(float)
    for point in points:
        if point.name != semconv.CONSUMED_MESSAGES.name:
            continue
        series = (point.resource.get("service.instance.id"), tuple(sorted(point.attributes.items())))
        latest[series] = max(latest[series], point.value)  # cumulative: the last export is the largest
    return sum(latest.values())


def check_metrics(receiver: OtlpReceiver, instances: set[str], tasks: int, log: Path) -> None:
    points = receiver.metric_points()
    assert instances <= {point.resource.get("service.instance.id") for point in points}
    assert consumed_count(points) == tasks, log.read_text()[-5000:]


def recycled_run(
    tracer_provider: TracerProvider,
    broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
    *,
    tasks: int,
    max_tasks_per_child: int,
    zero_code: bool = False,
) -> Path:
    producer = make_producer(tracer_provider, broker)
    log = tmp_path / "worker.log"
    with OtlpReceiver() as receiver:
        run = run_worker(
            producer,
            broker,
            receiver,
            redis_url,
            counter,
            log,
            tasks=tasks,
            zero_code=zero_code,
            max_tasks_per_child=max_tasks_per_child,
        )
        spans = list(check_process_spans(receiver, run).values())
        instances = check_pool_processes(spans, max_tasks_per_child)
        check_metrics(receiver, instances, len(run.sent), log)
    return log


@pytest.mark.redis
def test_500_tasks_from_recycled_pool_processes_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    recycled_run(
        producer_instrumentation,
        redis_broker,
        redis_url,
        counter,
        tmp_path,
        tasks=500,
        max_tasks_per_child=25,
    )


@pytest.mark.redis
def test_a_pool_process_per_task_loses_nothing_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    recycled_run(
        producer_instrumentation, redis_broker, redis_url, counter, tmp_path, tasks=10, max_tasks_per_child=1
    )


@pytest.mark.redis
def test_zero_code_traces_each_task_once_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    log = recycled_run(
        producer_instrumentation,
        redis_broker,
        redis_url,
        counter,
        tmp_path,
        tasks=50,
        max_tasks_per_child=25,
        zero_code=True,
    )
    assert log.read_text().count(TAKE_OVER_MESSAGE) == 1, "one line says contrib's instrumentation is off"


@pytest.mark.redis
@pytest.mark.rabbitmq
def test_recycled_pool_processes_on_rabbitmq(
    producer_instrumentation: TracerProvider,
    rabbitmq_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    recycled_run(
        producer_instrumentation,
        rabbitmq_broker,
        redis_url,
        counter,
        tmp_path,
        tasks=50,
        max_tasks_per_child=10,
    )


@pytest.mark.redis
def test_tasks_whose_pool_process_is_killed_dies_or_is_terminated_get_one_span(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    producer = make_producer(producer_instrumentation, redis_broker)
    tasks = 10
    with OtlpReceiver() as receiver:
        run = run_worker(
            producer,
            redis_broker,
            receiver,
            redis_url,
            counter,
            tmp_path / "worker.log",
            tasks=tasks,
            max_tasks_per_child=5,
            special=(celery_tasks.MODE_HANG, celery_tasks.MODE_DIE, celery_tasks.MODE_WAIT_FOR_SIGNAL),
        )
        by_task = check_process_spans(receiver, run)
        points = receiver.metric_points()
    killed = by_task[run.special[celery_tasks.MODE_HANG]]
    assert killed.status_code == 2  # ERROR
    assert killed.attributes[semconv.ERROR_TYPE] == "TimeLimitExceeded"
    assert semconv.EVENT_CELERY_TIME_LIMIT in killed.events
    died = by_task[run.special[celery_tasks.MODE_DIE]]
    assert died.status_code == 2
    assert died.attributes[semconv.ERROR_TYPE] == "WorkerLostError"
    assert semconv.EVENT_CELERY_WORKER_LOST in died.events
    terminated = by_task[run.special[celery_tasks.MODE_WAIT_FOR_SIGNAL]]
    assert terminated.status_code == 2
    assert terminated.attributes[semconv.ERROR_TYPE] == "WorkerLostError"
    assert semconv.EVENT_CELERY_WORKER_LOST in terminated.events
    others = [span for task_id, span in by_task.items() if task_id not in run.special.values()]
    assert len(others) == tasks and all(span.status_code != 2 for span in others)
    assert consumed_count(points) == tasks + 3, "the lost tasks are counted once too"


@pytest.mark.redis
def test_beat_ticks_are_trace_roots_of_their_send_spans(
    redis_broker: Broker, redis_url: str, redis_client: Any, counter: str, tmp_path: Path
) -> None:
    log = tmp_path / "beat.log"
    ticks = 3
    with OtlpReceiver() as receiver:
        env = celery_env(redis_broker, receiver, redis_url, counter, TASKLENS_E2E_BEAT_INTERVAL="0.3")
        command = [str(BIN / "celery"), "-A", "tests.e2e.celery_app_with_setup", "beat", "-l", "info"]
        command += ["-s", str(tmp_path / "schedule")]
        with log.open("w") as output:
            beat = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(
                lambda: redis_client.llen(redis_broker.queue) >= ticks,
                BOOT_TIMEOUT,
                "beat's ticks",
                log,
                beat,
            )
            stop(beat, log)
        finally:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGKILL)
                beat.wait()
        sends = [span for span in receiver.spans() if span.kind == SPAN_KIND_PRODUCER]
    assert len(sends) == redis_client.llen(redis_broker.queue), "one send span per task beat sent"
    for send in sends:
        assert send.parent_span_id == "", "the tick is the root of its trace"
        assert send.attributes[semconv.CELERY_TASK_NAME] == celery_tasks.TASK_NAME
        assert send.resource["service.name"] == "e2e-celery-worker"
    assert len({send.trace_id for send in sends}) == len(sends), "a trace per tick"


@pytest.mark.redis
def test_pool_processes_recycled_for_memory_lose_nothing_logs_included_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    # A limit of 1 KiB: every pool process is over it after its first task, and is recycled.
    producer = make_producer(producer_instrumentation, redis_broker)
    log = tmp_path / "worker.log"
    with OtlpReceiver() as receiver:
        run = run_worker(
            producer,
            redis_broker,
            receiver,
            redis_url,
            counter,
            log,
            tasks=5,
            recycling=("--max-memory-per-child=1",),
            variables={
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_BLRP_SCHEDULE_DELAY": "60000",  # only the flush at exit exports them
                "TASKLENS_E2E_LOG": "1",
            },
        )
        by_task = check_process_spans(receiver, run)
        instances = check_pool_processes(list(by_task.values()), 1)
        check_metrics(receiver, instances, len(run.sent), log)
        logs = [record for record in receiver.logs() if record.body == celery_tasks.LOG_LINE]
    assert len(logs) == len(run.sent) == 5
    for record in logs:
        task_id = record.attributes[semconv.LOG_CELERY_TASK_ID]
        assert record.attributes[semconv.LOG_CELERY_TASK_NAME] == celery_tasks.TASK_NAME
        span = by_task[task_id]
        assert (record.trace_id, record.span_id) == (span.trace_id, span.span_id)
        assert record.resource["service.instance.id"] == span.resource["service.instance.id"]


@pytest.mark.redis
@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_flush_at_warm_shutdown_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
    pool: str,
) -> None:
    producer = make_producer(producer_instrumentation, redis_broker)
    log = tmp_path / "worker.log"
    with OtlpReceiver() as receiver:
        run = run_worker(producer, redis_broker, receiver, redis_url, counter, log, tasks=10, pool=pool)
        spans = list(check_process_spans(receiver, run).values())
        instances = {span.resource["service.instance.id"] for span in spans}
        assert len(instances) == 1, "one worker process"
        check_metrics(receiver, instances, len(run.sent), log)


@pytest.mark.redis
def test_pool_processes_that_are_never_recycled_flush_at_warm_shutdown_on_redis(
    producer_instrumentation: TracerProvider,
    redis_broker: Broker,
    redis_url: str,
    counter: str,
    tmp_path: Path,
) -> None:
    # Fewer spans per pool process than a batch (512): each still holds all of its own when
    # the worker stops, and only their exit at warm shutdown exports them.
    producer = make_producer(producer_instrumentation, redis_broker)
    log = tmp_path / "worker.log"
    with OtlpReceiver() as receiver:
        run = run_worker(producer, redis_broker, receiver, redis_url, counter, log, tasks=300)
        spans = list(check_process_spans(receiver, run).values())
        instances = {span.resource["service.instance.id"] for span in spans}
        assert len(instances) <= CONCURRENCY, "the pool processes the worker started, none replaced"
        check_metrics(receiver, instances, len(run.sent), log)
