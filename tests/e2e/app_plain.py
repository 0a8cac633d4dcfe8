"""A worker's broker module with no telemetry code: run it under ``opentelemetry-instrument``."""

from __future__ import annotations

import dramatiq

from tests.e2e import tasks

broker = tasks.broker_from_env()
dramatiq.set_broker(broker)
work = tasks.declare_work_from_env(broker)
