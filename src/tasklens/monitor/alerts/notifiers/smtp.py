"""Alert notifications as email, sent with ``smtplib``."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tasklens.monitor.alerts.config import EmailTarget
from tasklens.monitor.alerts.notifiers import Notification, NotificationFailed, Notifier

__all__ = ["SmtpNotifier", "email_message"]

#: Subject prefix of every alert email, for mail filters.
SUBJECT_PREFIX = "[tasklens]"


def email_message(notification: Notification, target: EmailTarget) -> EmailMessage:
    """The email for one notification.

    Parameters:
      notification(Notification): What to send.
      target(EmailTarget): Sender and recipients.
    """
    message = EmailMessage()
    message["Subject"] = f"{SUBJECT_PREFIX} {notification.title}"
    message["From"] = target.sender
    message["To"] = ", ".join(target.recipients)
    message["Date"] = formatdate(notification.created_at, localtime=False)
    message["Message-ID"] = make_msgid(domain=target.sender.rpartition("@")[2])
    message.set_content(notification.text + "\n")
    return message


class SmtpNotifier(Notifier):
    """Sends each notification as one email, over a new SMTP connection.

    Parameters:
      target(EmailTarget): The server, its security, the login and the addresses.

    Example:

      >>> SmtpNotifier(EmailTarget("mail.example.com", 587, "tasklens@example.com",
      ...                          ("oncall@example.com",), starttls=True))
    """

    def __init__(self, target: EmailTarget) -> None:
        self._target = target

    @property
    def target(self) -> str:
        return f"email {self._target.redacted}"

    def send(self, notification: Notification) -> None:
        target = self._target
        message = email_message(notification, target)
        try:
            if target.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    target.host, target.port, timeout=target.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
            with client:
                if target.starttls:
                    client.starttls(context=ssl.create_default_context())
                if target.username is not None:
                    client.login(target.username, target.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotificationFailed(f"{self.target}: {type(exc).__name__}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    # SMTP replies can echo the login name but never the password; keep them short.
    return " ".join(str(exc).split())[:200]
