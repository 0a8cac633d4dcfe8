"""What every route of the monitor shares: settings, the broker reader, the action inspector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from tasklens.monitor.settings import MonitorSettings
from tasklens.monitor.watch.inspectors import SharedInspector
from tasklens.monitor.watch.snapshots import SnapshotReader

if TYPE_CHECKING:
    from tasklens.monitor.ingest.service import TelemetryService

__all__ = ["MonitorState", "monitor_state"]


@dataclass(frozen=True)
class MonitorState:
    """The monitor's shared objects, kept on ``app.state.monitor``.

    Parameters:
      settings(MonitorSettings): The settings the app was created with.
      broker(str): The broker URL without credentials: the only form ever shown.
      reader(SnapshotReader): Bounded, cached broker snapshots.
      actions(SharedInspector): The inspector used for dead-letter reads and actions.
      telemetry(TelemetryService|None): The OTLP receiver, the store and the task metrics.
    """

    settings: MonitorSettings
    broker: str
    reader: SnapshotReader
    actions: SharedInspector
    telemetry: TelemetryService | None = None

    def close(self) -> None:
        """Release the broker connections."""
        self.reader.close()
        self.actions.close()


def monitor_state(request: Request) -> MonitorState:
    """FastAPI dependency: the state of the app serving the request."""
    state: MonitorState = request.app.state.monitor
    return state
