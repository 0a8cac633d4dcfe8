"""Forwarding of received OTLP payloads to an upstream endpoint (``--forward URL``).

What the receiver accepts is also sent, byte for byte and with the same content type and
encoding, to ``{URL}/v1/traces`` (``/v1/metrics``, ``/v1/logs``) from a background thread. The
request path only puts the payload on a bounded queue: when the upstream is slow or down,
payloads beyond the queue are dropped and counted, and ingest never waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ForwardStats", "OtlpForwarder"]

logger = logging.getLogger(__name__)

#: Payloads waiting to be forwarded before new ones are dropped.
DEFAULT_QUEUE_SIZE = 1000
#: Longest one forwarding request may take, in seconds.
DEFAULT_TIMEOUT = 10.0


@dataclass
class ForwardStats:
    """What the forwarder did so far.

    Parameters:
      forwarded(int): Payloads the upstream accepted (2xx).
      failed(int): Payloads the upstream refused or could not be reached for.
      dropped(int): Payloads dropped because the queue was full.
    """

    forwarded: int = 0
    failed: int = 0
    dropped: int = 0


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class OtlpForwarder:
    """Sends received payloads to an upstream OTLP/HTTP endpoint from its own thread.

    Parameters:
      endpoint(str): The upstream's base URL, like ``http://collector:4318``; the signal's path
        is appended.
      queue_size(int): Payloads queued before new ones are dropped.
      timeout(float): Longest one request may take, in seconds.

    Example:

      >>> forwarder = OtlpForwarder("http://127.0.0.1:4318")
      >>> forwarder.start()
      >>> forwarder.submit("/v1/traces", body, "application/x-protobuf", None)
    """

    def __init__(
        self, endpoint: str, *, queue_size: int = DEFAULT_QUEUE_SIZE, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"invalid forward URL {_redacted(endpoint)!r}: use http(s)://host:port")
        self.endpoint = endpoint.rstrip("/")
        self.stats = ForwardStats()
        self._timeout = timeout
        self._queue: queue.Queue[tuple[str, bytes, dict[str, str]] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="tasklens-otlp-forwarder", daemon=True)
        self._failing = False

    def start(self) -> None:
        """Start the forwarding thread (again, after ``close``)."""
        if self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="tasklens-otlp-forwarder", daemon=True)
        self._thread.start()

    def submit(self, path: str, body: bytes, content_type: str, content_encoding: str | None) -> bool:
        """Queue a payload for the upstream; whether it was queued (else dropped). Never blocks.

        Parameters:
          path(str): The signal's path, like ``/v1/traces``.
          body(bytes): The payload exactly as received.
          content_type(str): Its ``Content-Type``.
          content_encoding(str|None): Its ``Content-Encoding``, such as ``gzip``.
        """
        headers = {"Content-Type": content_type}
        if content_encoding:
            headers["Content-Encoding"] = content_encoding
        try:
            self._queue.put_nowait((path, body, headers))
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Forward what is queued (within ``timeout`` seconds) and stop.

        Parameters:
          timeout(float): Longest wait, in seconds.
        """
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._send(*item)

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(self.endpoint + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.stats.failed += 1
            if not self._failing:
                logger.warning("Forwarding OTLP to %s failed: %s", _redacted(self.endpoint), error)
            self._failing = True
            return
        self.stats.forwarded += 1
        self._failing = False
