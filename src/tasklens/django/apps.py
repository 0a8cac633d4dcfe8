"""``tasklens.django``'s app: ``tasklens.setup()`` once per process, from ``settings.TASKLENS``."""

from __future__ import annotations

import logging
import os

from django.apps import AppConfig
from django.conf import settings

from tasklens.django.settings import DjangoSettings, read_settings

__all__ = ["TasklensConfig"]

logger = logging.getLogger(__name__)

_configured_pid: int | None = None


class TasklensConfig(AppConfig):
    """Reads ``TASKLENS`` and configures OpenTelemetry and the task-library instrumentation.

    ``ready()`` may run more than once in a process (tests, ``django.setup()`` twice) and runs in
    every process of a forking server: ``setup()`` is called once per process id.
    """

    name = "tasklens.django"
    label = "tasklens"
    verbose_name = "tasklens"
    tasklens: DjangoSettings = DjangoSettings()

    def ready(self) -> None:
        global _configured_pid
        type(self).tasklens = read_settings(getattr(settings, "TASKLENS", None))
        if not self.tasklens.setup or _configured_pid == os.getpid():
            return
        import tasklens

        tasklens.setup(**self.tasklens.options)
        _configured_pid = os.getpid()
