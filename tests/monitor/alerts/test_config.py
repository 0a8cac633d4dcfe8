"""The alerts' configuration: a TOML file and flags, validated before the monitor starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasklens.monitor.alerts.config import (
    AlertConfigError,
    build_alert_config,
    parse_rule_option,
    read_config_file,
)
from tests.monitor.processes import run_tasklens


def test_file_and_flags_combine(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(
        """
[alerts]
interval = "5s"
reminder = "1h"
[alerts.rules.backlog]
threshold = 50
for = "2m"
[alerts.rules.retry_storm]
enabled = false
[[alerts.webhooks]]
url = "https://hooks.example.com/services/T/B/secret"
format = "slack"
[alerts.email]
smtp = "smtps://alerts:pw%40rd@mail.example.com"
from = "tasklens@example.com"
to = "oncall@example.com"
"""
    )
    config = build_alert_config(
        read_config_file(path),
        rules=[parse_rule_option("backlog:threshold=70")],
        default_state_path="/s.json",
    )
    assert config.rules["backlog"].threshold == 70
    assert config.rules["backlog"].for_seconds == 120
    assert config.rules["retry_storm"].enabled is False
    assert config.rules["error_rate"].threshold == 0.05  # the shipped Prometheus rule's default
    assert (config.interval, config.reminder, config.state_path) == (5.0, 3600.0, "/s.json")
    assert config.email is not None
    assert (config.email.host, config.email.port, config.email.ssl) == ("mail.example.com", 465, True)
    assert (config.email.username, config.email.password) == ("alerts", "pw@rd")
    assert config.email.recipients == ("oncall@example.com",)
    assert all("secret" not in target and "pw" not in target for target in config.targets)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('[alerts]\ninterval = "soon"\n', "alerts.interval: expected a duration"),
        (
            "[alerts.rules.backlog]\nthreshold = -1\n",
            "alerts.rules.backlog.threshold: expected a non-negative number",
        ),
        ("[alerts.rules.error_rate]\nthreshold = 5\n", "a fraction of the messages"),
        ("[alerts.rules.backlog]\nlimit = 3\n", "alerts.rules.backlog: unknown key 'limit'"),
        ("[alerts.rules.backlogs]\n", "alerts.rules: unknown key 'backlogs'"),
        (
            '[[alerts.webhooks]]\nurl = "ftp://x"\n',
            "alerts.webhooks[0].url: expected an http:// or https:// URL",
        ),
        ('[[alerts.webhooks]]\nurl = "http://x"\nformat = "teams"\n', "expected 'json' or 'slack'"),
        ('[alerts.email]\nsmtp = "smtp://:pw@m"\nfrom = "a@b"\n', "alerts.email.to: expected one or more"),
        ('[alerts.email]\nsmtp = "http://:hunter2@m"\n', "alerts.email.smtp: expected an smtp://"),
        ("[alert]\n", "unknown table 'alert'"),
        ("[alerts\n", "is not valid TOML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(document)
    with pytest.raises(AlertConfigError) as raised:
        build_alert_config(read_config_file(path))
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alerts", "missing.toml"], "cannot read the alerts file missing.toml"),
        (["--alert-rule", "backlog:threshold"], "expected NAME:KEY=VALUE"),
        (["--alert-rule", "nope:for=1m"], "unknown alert rule 'nope'"),
        (["--alert-email", "oncall@example.com"], "--alert-email and --alert-smtp go together"),
        (["--alert-reminder", "-5m"], "alerts.reminder: expected a duration"),
    ],
)
def test_the_monitor_refuses_a_bad_configuration(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_tasklens("monitor", "--no-store", "--port", "0", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
