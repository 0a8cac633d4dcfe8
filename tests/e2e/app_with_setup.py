"""A worker's broker module that configures telemetry the one-call way: ``tasklens.setup()``."""

from __future__ import annotations

import dramatiq

import tasklens
from tests.e2e import tasks

broker = tasks.broker_from_env()
dramatiq.set_broker(broker)
tasklens.setup(service_name="e2e-worker")
work = tasks.declare_work_from_env(broker)
