"""The built-in alerts' configuration: a small TOML file, flags on top, one validation.

Example file (every key is optional; rules keep the defaults of ``tasklens.monitor.alerts.rules``)::

    [alerts]
    interval = "15s"       # how often the conditions are evaluated
    reminder = "4h"        # a firing alert is notified again this often ("0": never)
    state = "/var/lib/tasklens/alerts.json"

    [alerts.rules.backlog]
    threshold = 5000
    for = "10m"

    [alerts.rules.retry_storm]
    enabled = false

    [[alerts.webhooks]]
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    format = "slack"       # or "json" (the default)

    [alerts.email]
    smtp = "smtp://alerts@example.com@mail.example.com:587"   # smtps:// for TLS from the start
    starttls = true
    from = "tasklens@example.com"
    to = ["oncall@example.com"]

The SMTP password may come from ``TASKLENS_SMTP_PASSWORD`` instead of the URL. Every mistake is
an ``AlertConfigError`` whose message names the key (credentials redacted).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from tasklens.brokers.url import redact_url
from tasklens.monitor.alerts.rules import RULES, RuleSettings
from tasklens.monitor.store import parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_REMINDER",
    "SMTP_PASSWORD_ENV",
    "AlertConfig",
    "AlertConfigError",
    "EmailTarget",
    "WebhookTarget",
    "build_alert_config",
    "parse_rule_option",
    "read_config_file",
    "webhook_option",
]

#: How often the conditions are evaluated unless configured, in seconds.
DEFAULT_INTERVAL = 15.0
#: How often a firing alert is notified again unless configured, in seconds.
DEFAULT_REMINDER = 4 * 3600.0
#: Environment variable holding the SMTP password when the URL has none.
SMTP_PASSWORD_ENV = "TASKLENS_SMTP_PASSWORD"
#: The SMTP port of each scheme when the URL names none.
SMTP_PORTS = {"smtp": 25, "smtps": 465}

WebhookFormat = Literal["json", "slack"]
_WEBHOOK_FORMATS = ("json", "slack")
_RULE_KEYS = {"enabled", "threshold", "for", "window"}
_TOP_KEYS = {"interval", "reminder", "state", "rules", "webhooks", "email"}
_EMAIL_KEYS = {"smtp", "starttls", "from", "to", "timeout"}
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


class AlertConfigError(ValueError):
    """The alerts' configuration is wrong; the message names the key and what to write."""


