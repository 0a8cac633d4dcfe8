"""How the commands show counts, times and ids: unknown as ``?``, ages in the largest useful unit,
long ids shortened as the dashboard shows them."""

from __future__ import annotations

__all__ = ["SHORT_ID_LENGTH", "UNKNOWN", "age", "count", "short_id"]

#: What a count or age the broker cannot tell looks like in a table.
UNKNOWN = "?"
#: Characters kept of a shortened id: as many as the dashboard shows.
SHORT_ID_LENGTH = 13


def count(value: int | None) -> str:
    """A message count, ``?`` when unknown.

    Parameters:
      value(int|None): The count.
    """
    return UNKNOWN if value is None else str(value)


def age(seconds: float | None) -> str:
    """An age such as ``42s``, ``3m05s``, ``2h07m`` or ``3d04h``; ``?`` when unknown.

    Parameters:
      seconds(float|None): The age, in seconds.
    """
    if seconds is None:
        return UNKNOWN
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def short_id(value: str) -> str:
    """An id cut to ``SHORT_ID_LENGTH`` characters and an ellipsis, as the dashboard shows it.

    Parameters:
      value(str): The id.
    """
    return value if len(value) <= SHORT_ID_LENGTH else value[:SHORT_ID_LENGTH] + "…"
