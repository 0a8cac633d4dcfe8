"""The task being run, on every log record made while it runs.

Each instrumentation registers a function that returns the fields of the message or task the
calling thread is processing (``dramatiq_message_id``, ``celery_task_id``, ...), or None outside
one. One log record factory, installed once, asks each of them: records made inside a task carry
its ids, records made elsewhere carry none (use ``defaults`` in the format).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CurrentFields", "install_message_fields", "register", "unregister"]

#: Returns the log fields of the task the calling thread runs, or None outside a task.
CurrentFields = Callable[[], Mapping[str, Any] | None]

_sources: list[CurrentFields] = []
_lock = threading.Lock()
_installed = False


def register(source: CurrentFields) -> None:
    """Add ``source`` to the functions asked for fields on every log record (once per function).

    Parameters:
      source(callable): returns the fields to set on a record, or None.
    """
    with _lock:
        if source not in _sources:
            _sources.append(source)
    install_message_fields()


def install_message_fields() -> bool:
    """Install the record factory that adds the registered fields. Calling it again does nothing."""
    global _installed
    with _lock:
        if _installed:
            return True
        _installed = True
        logging.setLogRecordFactory(_with_fields(logging.getLogRecordFactory()))
    return True


def _with_fields(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        for source in _sources:
            try:
                fields = source()
            except Exception:  # correlation must never break a log call
                continue
            if fields:
                record.__dict__.update(fields)
        return record

    return record_factory


def unregister(source: CurrentFields) -> None:
    """Stop asking ``source`` for fields (when its instrumentation is removed).

    Parameters:
      source(callable): a function given to :func:`register`.
    """
    with _lock:
        if source in _sources:
            _sources.remove(source)
