"""The built-in alert rules: the conditions of ``deploy/prometheus/tasklens-rules.yml``.

Each rule has a name, a severity, a default threshold, how long its condition must hold before it
fires (``for``) and, for rates, the window it is measured over. ``RULES`` lists them; a config file
or ``--alert-rule`` changes any of these per rule.

==========================  ===========================================================  ========
``backlog``                 ready messages in a queue above ``threshold``                warning
``oldest_message_age``      the oldest ready message older than ``threshold`` seconds    warning
``error_rate``              failed / processed messages of a queue above ``threshold``   warning
``dead_letters_growing``    more than ``threshold`` new dead letters over ``window``     warning
``retry_storm``             retries / processed messages of a queue above ``threshold``  warning
``no_live_workers``         a queue has ready or delayed work and no worker is alive     critical
``broker_unreachable``      the broker does not answer                                   critical
==========================  ===========================================================  ========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["RULES", "RuleName", "RuleSettings", "RuleSpec", "Severity"]

RuleName = Literal[
    "backlog",
    "oldest_message_age",
    "error_rate",
    "dead_letters_growing",
    "retry_storm",
    "no_live_workers",
    "broker_unreachable",
]
Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class RuleSettings:
    """How one rule is configured.

    Parameters:
      enabled(bool): Whether the rule is evaluated at all.
      threshold(float): The value the condition compares with (its unit depends on the rule;
        unused by ``no_live_workers`` and ``broker_unreachable``).
      for_seconds(float): How long the condition must hold before the alert fires, in seconds.
      window(float): The span a rate or an increase is measured over, in seconds.
    """

    enabled: bool
    threshold: float
    for_seconds: float
    window: float


@dataclass(frozen=True)
class RuleSpec:
    """A built-in rule and its defaults.

    Parameters:
      name(RuleName): The rule's name in the config file, the API and notifications.
      severity(Severity): warning or critical.
      description(str): What the condition is, with ``threshold`` in its unit.
      runbook(str): What to do first when it fires.
      defaults(RuleSettings): Its settings when the config says nothing.
      per_queue(bool): Whether it fires once per queue (or once for the broker).
    """

    name: RuleName
    severity: Severity
    description: str
    runbook: str
    defaults: RuleSettings
    per_queue: bool = True


#: Every rule, with the thresholds of the shipped Prometheus rules.
RULES: dict[str, RuleSpec] = {
    spec.name: spec
    for spec in (
        RuleSpec(
            "backlog",
            "warning",
            "more than `threshold` ready messages in a queue",
            "Check for a slow or failing task; add workers or throttle the producer.",
            RuleSettings(True, 1000, 600, 0),
        ),
        RuleSpec(
            "oldest_message_age",
            "warning",
            "the oldest ready message of a queue is older than `threshold` seconds",
            "Check that workers consume this queue and are not all busy with long tasks.",
            RuleSettings(True, 300, 300, 0),
        ),
        RuleSpec(
            "error_rate",
            "warning",
            "more than `threshold` (a fraction) of a queue's processed messages fail over `window`",
            "Find the failing task and its error.type on the dashboard and follow its traces.",
            RuleSettings(True, 0.05, 600, 300),
        ),
        RuleSpec(
            "dead_letters_growing",
            "warning",
            "more than `threshold` new dead letters in a queue over `window`",
            "Inspect them with `tasklens dlq list`, fix the cause, then requeue or delete them.",
            RuleSettings(True, 0, 60, 900),
        ),
        RuleSpec(
            "retry_storm",
            "warning",
            "more than `threshold` retries per processed message of a queue over `window`",
            "Check the service the retried task calls; consider pausing the producer.",
            RuleSettings(True, 0.25, 600, 300),
        ),
        RuleSpec(
            "no_live_workers",
            "critical",
            "a queue has ready or delayed messages and no worker is alive",
            "Check that the workers run and can reach the broker; restart them.",
            RuleSettings(True, 0, 300, 0),
        ),
        RuleSpec(
            "broker_unreachable",
            "critical",
            "the broker does not answer",
            "Check the broker is up and reachable with the configured URL and credentials.",
            RuleSettings(True, 0, 120, 0),
            per_queue=False,
        ),
    )
}
