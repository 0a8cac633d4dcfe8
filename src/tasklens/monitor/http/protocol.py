"""The monitor's HTTP/1.1 connections: uvicorn's h11 protocol, with a deadline for headers.

uvicorn closes a keep-alive connection that stays idle after a response, and h11 bounds the
size of a request's headers, but nothing bounds how long a client may take to send them: a
connection that sends nothing, or a header byte every few seconds, is held open for ever, and
enough of them exhaust the server. ``HeaderTimeoutProtocol`` closes a connection whose request
headers are not complete ``HEADER_TIMEOUT`` seconds after the connection opened, or after the
first byte of its next request arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEADER_TIMEOUT", "KEEP_ALIVE_TIMEOUT", "MAX_HEADER_BYTES", "HeaderTimeoutProtocol"]

#: Longest a client may take to send a request's line and headers, in seconds.
HEADER_TIMEOUT = 10.0
#: How long an idle keep-alive connection stays open after a response, in seconds.
KEEP_ALIVE_TIMEOUT = 5
#: Largest request line and headers accepted, in bytes.
MAX_HEADER_BYTES = 16 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose headers take too long.

    Parameters:
      *args, **kwargs: As ``uvicorn.protocols.http.h11_impl.H11Protocol``; uvicorn makes one
        per connection when given this class as ``http``.
    """

    header_timeout: float = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            # The first bytes of the next request on a kept-alive connection.
            self._arm_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
