"""The terminal demo: a web app enqueues work, a worker runs it, the traces print as trees."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
import httpx
import uvicorn
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
from tasklens.demo.tree import trace_trees
from tasklens.demo.webapp import create_demo_app
from tasklens.dramatiq import OpenTelemetryMiddleware

__all__ = ["run_terminal_demo"]

#: Process spans the three requests produce: two email attempts, one reminder, three pipeline steps.
EXPECTED_PROCESS_SPANS = 6
#: How long the demo waits for the worker, in seconds.
DEADLINE_S = 30.0


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo owns Ctrl-C
        pass


def _serve(app: object) -> tuple[_Server, threading.Thread, str]:
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name="demo-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo web app did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


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
    console.print(f"[bold]Broker:[/] {demo.description}")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "tasklens-demo"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    trace.set_tracer_provider(tracer_provider)  # the actors' own spans join the traces
    # The failures are part of the show: they print in the trees, not as log tracebacks.
    logging.getLogger("dramatiq").setLevel(logging.CRITICAL)
    demo.broker.add_middleware(
        OpenTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)
    )
    actors = declare_actors(demo.broker)
    app = create_demo_app(actors)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
    )

    worker = dramatiq.Worker(demo.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    server, thread, base_url = _serve(app)
    try:
        console.print(f"[bold]Web app:[/] {base_url}  (POST /signup, /reminders, /reports)")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            for path in ("/signup", "/reminders", "/reports"):
                response = client.post(path)
                console.print(f"POST {path} -> {response.status_code} {response.json()}")
        spans = _wait_for_process_spans(exporter, EXPECTED_PROCESS_SPANS)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
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
