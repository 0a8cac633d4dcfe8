"""The monitor's telemetry side: OTLP receiver, embedded store, broker history.

``TelemetryService.open(settings)`` builds what the settings ask for: the store (unless
``--no-store``), the task metrics for ``/metrics``, the forwarder (with ``--forward``) and the
receiver; ``start(reader)`` begins recording broker snapshots (depth per queue and state, live
workers) into the store every ``SNAPSHOT_INTERVAL`` seconds, and ``close()`` flushes and stops
everything. The routes over it (the receiver's, the dashboard data's, run again) are the HTTP
surface's: ``tasklens.monitor.http.telemetry_routes``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from tasklens.monitor.ingest.forwarder import OtlpForwarder
from tasklens.monitor.ingest.received_metrics import ReceivedMetrics
from tasklens.monitor.ingest.receiver import OtlpReceiver
from tasklens.monitor.settings import MonitorSettings
from tasklens.monitor.store import RetentionPolicy, StoreBusy, TelemetryStore
from tasklens.monitor.watch.snapshots import SnapshotReader

__all__ = ["SNAPSHOT_INTERVAL", "TelemetryService"]

logger = logging.getLogger(__name__)

#: How often the broker's depth per queue and state is recorded for its history, in seconds.
SNAPSHOT_INTERVAL = 10.0


@dataclass
class TelemetryService:
    """What the monitor receives over OTLP, and where it keeps it.

    Parameters:
      store(TelemetryStore|None): The embedded store; ``None`` with ``--no-store``.
      metrics(ReceivedMetrics): Task metrics summed across processes, for ``/metrics``.
      receiver(OtlpReceiver): The OTLP/HTTP receiver.
      forwarder(OtlpForwarder|None): Sends what is received upstream, with ``--forward``.
      snapshot_interval(float): How often broker snapshots are recorded, in seconds.
    """

    store: TelemetryStore | None
    metrics: ReceivedMetrics
    receiver: OtlpReceiver
    forwarder: OtlpForwarder | None
    snapshot_interval: float = SNAPSHOT_INTERVAL

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @classmethod
    def open(cls, settings: MonitorSettings) -> TelemetryService:
        """Open the store and build the receiver the settings ask for. Nothing is sent upstream
        and the broker is not read until ``start``.

        Parameters:
          settings(MonitorSettings): Store path, retention, size limit and forward URL.
        """
        store = None
        if settings.store_path is not None:
            retention = RetentionPolicy(max_age=settings.retention, max_size=settings.max_store_size)
            store = TelemetryStore.open(Path(settings.store_path), retention)
        forwarder = OtlpForwarder(settings.forward_url) if settings.forward_url else None
        metrics = ReceivedMetrics()
        return cls(store, metrics, OtlpReceiver(store, metrics, forwarder), forwarder)

    def start(self, reader: SnapshotReader) -> None:
        """Start forwarding, and recording broker snapshots from ``reader`` into the store
        (again, after ``close``: an app may be started and stopped more than once).

        Parameters:
          reader(SnapshotReader): The monitor's bounded, cached broker reads.
        """
        if self.forwarder is not None:
            self.forwarder.start()
        if self.store is not None:
            self.store.writer.start()
            self._stop = threading.Event()
            self._sampler = threading.Thread(
                target=self._record_snapshots,
                args=(reader, self._stop),
                name="tasklens-broker-history",
                daemon=True,
            )
            self._sampler.start()

    def _record_snapshots(self, reader: SnapshotReader, stop: threading.Event) -> None:
        assert self.store is not None
        last_read_at = None
        while not stop.wait(self.snapshot_interval):
            snapshot = reader.result().snapshot
            if snapshot is None or snapshot.read_at == last_read_at:
                continue
            try:
                self.store.writer.write_broker_snapshot(snapshot)
            except StoreBusy:
                logger.debug("Skipped a broker snapshot: the store is behind")
                continue
            last_read_at = snapshot.read_at

    def close(self) -> None:
        """Stop recording, flush the store and the forwarder, and close them."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(self.snapshot_interval + 1)
            self._sampler = None
        if self.forwarder is not None:
            self.forwarder.close()
        if self.store is not None:
            self.store.close()
