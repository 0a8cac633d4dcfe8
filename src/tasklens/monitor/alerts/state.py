"""Alert state that survives a restart: what is firing, since when, when it was last notified.

``AlertStateFile`` keeps it as one small JSON document, replaced atomically (written to a
temporary file in the same directory, flushed to disk, then renamed over the old one), so a crash
at any moment leaves either the old state or the new one. A monitor that restarts while an alert
fires finds it firing already and sends no second "firing" notification.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["HISTORY_LIMIT", "AlertRecord", "AlertStateFile"]

logger = logging.getLogger(__name__)

#: How many resolved alerts are kept for the history.
HISTORY_LIMIT = 200
#: The document's format version.
STATE_VERSION = 1


@dataclass
class AlertRecord:
    """One alert: a rule whose condition held for a queue (or the broker).

    Parameters:
      key(str): ``rule:queue``; one alert per key at a time.
      rule(str): The rule's name.
      queue(str|None): The queue, or ``None`` for the broker.
      severity(str): warning or critical.
      summary(str): The latest one-line description.
      value(float): The latest measured value.
      started_at(float): When it fired, Unix seconds.
      notified_at(float): When it was last notified (fired or reminded), Unix seconds.
      resolved_at(float|None): When it resolved, Unix seconds; ``None`` while it fires.
      reminders(int): Reminders sent so far.
    """

    key: str
    rule: str
    queue: str | None
    severity: str
    summary: str
    value: float
    started_at: float
    notified_at: float
    resolved_at: float | None = None
    reminders: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class AlertStateFile:
    """Reads and writes the alert state document.

    Parameters:
      path(Path|None): The JSON file; ``None`` keeps nothing (state lasts as long as the process).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> tuple[dict[str, AlertRecord], list[AlertRecord]]:
        """The firing alerts by key and the history, newest first; empty when there is no file.
        An unreadable file is logged and set aside (renamed ``*.corrupt``), never fatal."""
        if self.path is None or not self.path.exists():
            return {}, []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            firing = [AlertRecord.from_json(item) for item in document.get("firing", [])]
            history = [AlertRecord.from_json(item) for item in document.get("history", [])]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            logger.error(
                "The alert state %s is unreadable (%s): starting afresh, kept as %s.", self.path, exc, aside
            )
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            return {}, []
        return {record.key: record for record in firing}, history[:HISTORY_LIMIT]

    def save(self, firing: dict[str, AlertRecord], history: list[AlertRecord]) -> None:
        """Replace the document atomically.

        Raises:
          OSError: When the directory cannot be written.
        """
        if self.path is None:
            return
        document = {
            "version": STATE_VERSION,
            "firing": [asdict(record) for record in firing.values()],
            "history": [asdict(record) for record in history[:HISTORY_LIMIT]],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                json.dump(document, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
