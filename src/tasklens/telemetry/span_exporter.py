"""An OTLP/HTTP span exporter that serializes with :mod:`tasklens.telemetry.span_encoder`.

Everything but the encoding is the SDK's own ``OTLPSpanExporter``: endpoint, headers,
compression, timeouts, retries and TLS all come from the same ``OTEL_EXPORTER_OTLP_*``
settings. Chosen with ``TASKLENS_SPAN_ENCODER=fast``; when the SDK's exporter is not shaped
as expected, or a batch holds something the encoder does not know, it falls back to the stock
path, so the worst case is the stock exporter's speed, never a lost batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from tasklens.telemetry.span_encoder import encode_spans

__all__ = ["FastOTLPSpanExporter"]

logger = logging.getLogger(__name__)


class FastOTLPSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` with the cheaper span encoder.

    Parameters:
      **kwargs: As for ``OTLPSpanExporter`` (endpoint, headers, timeout, compression, ...).

    Example:
      >>> provider.add_span_processor(BatchSpanProcessor(FastOTLPSpanExporter()))
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        if getattr(self, "_shutdown", False) or not callable(getattr(client, "export", None)):
            return super().export(spans)
        try:
            payload = encode_spans(spans)
        except Exception:  # an attribute the encoder does not know: let the stock path judge it
            logger.debug("Falling back to the stock span encoder.", exc_info=True)
            return super().export(spans)
        limit = getattr(self, "_max_request_size", 0) or 0
        if limit > 0 and len(payload) > limit:
            logger.warning("Dropping span batch: %d bytes exceeds max_request_size %d.", len(payload), limit)
            return SpanExportResult.FAILURE
        result = client.export(payload)  # type: ignore[union-attr]
        return SpanExportResult.SUCCESS if getattr(result, "success", False) else SpanExportResult.FAILURE
