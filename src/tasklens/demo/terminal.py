"""The terminal demo: a web app enqueues work, a worker runs it, the traces print as trees."""

from __future__ import annotations

import logging
import time

import dramatiq
import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console

from tasklens import semconv
from tasklens.demo.actors import declare_actors
from tasklens.demo.broker import demo_broker
from tasklens.demo.serving import BackgroundServer
from tasklens.demo.tree import trace_trees
from tasklens.demo.webapp import create_demo_app
from tasklens.dramatiq import OpenTelemetryMiddleware

__all__ = ["run_terminal_demo"]

#: Process spans the three requests produce: two email attempts, one reminder, three pipeline steps.
EXPECTED_PROCESS_SPANS = 6
#: Process spans of the Celery chord: three thumbnails and the album.
EXPECTED_CHORD_SPANS = 4
#: How long the demo waits for the worker, in seconds.
DEADLINE_S = 30.0


def _process_spans(spans: list[ReadableSpan], system: str) -> int:
    return sum(
        1
        for s in spans
        if s.name.startswith("process ") and (s.attributes or {}).get(semconv.MESSAGING_SYSTEM) == system
    )


def _wait_for_process_spans(exporter: InMemorySpanExporter, count: int, system: str) -> list[ReadableSpan]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        spans = list(exporter.get_finished_spans())
        if _process_spans(spans, system) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def _run_celery_chord(
    on_redis: bool,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    exporter: InMemorySpanExporter,
) -> tuple[str, list[ReadableSpan]]:
    """Send the demo's Celery chord to a worker in this process; its spans once the album ran."""
    from tasklens.celery import CeleryInstrumentor
    from tasklens.demo.celery_app import publish_album
    from tasklens.demo.celery_worker import send_chord, start_celery_demo

    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    celery = start_celery_demo(on_redis=on_redis, prefork=False)
    try:
        # As a web request would: one span around the sends, so the chord is one trace.
        with tracer_provider.get_tracer(__name__).start_as_current_span("publish album"):
            send_chord()
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            spans = list(exporter.get_finished_spans())
            if any(
                (s.attributes or {}).get(semconv.CELERY_TASK_NAME) == publish_album.name
                and s.name.startswith("process ")
                for s in spans
            ):
                break
            time.sleep(0.05)
    finally:
        celery.stop()
        instrumentor.uninstrument()
    return celery.description, list(exporter.get_finished_spans())


def run_terminal_demo(console: Console | None = None, *, prefer_redis: bool = True) -> int:
    """Run the demo once and print its traces; return the exit code."""
    console = console or Console()
    demo = demo_broker(prefer_redis=prefer_redis)
    broker = demo.broker
    assert broker is not None
    console.print(f"[bold]Broker:[/] {demo.description}")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "tasklens-demo"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    trace.set_tracer_provider(tracer_provider)  # the actors' own spans join the traces
    # The failures are part of the show: they print in the trees, not as log tracebacks.
    logging.getLogger("dramatiq").setLevel(logging.CRITICAL)
    broker.add_middleware(
        OpenTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)
    )
    actors = declare_actors(broker)
    app = create_demo_app(actors)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
    )

    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    server = BackgroundServer(app).start()
    base_url = server.url
    try:
        console.print(f"[bold]Web app:[/] {base_url}  (POST /signup, /reminders, /etl)")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            for path in ("/signup", "/reminders", "/etl"):
                response = client.post(path)
                console.print(f"POST {path} -> {response.status_code} {response.json()}")
        _wait_for_process_spans(exporter, EXPECTED_PROCESS_SPANS, semconv.MESSAGING_SYSTEM_DRAMATIQ)
        celery_description, spans = _run_celery_chord(
            demo.namespace is not None, tracer_provider, meter_provider, exporter
        )
        console.print(f"[bold]Celery:[/] {celery_description}: a chord of three thumbnails and an album")
    finally:
        server.stop()
        worker.stop()
        demo.close()
        tracer_provider.shutdown()
        meter_provider.shutdown()

    console.print()
    for tree in trace_trees(spans):
        console.print(tree)
        console.print()
    processed = _process_spans(spans, semconv.MESSAGING_SYSTEM_DRAMATIQ)
    if processed < EXPECTED_PROCESS_SPANS:
        console.print(
            f"[red]Only {processed} of {EXPECTED_PROCESS_SPANS} messages were processed in time.[/]"
        )
        return 1
    chord_runs = _process_spans(spans, semconv.MESSAGING_SYSTEM_CELERY)
    if chord_runs < EXPECTED_CHORD_SPANS:
        console.print(f"[red]Only {chord_runs} of the chord's {EXPECTED_CHORD_SPANS} tasks ran in time.[/]")
        return 1
    console.print(
        f"[green]{processed} messages processed, {chord_runs} Celery tasks run, {len(spans)} spans in"
        f" {len(trace_trees(spans))} traces.[/]"
    )
    return 0
