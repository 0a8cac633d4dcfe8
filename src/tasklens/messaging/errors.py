"""How a failed send or a failed task is named (``error.type``) and recorded on its span."""

from __future__ import annotations

import contextlib

from opentelemetry.trace import Span

__all__ = ["describe", "error_type", "record_exception"]


def error_type(exception: BaseException) -> str:
    """The ``error.type`` of a failure: the exception's class name (low cardinality)."""
    return type(exception).__name__


def record_exception(span: Span, exception: BaseException) -> None:
    """The span's ``exception`` event; an exception that cannot describe itself gets none."""
    with contextlib.suppress(Exception):
        span.record_exception(exception)


def describe(exception: BaseException) -> str:
    """``str(exception)``, even when the exception's ``__str__`` itself fails."""
    try:
        return str(exception)
    except Exception:
        return f"<{type(exception).__name__}: str() failed>"
