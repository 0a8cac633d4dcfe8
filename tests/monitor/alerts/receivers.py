"""Local notification receivers started by the tests: a webhook endpoint and an SMTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.monitor.processes import free_port

#: How long a test waits for a notification, in seconds.
DELIVERY_DEADLINE = 30.0


class WebhookReceiver:
    """An HTTP server on a free loopback port that records every JSON body POSTed to it.

    ``fail_next(n)`` makes the next ``n`` requests answer 500 (they are recorded as failures).
    """

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failed = 0
        self._failures_left = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._changed:
                    if receiver._failures_left > 0:
                        receiver._failures_left -= 1
                        receiver.failed += 1
                        status = 500
                    else:
                        receiver.bodies.append(json.loads(body))
                        status = 200
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook/secret-part"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int) -> None:
        with self._changed:
            self._failures_left = count

    def wait_for(self, condition: Callable[[list[dict[str, Any]]], Any], what: str) -> Any:
        """Wait until ``condition(bodies)`` is truthy; fail naming ``what`` after the deadline."""
        deadline = time.monotonic() + DELIVERY_DEADLINE
        with self._changed:
            while True:
                result = condition(list(self.bodies))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; received {self.bodies}")
                self._changed.wait(left)

    def events(self, key: str | None = None) -> list[str]:
        with self._changed:
            return [b["event"] for b in self.bodies if key is None or b["alert"]["key"] == key]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.changed:
            self.messages.append(message_from_bytes(envelope.original_content))
            self.changed.notify_all()
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on a free loopback port, keeping every message it receives."""

    def __init__(self) -> None:
        self._mailbox = _Mailbox()
        self.port = free_port()
        self._controller = Controller(self._mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        with self._mailbox.changed:
            return list(self._mailbox.messages)

    def wait_for(self, condition: Callable[[list[Message]], Any], what: str) -> Any:
        deadline = time.monotonic() + DELIVERY_DEADLINE
        with self._mailbox.changed:
            while True:
                result = condition(list(self._mailbox.messages))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    subjects = [m["Subject"] for m in self._mailbox.messages]
                    raise AssertionError(f"timed out waiting for {what}; received {subjects}")
                self._mailbox.changed.wait(left)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    receiver._controller.start()
    try:
        yield receiver
    finally:
        receiver._controller.stop()
