from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasklens.monitor.store import RetentionPolicy, TelemetryStore
from tests.monitor.store.spans import SpanFactory


class Clock:
    """A wall clock the test moves by hand, in Unix seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[TelemetryStore]:
    store = TelemetryStore.open(
        tmp_path / "telemetry.db", RetentionPolicy(max_age=None, max_size=None), clock=clock
    )
    yield store
    store.close()


@pytest.fixture
def spans() -> SpanFactory:
    return SpanFactory()
