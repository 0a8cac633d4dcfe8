"""The app a benchmark's ``celery worker`` runs: ``celery -A benchmarks.celery.worker_app worker``.

The trial process says what to run through ``TLBENCH_CELERY_*`` variables
(:class:`~benchmarks.celery.worker.WorkerSettings`); importing this module instruments the
worker as the variant says and declares the task, which counts itself in
:class:`~benchmarks.celery.marks.WindowMarks`. Only the worker imports it.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.celery.apps import make_app
from benchmarks.celery.marks import WindowMarks
from benchmarks.celery.variants import get_variant
from benchmarks.celery.worker import WorkerSettings
from benchmarks.variants import Endpoints

__all__ = ["app"]

settings = WorkerSettings.from_environment()
get_variant(settings.variant).instrument_worker(
    Endpoints(sink=settings.sink, unreachable=settings.unreachable), settings.pool
)
marks = WindowMarks(settings.start_at, settings.end_at, Path(settings.marks))
app = make_app(settings.broker, settings.queue, on_run=marks.record)
