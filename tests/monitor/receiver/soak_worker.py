"""A worker process for the soak test: makes spans for a while and exports them with the SDK's
own OTLP/HTTP exporter (its batching, its retries on 503), writing down the ids of every span
the monitor acknowledged.

Usage: python -m tests.monitor.receiver.soak_worker ENDPOINT ACKNOWLEDGED_FILE SECONDS
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tasklens import semconv

#: Spans made per burst, and the pause between bursts, in seconds: about 1,000 spans a second.
BURST, PAUSE = 100, 0.1


class RecordingExporter(SpanExporter):
    """Exports through ``inner``; appends the span ids of each acknowledged batch to ``path``."""

    def __init__(self, inner: SpanExporter, path: Path) -> None:
        self.inner = inner
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            with self.path.open("a") as out:
                out.write("".join(f"{span.context.span_id:016x}\n" for span in spans if span.context))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def main(endpoint: str, acknowledged: Path, seconds: float) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "soak-worker"}))
    exporter = RecordingExporter(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=10), acknowledged)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=100_000, schedule_delay_millis=500)
    )
    tracer = provider.get_tracer("tasklens.dramatiq")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(BURST):
            with tracer.start_as_current_span(
                "process soak", attributes={semconv.MESSAGING_OPERATION_TYPE: semconv.OPERATION_PROCESS}
            ):
                pass
        time.sleep(PAUSE)
    provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]))
