"""The cost of tasklens's middleware hooks alone, layer by layer, with no broker in the way.

``python -m benchmarks.hooks`` calls ``before_enqueue``/``after_enqueue`` and
``before_process_message``/``after_process_message`` of ``OpenTelemetryMiddleware`` directly, on
a stub broker's messages created beforehand, under three set-ups:

- ``no-op providers``: the API's no-op tracer and meter: what is left is tasklens's own code plus
  the API calls it makes (an upper bound for "tasklens's own code");
- ``SDK, nothing exported``: SDK providers with no span processor and no metric reader: adds
  span creation, attribute cleaning, context propagation and metric aggregation;
- ``SDK, 10% sampled``: as above with ``ParentBased(TraceIdRatioBased(0.1))``;
- ``SDK, spans not recorded``: with the ``ALWAYS_OFF`` sampler, as for metrics only (the context
  still travels, nothing is recorded);
- ``setup(), ...``: the same three tracer set-ups with the meter provider ``tasklens.setup()``
  builds (``tasklens.telemetry.providers.build_meter_provider``, one OTLP/HTTP reader whose
  60 s interval never comes during a measurement): its exemplar filter and histogram export.

It also times the OTLP encoding of finished spans (what the export thread does per span, under
the GIL), with the SDK's encoder and with tasklens's (``tasklens.telemetry.span_encoder``),
after checking that both produce the same request. Every figure is CPU time of the calling thread
(``time.thread_time``), the fastest of several repetitions, in microseconds per message: on a
shared machine other processes take the CPU away but do not add to this thread's CPU time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main", "measure_hooks"]

#: The set-ups measured, in order.
SETUPS = (
    "no-op providers",
    "SDK, nothing exported",
    "SDK, 10% sampled",
    "SDK, spans not recorded",
    "setup(), 100%",
    "setup(), 10% sampled",
    "setup(), not recorded",
)

#: Messages per repetition.
DEFAULT_MESSAGES = 20_000

#: Repetitions per measurement; the fastest is reported.
REPEATS = 5


def _providers(setup: str) -> tuple[Any, Any]:
    from opentelemetry import metrics, trace

    if setup == "no-op providers":
        return trace.NoOpTracerProvider(), metrics.NoOpMeterProvider()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBasedTraceIdRatio

    sampler = {
        "SDK, 10% sampled": ParentBasedTraceIdRatio(0.1),
        "SDK, spans not recorded": ALWAYS_OFF,
        "setup(), 10% sampled": ParentBasedTraceIdRatio(0.1),
        "setup(), not recorded": ALWAYS_OFF,
    }.get(setup)
    tracer_provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    if setup.startswith("setup()"):
        return tracer_provider, _setup_meter_provider()
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _setup_meter_provider() -> Any:
    """The meter provider ``tasklens.setup()`` builds, exporting to a port nothing listens on."""
    import os

    from opentelemetry.sdk.resources import Resource

    from tasklens.telemetry import providers
    from tasklens.telemetry.settings import TelemetrySettings

    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    settings = TelemetrySettings.from_env({"OTEL_METRICS_EXPORTER": "otlp"})
    return providers.build_meter_provider(settings, Resource.create({"service.name": "hooks"}))


def _fastest_per_message(run: Callable[[], float], messages: int) -> float:
    return min(run() for _ in range(REPEATS)) / messages * 1e6


def measure_hooks(setup: str, messages: int) -> dict[str, float]:
    """Microseconds per message for the send hooks and the process hooks under ``setup``."""
    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.brokers.stub import StubBroker

    from tasklens.dramatiq import OpenTelemetryMiddleware

    tracer_provider, meter_provider = _providers(setup)
    broker = StubBroker()
    middleware = OpenTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)
    actor = dramatiq.actor(lambda: None, broker=broker, actor_name="noop", queue_name="bench")
    sent: list[Any] = []

    def send() -> float:
        batch = [actor.message() for _ in range(messages)]
        started = time.thread_time()
        for message in batch:
            middleware.before_enqueue(broker, message, None)
            middleware.after_enqueue(broker, message, None)
        elapsed = time.thread_time() - started
        sent[:] = batch
        return elapsed

    def process() -> float:
        proxies = [MessageProxy(message) for message in sent]
        started = time.thread_time()
        for proxy in proxies:
            middleware.before_process_message(broker, proxy)
            middleware.after_process_message(broker, proxy, result=None)
        return time.thread_time() - started

    result = {
        "send": _fastest_per_message(send, messages),
        "process": _fastest_per_message(process, messages),
    }
    broker.close()
    return result


def _finished_spans(count: int) -> list[Any]:
    """Spans as tasklens makes them (send and process), plus a few with every optional part."""
    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.brokers.stub import StubBroker
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    from tasklens.dramatiq import OpenTelemetryMiddleware

    finished: list[Any] = []

    class Keep(SpanExporter):
        def export(self, batch: Any) -> SpanExportResult:
            finished.extend(batch)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    broker = StubBroker()
    middleware = OpenTelemetryMiddleware(tracer_provider=provider)
    actor = dramatiq.actor(lambda: None, broker=broker, actor_name="noop", queue_name="bench")
    for _ in range(count // 2):
        message = actor.message()
        middleware.before_enqueue(broker, message, None)
        middleware.after_enqueue(broker, message, None)
        proxy = MessageProxy(message)
        middleware.before_process_message(broker, proxy)
        middleware.after_process_message(broker, proxy, result=None)
    broker.close()

    tracer = provider.get_tracer("bench.extra", "1.0", schema_url="https://opentelemetry.io/schemas/1.26.0")
    parent = tracer.start_span("parent")
    odd = tracer.start_span(
        "odd",
        context=__import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(
            parent
        ),
        kind=SpanKind.CLIENT,
        attributes={
            "b": True,
            "f": 1.5,
            "n": -3,
            "big": 2**40,
            "s": "é",
            "seq": (1, 2, 3),
            "strs": ("a", "b"),
        },
        links=[Link(parent.get_span_context(), {"link.attr": "x"})],
    )
    odd.add_event("happened", {"k": "v"})
    odd.set_status(Status(StatusCode.ERROR, "it broke"))
    odd.end()
    parent.set_status(Status(StatusCode.OK))
    parent.end()
    return finished


def measure_encoding(spans: int) -> dict[str, float]:
    """Microseconds per span to encode finished spans to OTLP bytes: the SDK's and tasklens's.

    Raises:
      AssertionError: if tasklens's request differs from the SDK's.
    """
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tasklens.telemetry.span_encoder import encode_spans as tasklens_encode

    finished = _finished_spans(spans)
    for start in range(0, len(finished), 512):
        batch = finished[start : start + 512]
        stock = ExportTraceServiceRequest.FromString(encode_spans(batch).SerializeToString())
        assert stock == ExportTraceServiceRequest.FromString(tasklens_encode(batch)), (
            "tasklens's encoder differs"
        )

    def stock_run() -> float:
        started = time.thread_time()
        for start in range(0, len(finished), 512):
            encode_spans(finished[start : start + 512]).SerializePartialToString()
        return time.thread_time() - started

    def tasklens_run() -> float:
        started = time.thread_time()
        for start in range(0, len(finished), 512):
            tasklens_encode(finished[start : start + 512])
        return time.thread_time() - started

    return {
        "stock": _fastest_per_message(stock_run, len(finished)),
        "tasklens": _fastest_per_message(tasklens_run, len(finished)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hooks", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    arguments = parser.parse_args(argv)
    print(f"µs per message, fastest of {REPEATS} x {arguments.messages:,}")
    print(f"{'set-up':<24}{'send hooks':>12}{'process hooks':>15}")
    for setup in SETUPS:
        costs = measure_hooks(setup, arguments.messages)
        print(f"{setup:<24}{costs['send']:>12.1f}{costs['process']:>15.1f}")
    encoding = measure_encoding(arguments.messages)
    print(
        f"OTLP encoding of a finished span (export thread), µs per span: stock {encoding['stock']:.1f}, "
        f"tasklens.telemetry.span_encoder {encoding['tasklens']:.1f}",
        flush=True,
    )
    # Skip interpreter shutdown: the providers' final export would wait on a closed port.
    import os

    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
