"""The SMTP notifier against aiosmtpd with a login, and what it says when the server refuses."""

from __future__ import annotations

import time
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tasklens.monitor.alerts.config import EmailTarget
from tasklens.monitor.alerts.notifiers import Notification, NotificationFailed
from tasklens.monitor.alerts.notifiers.smtp import SmtpNotifier
from tasklens.monitor.alerts.state import AlertRecord
from tests.monitor.processes import free_port

# The test server takes a login over plain TCP, which aiosmtpd rightly warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, envelope.rcpt_tos, message_from_bytes(envelope.original_content))
        )
        return "250 OK"


def only_alice(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alice", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def server():
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=only_alice,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    yield mailbox, port
    controller.stop()


def notification() -> Notification:
    now = time.time()
    record = AlertRecord(
        "backlog:emails", "backlog", "emails", "warning", "queue 'emails' has 9 ready", 9, now, now
    )
    return Notification.of("firing", record, "redis://127.0.0.1:6379/0")


def target(port: int, password: str) -> EmailTarget:
    return EmailTarget(
        "127.0.0.1",
        port,
        "tasklens@example.com",
        ("a@example.com", "b@example.com"),
        username="alice",
        password=password,
    )


def test_sends_after_logging_in(server) -> None:
    mailbox, port = server
    SmtpNotifier(target(port, "s3cret")).send(notification())
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "tasklens@example.com" and recipients == ["a@example.com", "b@example.com"]
    assert message["Subject"] == "[tasklens] [FIRING] backlog on queue 'emails'"
    assert "queue 'emails' has 9 ready" in message.get_payload()


def test_an_absent_server_is_a_failure_without_the_password() -> None:
    with pytest.raises(NotificationFailed) as failed:
        SmtpNotifier(target(free_port(), "s3cret")).send(notification())
    assert "ConnectionRefusedError" in str(failed.value)
    assert "s3cret" not in str(failed.value)
