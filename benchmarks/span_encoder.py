"""Experiment: an OTLP span encoder that writes protobuf bytes directly and reuses what repeats.

The stock exporter builds a tree of protobuf message objects for every batch (one per span,
attribute, value, status, ...) and then serializes it; on this machine that is about 34-60 µs
per span, spent on the export thread while it holds the GIL the worker threads need. Spans from
one Dramatiq route differ in little but their ids, times and message id, so this encoder writes
the wire format itself and keeps the encoded bytes of every (key, value) attribute pair it has
seen (except for keys that turn out to have many distinct values, such as message ids), of every
span name, resource and scope.

It is an experiment for the benchmark (``--variants tasklens-fast-encoder``), not part of
tasklens: :func:`install` swaps it into the OTLP/HTTP span exporter of this process, and
``python -m benchmarks.hooks`` checks that its output parses to the same request as the stock
encoder's before timing both.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

__all__ = ["SpanEncoder", "install"]

#: Distinct values cached per attribute key before the key counts as high-cardinality.
MAX_VALUES_PER_KEY = 256

#: OTLP ``Span.SpanKind`` numbers.
_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}

#: ``SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`` and ``SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK``.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 is sent as its two's complement, ten bytes long
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _string(field: int, value: str | None) -> bytes:
    return _length_delimited(field, value.encode()) if value else b""


def _any_value(value: Any) -> bytes:
    """An ``AnyValue`` message body."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _tag(2, 0) + _varint(int(value))
    if isinstance(value, str):
        return _length_delimited(1, value.encode())
    if isinstance(value, int):
        return _tag(3, 0) + _varint(value)
    if isinstance(value, float):
        return _tag(4, 1) + _double(value)
    if isinstance(value, bytes):
        return _length_delimited(7, value)
    if isinstance(value, Sequence):
        return _length_delimited(5, b"".join(_length_delimited(1, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _length_delimited(
            6, b"".join(_length_delimited(1, _key_value(str(k), v)) for k, v in value.items())
        )
    raise TypeError(f"cannot encode {type(value).__name__} attribute value {value!r}")


def _key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message body."""
    return _length_delimited(1, key.encode()) + _length_delimited(2, _any_value(value))


_TRACE_ID = _tag(1, 2) + bytes((16,))
_SPAN_ID = _tag(2, 2) + bytes((8,))
_PARENT_ID = _tag(4, 2) + bytes((8,))
_SPAN_FIELD = _tag(2, 2)
_UNSET_STATUS = _tag(15, 2) + b"\x00"
_LOCAL_FLAGS = _tag(16, 5) + _fixed32(_HAS_IS_REMOTE)
_REMOTE_PARENT_FLAGS = _tag(16, 5) + _fixed32(_HAS_IS_REMOTE | _IS_REMOTE)
#: Start and end times: tag 7 and tag 8, each a fixed64.
_times = struct.Struct("<BQBQ").pack


class SpanEncoder:
    """Encodes finished SDK spans into an ``ExportTraceServiceRequest``, as bytes.

    Safe to share between threads: its caches only ever hold correct bytes, and a race at worst
    encodes something twice. Example::

        data = SpanEncoder().encode(spans)
    """

    def __init__(self) -> None:
        self._attributes: dict[tuple[int, str, type, Any], bytes] = {}
        self._values_per_key: dict[str, int] = {}
        self._wide_keys: set[str] = set()
        self._names: dict[tuple[str, Any], bytes] = {}
        self._resources: dict[Any, bytes] = {}
        self._scopes: dict[Any, bytes] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized request for ``spans``, grouped by resource and scope as OTLP wants."""
        # Grouped by identity: hashing an SDK Resource serializes its attributes to JSON.
        groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
        for span in spans:
            resource, scope = span.resource, span.instrumentation_scope
            by_scope = groups.get(id(resource))
            if by_scope is None:
                by_scope = groups[id(resource)] = (resource, {})
            encoded = by_scope[1].get(id(scope))
            if encoded is None:
                encoded = by_scope[1][id(scope)] = (scope, [])
            encoded[1].append(self._span(span))
        request = bytearray()
        for resource, by_scope in groups.values():
            body = bytearray(self._resource(resource))
            for scope, encoded_spans in by_scope.values():
                scope_spans = self._scope(scope) + b"".join(encoded_spans)
                if scope is not None and scope.schema_url:
                    scope_spans += _string(3, scope.schema_url)
                body += _length_delimited(2, scope_spans)
            body += _string(3, resource.schema_url)
            request += _length_delimited(1, bytes(body))
        return bytes(request)

    def _span(self, span: ReadableSpan) -> bytes:
        """A ``Span`` as a complete ``ScopeSpans.spans`` field (tag, length, body)."""
        context = span.get_span_context()
        parent = span.parent
        parts = [
            _TRACE_ID,
            context.trace_id.to_bytes(16, "big"),
            _SPAN_ID,
            context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state:
            parts.append(_string(3, ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
        if parent is not None:
            parts.append(_PARENT_ID)
            parts.append(parent.span_id.to_bytes(8, "big"))
        name_key = (span.name, span.kind)
        name = self._names.get(name_key)
        if name is None:
            if len(self._names) >= MAX_VALUES_PER_KEY:
                self._names.clear()
            name = self._names[name_key] = _string(5, span.name) + _tag(6, 0) + _varint(_KINDS[span.kind])
        parts.append(name)
        parts.append(_times(0x39, span.start_time or 0, 0x41, span.end_time or 0))
        attributes = span.attributes
        if attributes:
            self._attribute_fields(9, attributes, parts)
        if span.dropped_attributes:
            parts.append(_tag(10, 0) + _varint(span.dropped_attributes))
        events = span.events
        if events:
            for event in events:
                body = [_tag(1, 1), _fixed64(event.timestamp), _string(2, event.name)]
                if event.attributes:
                    self._attribute_fields(3, event.attributes, body)
                parts.append(_length_delimited(11, b"".join(body)))
            if span.dropped_events:
                parts.append(_tag(12, 0) + _varint(span.dropped_events))
        links = span.links
        if links:
            for link in links:
                body = [_TRACE_ID, link.context.trace_id.to_bytes(16, "big")]
                body += [_SPAN_ID, link.context.span_id.to_bytes(8, "big")]
                if link.attributes:
                    self._attribute_fields(4, link.attributes, body)
                body.append(
                    _tag(6, 5) + _fixed32(_HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0))
                )
                parts.append(_length_delimited(13, b"".join(body)))
            if span.dropped_links:
                parts.append(_tag(14, 0) + _varint(span.dropped_links))
        status = span.status
        if status.status_code.value or status.description:
            body_bytes = _string(2, status.description)
            if status.status_code.value:
                body_bytes += _tag(3, 0) + _varint(status.status_code.value)
            parts.append(_length_delimited(15, body_bytes))
        else:
            parts.append(_UNSET_STATUS)
        parts.append(_REMOTE_PARENT_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS)
        body = b"".join(parts)
        return _SPAN_FIELD + _varint(len(body)) + body

    def _attribute_fields(self, field: int, attributes: Mapping[str, Any], out: list[bytes]) -> None:
        """Append each attribute as a complete ``KeyValue`` field of number ``field`` to ``out``."""
        cache, wide = self._attributes, self._wide_keys
        # The SDK's BoundedAttributes copies to a plain dict in C; iterating it goes through Python.
        items = attributes.copy().items() if hasattr(attributes, "copy") else attributes.items()
        for key, value in items:
            if key in wide:
                out.append(_length_delimited(field, _key_value(key, value)))
                continue
            cache_key = (field, key, type(value), value)
            try:
                encoded = cache.get(cache_key)
            except TypeError:  # an unhashable value: encode it every time
                out.append(_length_delimited(field, _key_value(key, value)))
                continue
            if encoded is None:
                encoded = _length_delimited(field, _key_value(key, value))
                self._remember(cache_key, encoded)
            out.append(encoded)

    def _remember(self, cache_key: tuple[int, str, type, Any], encoded: bytes) -> None:
        key = cache_key[1]
        seen = self._values_per_key.get(key, 0) + 1
        self._values_per_key[key] = seen
        if seen > MAX_VALUES_PER_KEY:
            # Ids and timestamps: caching them would only grow the cache. Forget what was kept.
            self._wide_keys.add(key)
            for stale in [k for k in self._attributes if k[1] == key]:
                del self._attributes[stale]
            return
        self._attributes[cache_key] = encoded

    def _resource(self, resource: Any) -> bytes:
        encoded = self._resources.get(resource)
        if encoded is None:
            body = b"".join(_length_delimited(1, _key_value(k, v)) for k, v in resource.attributes.items())
            encoded = self._resources[resource] = _length_delimited(1, body)
        return encoded

    def _scope(self, scope: Any) -> bytes:
        encoded = self._scopes.get(scope)
        if encoded is None:
            body = b""
            if scope is not None:
                body = _string(1, scope.name) + _string(2, scope.version)
                body += b"".join(
                    _length_delimited(3, _key_value(k, v)) for k, v in (scope.attributes or {}).items()
                )
            encoded = self._scopes[scope] = _length_delimited(1, body)
        return encoded


class _Serialized:
    """Stands in for the protobuf request object the exporter serializes."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializePartialToString(self) -> bytes:
        return self.data

    SerializeToString = SerializePartialToString


def install() -> None:
    """Make this process's OTLP/HTTP span exporter use :class:`SpanEncoder`."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    encoder = SpanEncoder()
    trace_exporter.encode_spans = lambda spans: _Serialized(encoder.encode(spans))  # type: ignore[assignment]
