"""No leaks: thousands of tasks with retries and failures leave nothing attached, open or growing."""

from __future__ import annotations

import gc
import logging
import threading
import tracemalloc
from typing import Any

from celery import Celery
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from tasklens.celery import CeleryInstrumentor, current_task_fields
from tests.dramatiq.conftest import CountingProcessor, Telemetry

#: Tasks run in all; the last ``TRACED`` of them under tracemalloc, which slows each tenfold.
TASKS = 10_000
TRACED = 1_000
#: How much the second half of the traced tasks may add to traced memory over the first half, in
#: bytes: well under one span per task (a leaked span with its attributes is over 1 KiB).
MAX_GROWTH_BYTES = 64 * 1024


def test_ten_thousand_tasks_with_retries_and_failures_leave_no_context_no_open_span_and_flat_memory(
    instrument: Any, unique_name: str
) -> None:
    # Spans are counted, not kept: an exporter or a recording sampler would hold every one.
    counter = CountingProcessor()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(counter)
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    app = Celery(unique_name, set_as_current=False)
    app.conf.update(task_always_eager=True, task_store_eager_result=False)

    @app.task(bind=True, name=f"{unique_name}.mixed", max_retries=1, default_retry_delay=0, shared=False)
    def mixed(self: Any, n: int) -> int:
        if n % 10 == 0:
            raise ValueError("fails")
        if n % 10 == 1 and self.request.retries == 0:
            raise self.retry(exc=KeyError("again"))
        return n

    empty = otel_context.get_current()
    # Celery logs every failure with its traceback, and pytest keeps every record it captures:
    # silenced, so that only what tasks and their telemetry keep is measured.
    logging.disable(logging.CRITICAL)
    try:
        for n in range(TASKS - TRACED):
            mixed.delay(n)
        gc.collect()
        tracemalloc.start()
        for n in range(TRACED // 2):
            mixed.delay(n)
        gc.collect()
        halfway = tracemalloc.get_traced_memory()[0]
        for n in range(TRACED // 2):
            mixed.delay(n)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - halfway
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)
    assert growth < MAX_GROWTH_BYTES, f"memory grew by {growth} bytes over {TRACED // 2} tasks"
    assert otel_context.get_current() == empty
    assert counter.started == counter.ended
    # Every task is a process span; one in ten is retried once (the retry runs eagerly, nested).
    assert counter.started == TASKS + TASKS // 10
    tracer_provider.shutdown()


def test_worker_threads_keep_no_context_after_many_tasks(
    telemetry: Telemetry, instrumented: CeleryInstrumentor, unique_name: str
) -> None:
    from celery.contrib.testing.worker import start_worker

    app = Celery(unique_name, broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(task_default_queue=unique_name, worker_hijack_root_logger=False)
    concurrency = 4

    @app.task(bind=True, name=f"{unique_name}.work", max_retries=1, default_retry_delay=0, shared=False)
    def work(self: Any, n: int) -> None:
        if n % 3 == 0:
            raise ValueError("fails")
        if n % 3 == 1 and self.request.retries == 0:
            raise self.retry(exc=KeyError("again"))

    count = 150
    for n in range(count):
        work.delay(n)
    with start_worker(
        app, pool="threads", concurrency=concurrency, perform_ping_check=False, loglevel="WARNING"
    ) as worker:
        telemetry.wait_for_spans("process ", count + count // 3, 60)
        # Then every pool thread says what it holds outside a task: the barrier makes each probe
        # run on a thread of its own.
        barrier = threading.Barrier(concurrency, timeout=30)

        def probe() -> tuple[int, Any, Any]:
            barrier.wait()
            return threading.get_ident(), otel_context.get_current(), current_task_fields()

        futures = [worker.pool.executor.submit(probe) for _ in range(concurrency)]
        results = [future.result(timeout=30) for future in futures]
    assert len({ident for ident, _, _ in results}) == concurrency
    assert all(not dict(ctx) for _, ctx, _ in results), results
    assert all(fields is None for _, _, fields in results)
    assert telemetry.counter.started == telemetry.counter.ended
