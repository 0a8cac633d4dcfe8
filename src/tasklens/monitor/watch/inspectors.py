"""One broker inspector shared by the threads of the monitor, opened when first needed.

Inspectors hold connections that are not all safe to use from two threads at once (pika's are
not), so each ``SharedInspector`` lends its inspector to one caller at a time. The monitor keeps
one for snapshots and one for dead-letter actions, so a long requeue never delays a scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tasklens.brokers.base import BrokerInspector, BrokerUnavailable

__all__ = ["InspectorFactory", "SharedInspector"]

logger = logging.getLogger(__name__)

#: Opens an inspector for the configured broker. Raises ``BrokerUnavailable``.
InspectorFactory = Callable[[], BrokerInspector]


class SharedInspector:
    """Lends one lazily opened inspector to one caller at a time.

    When the broker stops answering, the inspector is closed and the next caller opens a new
    one, so the monitor recovers when the broker comes back whatever state the old connection
    was left in.

    Parameters:
      open_inspector(InspectorFactory): Opens the inspector; called again after a failure.
    """

    def __init__(self, open_inspector: InspectorFactory) -> None:
        self._open_inspector = open_inspector
        self._inspector: BrokerInspector | None = None
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[BrokerInspector]:
        """Hold the inspector for the duration of a ``with`` block.

        Raises:
          BrokerUnavailable: When the inspector cannot be opened.
        """
        with self._lock:
            if self._inspector is None:
                self._inspector = self._open_inspector()
            try:
                yield self._inspector
            except BrokerUnavailable:
                self._discard()
                raise

    def close(self) -> None:
        """Close the inspector, if open. A later ``borrow`` opens a new one."""
        with self._lock:
            self._discard()

    def _discard(self) -> None:
        inspector, self._inspector = self._inspector, None
        if inspector is None:
            return
        try:
            inspector.close()
        except Exception:  # closing a dead connection may fail; it is being dropped anyway
            logger.debug("Closing the broker inspector failed.", exc_info=True)
