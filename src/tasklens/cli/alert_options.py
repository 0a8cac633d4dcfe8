"""``tasklens monitor``'s alert flags: ``--alerts FILE`` and the ``--alert-*`` options on top.

Any of them turns the built-in alerts on. A mistake in the file or the flags is reported on one
line naming the key, and the monitor exits with status 2 before it starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from tasklens.cli.options import fail
from tasklens.monitor.alerts.config import (
    AlertConfig,
    AlertConfigError,
    WebhookTarget,
    build_alert_config,
    parse_rule_option,
    read_config_file,
    webhook_option,
)

__all__ = ["EXIT_BAD_ALERTS", "AlertFlags", "alert_options", "default_state_path"]

#: Exit status when the alerts' configuration is wrong.
EXIT_BAD_ALERTS = 2
#: File name of the alert state kept next to the store (or in the user data directory).
STATE_FILENAME = "alerts.json"

F = TypeVar("F", bound=Callable[..., Any])


def default_state_path(store_path: str | None) -> str:
    """Next to the telemetry store, or in the user data directory without one.

    Parameters:
      store_path(str|None): The store's database file, ``None`` with ``--no-store``.
    """
    from tasklens.monitor.store import default_store_path

    directory = Path(store_path).parent if store_path is not None else default_store_path().parent
    return str(directory / STATE_FILENAME)


@dataclass(frozen=True)
class AlertFlags:
    """What the alert flags said, validated into an ``AlertConfig`` by ``config``.

    Parameters:
      file(Path|None): ``--alerts``.
      rules(tuple[str, ...]): ``--alert-rule`` values.
      webhooks(tuple[WebhookTarget, ...]): ``--alert-webhook`` and ``--alert-slack``.
      email_to(tuple[str, ...]): ``--alert-email``.
      smtp(str|None): ``--alert-smtp``.
      email_from(str|None): ``--alert-email-from``.
      interval(str|None): ``--alert-interval``.
      reminder(str|None): ``--alert-reminder``.
      state(Path|None): ``--alert-state``.
    """

    file: Path | None
    rules: tuple[str, ...]
    webhooks: tuple[WebhookTarget, ...]
    email_to: tuple[str, ...]
    smtp: str | None
    email_from: str | None
    interval: str | None
    reminder: str | None
    state: Path | None

    @property
    def given(self) -> bool:
        return any(
            (
                self.file,
                self.rules,
                self.webhooks,
                self.email_to,
                self.smtp,
                self.interval,
                self.reminder,
                self.state,
            )
        )

    def config(self, store_path: str | None) -> AlertConfig | None:
        """The alerts' configuration, ``None`` when no alert flag was given; exits with status 2
        and a one-line message when something is wrong.

        Parameters:
          store_path(str|None): The telemetry store's file, next to which state is kept.
        """
        if not self.given:
            return None
        try:
            file = read_config_file(self.file) if self.file is not None else None
            email = None
            if self.email_to or self.smtp:
                if not (self.email_to and self.smtp):
                    raise AlertConfigError("--alert-email and --alert-smtp go together: give both")
                email = {
                    "smtp": self.smtp,
                    "to": list(self.email_to),
                    "from": self.email_from or f"tasklens@{_host_of(self.smtp)}",
                    "starttls": False,
                }
            return build_alert_config(
                file,
                rules=[parse_rule_option(text) for text in self.rules],
                webhooks=self.webhooks,
                email=email,
                interval=self.interval,
                reminder=self.reminder,
                state_path=str(self.state) if self.state is not None else None,
                default_state_path=default_state_path(store_path),
            )
        except AlertConfigError as exc:
            fail(str(exc), EXIT_BAD_ALERTS)


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or "localhost"


def _webhooks(
    fmt: str,
) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], tuple[WebhookTarget, ...]]:
    def convert(
        ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
    ) -> tuple[WebhookTarget, ...]:
        try:
            return tuple(webhook_option(url, fmt) for url in values)  # type: ignore[arg-type]
        except AlertConfigError as exc:
            raise click.BadParameter(str(exc).partition(": ")[2]) from None

    return convert


def alert_options(command: F) -> F:
    """Add the alert flags; the command receives them as ``alert_flags: AlertFlags``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        alerts: Path | None,
        alert_rule: tuple[str, ...],
        alert_webhook: tuple[WebhookTarget, ...],
        alert_slack: tuple[WebhookTarget, ...],
        alert_email: tuple[str, ...],
        alert_smtp: str | None,
        alert_email_from: str | None,
        alert_interval: str | None,
        alert_reminder: str | None,
        alert_state: Path | None,
        **kwargs: Any,
    ) -> Any:
        flags = AlertFlags(
            file=alerts,
            rules=alert_rule,
            webhooks=(*alert_webhook, *alert_slack),
            email_to=alert_email,
            smtp=alert_smtp,
            email_from=alert_email_from,
            interval=alert_interval,
            reminder=alert_reminder,
            state=alert_state,
        )
        return command(*args, alert_flags=flags, **kwargs)

    options = [
        click.option(
            "--alerts",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Built-in alerts from this TOML file (rules, webhooks, email); see docs/alerts.md.",
        ),
        click.option(
            "--alert-rule",
            multiple=True,
            metavar="NAME[:KEY=VALUE,...]",
            help="Change a rule, like backlog:threshold=500,for=5m or retry_storm:enabled=false.",
        ),
        click.option(
            "--alert-webhook",
            multiple=True,
            metavar="URL",
            callback=_webhooks("json"),
            help="POST alerts as JSON.",
        ),
        click.option(
            "--alert-slack",
            multiple=True,
            metavar="URL",
            callback=_webhooks("slack"),
            help="POST alerts to a Slack-compatible incoming webhook.",
        ),
        click.option("--alert-email", multiple=True, metavar="ADDRESS", help="Email alerts to this address."),
        click.option(
            "--alert-smtp",
            metavar="URL",
            help="The SMTP server for --alert-email: smtp://[user@]host[:port] or smtps://.",
        ),
        click.option("--alert-email-from", metavar="ADDRESS", help="The From address of alert emails."),
        click.option(
            "--alert-interval",
            metavar="DURATION",
            help="Evaluate the alert rules this often.  [default: 15s]",
        ),
        click.option(
            "--alert-reminder",
            metavar="DURATION",
            help="Notify a firing alert again this often; 0: never.  [default: 4h]",
        ),
        click.option(
            "--alert-state",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Where alert state is kept across restarts.  [default: alerts.json next to the store]",
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