@dataclass(frozen=True)
class WebhookTarget:
    """An HTTP endpoint notifications are POSTed to.

    Parameters:
      url(str): The endpoint (http or https).
      format(WebhookFormat): ``json`` (tasklens's own body) or ``slack`` (``{"text": ...}``, which
        Slack, Mattermost and Rocket.Chat incoming webhooks accept).
    """

    url: str
    format: WebhookFormat = "json"

    @property
    def redacted(self) -> str:
        """The URL without its path and query, which often hold the webhook's secret."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


@dataclass(frozen=True)
class EmailTarget:
    """Where alert emails go, and the SMTP server that sends them.

    Parameters:
      host(str): The SMTP server.
      port(int): Its port.
      ssl(bool): TLS from the start (``smtps://``).
      starttls(bool): Upgrade a plain connection with STARTTLS.
      username(str|None): Login name, when the server needs one.
      password(str|None): Login password (from the URL or ``TASKLENS_SMTP_PASSWORD``).
      sender(str): The From address.
      recipients(tuple[str, ...]): The To addresses.
      timeout(float): Longest one SMTP conversation may take, in seconds.
    """

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @property
    def redacted(self) -> str:
        return f"{'smtps' if self.ssl else 'smtp'}://{self.host}:{self.port} to {', '.join(self.recipients)}"


@dataclass(frozen=True)
class AlertConfig:
    """Everything the built-in alerts are configured with.

    Parameters:
      rules(dict[str, RuleSettings]): Each rule's settings, by rule name.
      webhooks(tuple[WebhookTarget, ...]): Webhooks notified.
      email(EmailTarget|None): The email notifier, if any.
      interval(float): How often the conditions are evaluated, in seconds.
      reminder(float|None): How often a firing alert is notified again, in seconds; ``None``: never.
      state_path(str|None): The JSON file that keeps alert state across restarts; ``None``: kept
        in memory only.
    """

    rules: dict[str, RuleSettings] = field(hash=False)
    webhooks: tuple[WebhookTarget, ...] = ()
    email: EmailTarget | None = None
    interval: float = DEFAULT_INTERVAL
    reminder: float | None = DEFAULT_REMINDER
    state_path: str | None = None

    @property
    def targets(self) -> list[str]:
        """The notifiers, redacted, for the API and the log."""
        return [w.redacted for w in self.webhooks] + ([self.email.redacted] if self.email else [])


def _duration(value: object, key: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AlertConfigError(f"{key}: expected a duration like 30s, 10m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif zero and value.strip() in ("0", "0s"):
        seconds = 0.0
    else:
        try:
            seconds = parse_duration(value.strip())
        except ValueError:
            raise AlertConfigError(f"{key}: expected a duration like 30s, 10m or 1h, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise AlertConfigError(
            f"{key}: expected a {'non-negative' if zero else 'positive'} duration, got {value!r}"
        )
    return seconds


def _number(value: object, key: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise AlertConfigError(f"{key}: expected a non-negative number, got {value!r}")
    return float(value)


def _boolean(value: object, key: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    if not isinstance(value, bool):
        raise AlertConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _table(value: object, key: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AlertConfigError(f"{key}: expected a table, got {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise AlertConfigError(
            f"{key}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}"
        )
    return value


def _rule(name: str, table: Mapping[str, Any], base: RuleSettings) -> RuleSettings:
    key = f"alerts.rules.{name}"
    table = _table(table, key, _RULE_KEYS)
    settings = base
    if "enabled" in table:
        settings = replace(settings, enabled=_boolean(table["enabled"], f"{key}.enabled"))
    if "threshold" in table:
        threshold = _number(table["threshold"], f"{key}.threshold")
        if name in ("error_rate",) and threshold > 1:
            raise AlertConfigError(
                f"{key}.threshold: a fraction of the messages, 0 to 1 (0.05 is 5%), got {threshold:g}"
            )
        settings = replace(settings, threshold=threshold)
    if "for" in table:
        settings = replace(settings, for_seconds=_duration(table["for"], f"{key}.for", zero=True))
    if "window" in table:
        settings = replace(settings, window=_duration(table["window"], f"{key}.window"))
    return settings


def _webhook(value: object, key: str) -> WebhookTarget:
    table = _table(value, key, {"url", "format"})
    url = table.get("url")
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).hostname
    ):
        raise AlertConfigError(f"{key}.url: expected an http:// or https:// URL")
    fmt = table.get("format", "json")
    if fmt not in _WEBHOOK_FORMATS:
        raise AlertConfigError(f"{key}.format: expected 'json' or 'slack', got {fmt!r}")
    return WebhookTarget(url, fmt)


def _email(value: object) -> EmailTarget:
    key = "alerts.email"
    table = _table(value, key, _EMAIL_KEYS)
    smtp = table.get("smtp")
    if not isinstance(smtp, str):
        raise AlertConfigError(
            f"{key}.smtp: expected an smtp:// or smtps:// URL, like smtp://mail.example.com:587"
        )
    parts = urlsplit(smtp)
    if parts.scheme not in SMTP_PORTS or not parts.hostname:
        raise AlertConfigError(
            f"{key}.smtp: expected an smtp:// or smtps:// URL, like smtp://mail.example.com:587,"
            f" got {redact_url(smtp)!r}"
        )
    try:
        port = parts.port or SMTP_PORTS[parts.scheme]
    except ValueError:
        raise AlertConfigError(f"{key}.smtp: invalid port in {redact_url(smtp)!r}") from None
    sender = table.get("from")
    if not isinstance(sender, str) or not _ADDRESS.match(sender):
        raise AlertConfigError(f"{key}.from: expected an email address, got {sender!r}")
    recipients = table.get("to")
    if isinstance(recipients, str):
        recipients = [recipients]
    if (
        not isinstance(recipients, Sequence)
        or not recipients
        or not all(isinstance(r, str) and _ADDRESS.match(r) for r in recipients)
    ):
        raise AlertConfigError(f"{key}.to: expected one or more email addresses, got {recipients!r}")
    password = unquote(parts.password) if parts.password else os.environ.get(SMTP_PASSWORD_ENV) or None
    return EmailTarget(
        host=parts.hostname,
        port=port,
        sender=sender,
        recipients=tuple(recipients),
        ssl=parts.scheme == "smtps",
        starttls=_boolean(table.get("starttls", False), f"{key}.starttls"),
        username=unquote(parts.username) if parts.username else None,
        password=password,
        timeout=_duration(table.get("timeout", 10), f"{key}.timeout"),
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """The ``[alerts]`` table of a TOML file.

    Parameters:
      path(Path): The file.

    Raises:
      AlertConfigError: When it cannot be read or is not TOML.
    """
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise AlertConfigError(f"cannot read the alerts file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError(f"the alerts file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"alerts"})
    if unknown:
        raise AlertConfigError(
            f"the alerts file {path}: unknown table {unknown[0]!r}; put everything under [alerts]"
        )
    alerts = document.get("alerts", {})
    return dict(_table(alerts, "alerts", _TOP_KEYS))


def parse_rule_option(text: str) -> tuple[str, dict[str, str]]:
    """``--alert-rule NAME[:KEY=VALUE,...]`` as a rule name and its table, like
    ``backlog:threshold=100,for=30s`` or ``retry_storm:enabled=false``.

    Parameters:
      text(str): The option's value.

    Raises:
      AlertConfigError: When it is not of that form.
    """
    name, _, rest = text.partition(":")
    table: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AlertConfigError(
                f"--alert-rule {text!r}: expected NAME:KEY=VALUE,..., like backlog:threshold=100,for=30s"
            )
        table[key.strip()] = value.strip()
    if not rest.strip() and not table:
        table["enabled"] = "true"
    return name.strip(), table


def build_alert_config(
    file: dict[str, Any] | None = None,
    *,
    rules: Sequence[tuple[str, Mapping[str, Any]]] = (),
    webhooks: Sequence[WebhookTarget] = (),
    email: Mapping[str, Any] | None = None,
    interval: object = None,
    reminder: object = None,
    state_path: str | None = None,
    default_state_path: str | None = None,
) -> AlertConfig:
    """Validate the file's ``[alerts]`` table and the flags given on top of it.

    Parameters:
      file(dict|None): The ``[alerts]`` table (``read_config_file``), if a file was given.
      rules: ``(name, table)`` pairs from ``--alert-rule``, applied after the file's.
      webhooks: Webhooks from the flags, notified as well as the file's.
      email(Mapping|None): An ``[alerts.email]`` table from the flags; replaces the file's.
      interval: ``--alert-interval``, overriding the file's.
      reminder: ``--alert-reminder``, overriding the file's.
      state_path(str|None): ``--alert-state``, overriding the file's.
      default_state_path(str|None): Where state is kept when neither says.

    Raises:
      AlertConfigError: For the first mistake found.
    """
    file = file or {}
    settings = {name: spec.defaults for name, spec in RULES.items()}
    file_rules = _table(file.get("rules", {}), "alerts.rules", set(RULES))
    for name, table in [*file_rules.items(), *rules]:
        if name not in RULES:
            raise AlertConfigError(f"unknown alert rule {name!r}; expected one of {', '.join(RULES)}")
        settings[name] = _rule(name, table, settings[name])
    file_webhooks = file.get("webhooks", [])
    if not isinstance(file_webhooks, list):
        raise AlertConfigError("alerts.webhooks: expected an array of tables, written [[alerts.webhooks]]")
    targets = [_webhook(item, f"alerts.webhooks[{i}]") for i, item in enumerate(file_webhooks)]
    email_table = email if email is not None else file.get("email")
    state = state_path or file.get("state") or default_state_path
    if state is not None and not isinstance(state, str):
        raise AlertConfigError(f"alerts.state: expected a file path, got {state!r}")
    interval_value = interval if interval is not None else file.get("interval", DEFAULT_INTERVAL)
    reminder_value = reminder if reminder is not None else file.get("reminder", DEFAULT_REMINDER)
    reminder_seconds = _duration(reminder_value, "alerts.reminder", zero=True)
    return AlertConfig(
        rules=settings,
        webhooks=(*targets, *webhooks),
        email=_email(email_table) if email_table is not None else None,
        interval=_duration(interval_value, "alerts.interval"),
        reminder=reminder_seconds or None,
        state_path=state,
    )


def webhook_option(url: str, fmt: WebhookFormat) -> WebhookTarget:
    """A webhook given by ``--alert-webhook`` or ``--alert-slack``, validated like the file's.

    Parameters:
      url(str): The endpoint.
      fmt(WebhookFormat): json or slack.
    """
    return _webhook({"url": url, "format": fmt}, "--alert-slack" if fmt == "slack" else "--alert-webhook")
