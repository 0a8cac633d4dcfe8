"""A client that sends its headers too slowly, or nothing at all, is disconnected."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tasklens.monitor.http.protocol import HEADER_TIMEOUT
from tests.monitor.processes import running_monitor

#: Longest the test waits for the monitor to hang up, in seconds: well past its deadline.
HANG_UP_DEADLINE = HEADER_TIMEOUT * 3
#: Seconds between the bytes a trickling client sends.
TRICKLE_INTERVAL = 0.5


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=HANG_UP_DEADLINE)
    sock.settimeout(TRICKLE_INTERVAL)
    return sock


def _closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Send ``trickle`` a byte at a time until the server closes the connection; whether it did
    before the deadline."""
    deadline = time.monotonic() + HANG_UP_DEADLINE
    index = 0
    while time.monotonic() < deadline:
        try:
            if index < len(trickle):
                sock.sendall(trickle[index : index + 1])
                index += 1
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


@pytest.mark.slow
def test_idle_and_trickling_connections_are_closed_while_others_are_served() -> None:
    trickle = b"GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
    with running_monitor("--broker", "redis://127.0.0.1:1/0") as url:
        trickling, idle = _connect(url), _connect(url)
        try:
            # A byte every half second keeps the connection busy, but its headers never end.
            assert _closed_by_server(trickling, trickle)
            assert _closed_by_server(idle)
        finally:
            idle.close()
            trickling.close()
        served = httpx.get(f"{url}/healthz", timeout=10)

    assert served.status_code == 200
