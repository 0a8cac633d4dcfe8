"""A Celery app module with no telemetry code: run it under ``opentelemetry-instrument``."""

from __future__ import annotations

from tests.e2e import celery_tasks

app = celery_tasks.app_from_env()
