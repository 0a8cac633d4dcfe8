"""A Celery app module that configures telemetry the one-call way: ``tasklens.setup()``."""

from __future__ import annotations

import tasklens
from tests.e2e import celery_tasks

app = celery_tasks.app_from_env()
tasklens.setup(service_name="e2e-celery-worker")
