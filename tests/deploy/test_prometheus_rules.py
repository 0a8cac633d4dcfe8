"""deploy/prometheus: the alert rules load in promtool and each one's unit tests pass there."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from tests.deploy.conftest import DEPLOY
from tests.monitor.processes import SUBPROCESS_TIMEOUT, require_program

RULES = DEPLOY / "prometheus" / "tasklens-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tasklens-rules.test.yml"
#: The conditions the rule file must alert on, by alert name.
EXPECTED_ALERTS = {
    "TasklensQueueBacklog",
    "TasklensOldestMessageTooOld",
    "TasklensHighErrorRate",
    "TasklensDeadLettersGrowing",
    "TasklensRetryStorm",
    "TasklensNoLiveWorkers",
    "TasklensBrokerUnreachable",
    "TasklensMonitorDown",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=RULES.parent
    )


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in checked.stdout


def test_the_unit_tests_of_every_rule_pass_in_promtool() -> None:
    tested = _promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_reports_a_rule_that_does_not_fire_as_expected(tmp_path: Any) -> None:
    broken = yaml.safe_load(RULES.read_text())
    for rule in broken["groups"][0]["rules"]:
        if rule["alert"] == "TasklensQueueBacklog":
            rule["expr"] = rule["expr"].replace("> 1000", "> 100000")
    (tmp_path / RULES.name).write_text(yaml.safe_dump(broken))
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    promtool = require_program("promtool")
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        cwd=tmp_path,
    )
    assert tested.returncode != 0
    assert "TasklensQueueBacklog" in tested.stdout + tested.stderr


def test_every_rule_has_a_for_a_severity_a_summary_and_a_runbook() -> None:
    rules = _rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"], rule["alert"]


def test_every_rule_has_a_unit_test_that_fires_and_one_that_does_not() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS
