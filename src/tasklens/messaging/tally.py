"""Counters that cost a dictionary update on the task path and are summed when metrics are read.

A synchronous OpenTelemetry counter builds a measurement, cleans its attributes and looks up
its aggregation under a lock on every ``add`` (a few microseconds). The middleware's counters
change on every message, so it counts into a table owned by the calling thread instead (no
lock, no allocation once a key is known) and reports the sums through an observable
instrument's callback when a reader collects.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from tasklens.semconv import MetricSpec

__all__ = ["Tally", "in_flight_counter", "observed_counter"]


class Tally:
    """Sums per attribute set, each thread adding to its own table.

    Parameters:
      name(str): What is counted, for ``repr``.

    Example:
      >>> sent = Tally("sent")
      >>> meter.create_observable_counter("messages.sent", callbacks=[sent.observe])
      >>> sent.add(("queue", "actor"), {"queue": "default"})
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._local = threading.local()
        self._lock = threading.Lock()
        self._attributes: dict[Hashable, Mapping[str, Any]] = {}
        self._tables: list[tuple[weakref.ref[threading.Thread], dict[Hashable, int]]] = []
        self._retired: dict[Hashable, int] = {}
        _TALLIES.add(self)

    def __repr__(self) -> str:
        return f"<Tally {self.name}>"

    def add(self, key: Hashable, attributes: Mapping[str, Any], amount: int = 1) -> None:
        """Add ``amount`` to the count of ``key``, reported with ``attributes``."""
        table: dict[Hashable, int] | None = getattr(self._local, "table", None)
        if table is None:
            table = self._new_table()
        count = table.get(key)
        if count is None:
            self._attributes.setdefault(key, attributes)
            count = 0
        table[key] = count + amount

    def _new_table(self) -> dict[Hashable, int]:
        table: dict[Hashable, int] = {}
        self._local.table = table
        with self._lock:
            self._tables.append((weakref.ref(threading.current_thread()), table))
        return table

    def totals(self) -> dict[Hashable, int]:
        """The sum of every thread's table, folding the tables of finished threads away."""
        with self._lock:
            live = []
            for thread_ref, table in self._tables:
                thread = thread_ref()
                if thread is None or not thread.is_alive():
                    for key, count in list(table.items()):
                        self._retired[key] = self._retired.get(key, 0) + count
                else:
                    live.append((thread_ref, table))
            self._tables = live
            totals = dict(self._retired)
            for _, table in live:
                for key, count in list(table.items()):
                    totals[key] = totals.get(key, 0) + count
        return totals

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """Callback for an observable counter or up-down counter: one observation per attribute set."""
        sums: dict[frozenset[tuple[str, Any]], int] = {}
        attributes: dict[frozenset[tuple[str, Any]], Mapping[str, Any]] = {}
        for key, count in self.totals().items():
            identity = frozenset(self._attributes[key].items())
            sums[identity] = sums.get(identity, 0) + count
            attributes.setdefault(identity, self._attributes[key])
        return [Observation(count, attributes[identity]) for identity, count in sums.items()]

    def _reset_after_fork(self) -> None:
        # The child starts counting from zero: the parent's counts are the parent's series.
        self._lock = threading.Lock()
        self._local = threading.local()
        self._tables = []
        self._retired = {}


#: Every tally, so that a forked child can reset them.
_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    for tally in list(_TALLIES):
        tally._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)


def observed_counter(meter: Meter, spec: MetricSpec) -> Tally:
    """A tally reported as the observable counter ``spec`` of ``meter``.

    Parameters:
      meter(Meter): Where the counter is created.
      spec(MetricSpec): Its name, unit and description.
    """
    tally = Tally(spec.name)
    meter.create_observable_counter(spec.name, [tally.observe], spec.unit, spec.description)
    return tally


def in_flight_counter(meter: Meter, spec: MetricSpec, consumed: Tally) -> Tally:
    """The tally of started messages, reported as the up-down counter ``spec``: started minus
    ``consumed`` per route (one add per message instead of two).

    Keys of ``consumed`` are a route or a ``(route, ...)`` tuple; keys of the returned tally are
    routes, whose ``process_metric_attributes`` the points carry.

    Parameters:
      meter(Meter): Where the counter is created.
      spec(MetricSpec): Its name, unit and description.
      consumed(Tally): The finished messages, counted when each ends.
    """
    started = Tally("started")

    def observe(options: CallbackOptions) -> list[Observation]:
        # Consumed first: every message it counts was started before, so the difference is
        # never below zero.
        finished: dict[Hashable, int] = {}
        for key, count in consumed.totals().items():
            route = key[0] if isinstance(key, tuple) else key
            finished[route] = finished.get(route, 0) + count
        return [
            Observation(count - finished.get(route, 0), route.process_metric_attributes)  # type: ignore[attr-defined]
            for route, count in started.totals().items()
        ]

    meter.create_observable_up_down_counter(spec.name, [observe], spec.unit, spec.description)
    return started
