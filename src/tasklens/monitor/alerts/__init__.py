"""Built-in alerts for ``tasklens monitor``: the conditions of the shipped Prometheus rules,
evaluated from the monitor's broker reads and the task metrics it receives, notified to webhooks
(generic JSON or Slack-compatible) and email, shown on the dashboard's alerts page and in
``GET /api/alerts``.

- ``rules``: the rules and their defaults;
- ``config``: the TOML file and the ``--alert-*`` flags, validated;
- ``evaluation``: the conditions, from snapshots and counters;
- ``engine``: the timer, each alert's life (pending, firing, reminded, resolved), notifications;
- ``state``: what survives a restart;
- ``dispatch`` and ``notifiers``: delivery with retries, off the monitor's path.

The ``/api/alerts`` routes are the HTTP surface's (``tasklens.monitor.http.alerts_api``).
"""

from __future__ import annotations

from tasklens.monitor.alerts.config import AlertConfig, AlertConfigError, build_alert_config
from tasklens.monitor.alerts.engine import AlertEngine

__all__ = ["AlertConfig", "AlertConfigError", "AlertEngine", "build_alert_config"]
