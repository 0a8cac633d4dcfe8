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

from tasklens.demo.actors import declare_actors
from tasklens.demo.broker import demo_broker
from tasklens.demo.serving import BackgroundServer
from tasklens.demo.tree import trace_trees
from tasklens.demo.webapp import create_demo_app
from tasklens.dramatiq import OpenTelemetryMiddleware

__all__ = ["run_terminal_demo"]

#: Process spans the three requests produce: two email attempts, one reminder, three pipeline steps.
EXPECTED_PROCESS_SPANS = 6
#: How long the demo waits for the worker, in seconds.
DEADLINE_S = 30.0


def _wait_for_process_spans(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        spans = list(exporter.get_finished_spans())
        if sum(1 for s in spans if s.name.startswith("process ")) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


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
        spans = _wait_for_process_spans(exporter, EXPECTED_PROCESS_SPANS)
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
    processed = sum(1 for s in spans if s.name.startswith("process "))
    if processed < EXPECTED_PROCESS_SPANS:
        console.print(
            f"[red]Only {processed} of {EXPECTED_PROCESS_SPANS} messages were processed in time.[/]"
        )
        return 1
    console.print(
        f"[green]{processed} messages processed, {len(spans)} spans in {len(trace_trees(spans))} traces.[/]"
    )
    return 0
