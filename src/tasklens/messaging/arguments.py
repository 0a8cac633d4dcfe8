"""What ``capture_args`` records: a message's arguments, with secrets redacted, bounded in size."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

__all__ = ["REDACTED", "ArgsCapture", "format_arguments"]

#: Replaces the value of every key that looks like a secret.
REDACTED = "[REDACTED]"

#: The longest value of captured arguments recorded, in characters.
MAX_ARGS_LENGTH = 1024

#: Containers nested deeper than this are recorded as ``"..."``.
MAX_DEPTH = 6

#: Keys whose values are never recorded (matched anywhere in the key, case-insensitively).
SECRET_KEY_PATTERN = re.compile(
    r"pass(word|wd)?|token|secret|key|authorization|auth|credential|cookie|session|signature",
    re.IGNORECASE,
)

#: ``capture_args`` option: False (off), True (args and kwargs), or a callable given
#: ``(args, kwargs)`` that returns what to record (for example a subset of the kwargs).
ArgsCapture: TypeAlias = bool | Callable[[tuple[Any, ...], dict[str, Any]], Any]


def _redact(value: Any, depth: int = 0) -> Any:
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if SECRET_KEY_PATTERN.search(str(key)) else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(item, depth + 1) for item in value]
    return value


def format_arguments(capture: ArgsCapture, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Render what ``capture`` selects from a message's arguments as bounded, redacted JSON.

    Parameters:
      capture(ArgsCapture): The middleware's ``capture_args`` option.
      args(tuple): The message's positional arguments.
      kwargs(dict): The message's keyword arguments.

    Returns:
      str|None: The attribute value, or None when nothing is to be recorded.
    """
    if capture is False:
        return None
    selected: Any = {"args": list(args), "kwargs": kwargs} if capture is True else capture(args, kwargs)
    if selected is None:
        return None
    text = json.dumps(_redact(selected), default=repr, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_ARGS_LENGTH:
        text = text[: MAX_ARGS_LENGTH - 1] + "…"
    return text
