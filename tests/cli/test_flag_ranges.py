"""Every numeric flag is range-checked: a value out of range is one line and exit status 2."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Invoke
from tests.monitor.fake_broker import FAKE_URL


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["monitor", "--retention", "20000w"], "--retention"),
        (["monitor", "--retention", "0s"], "--retention"),
        (["monitor", "--max-store-size", "10kB"], "--max-store-size"),
        (["monitor", "--max-store-size", "5000TB"], "--max-store-size"),
        (["monitor", "--cache-ttl", "nan"], "--cache-ttl"),
        (["monitor", "--cache-ttl", "inf"], "--cache-ttl"),
        (["monitor", "--cache-ttl", "-1"], "--cache-ttl"),
        (["monitor", "--port", "70000"], "--port"),
        (["monitor", "--host", "not a host"], "--host"),
        (["monitor", "--timeout", "nan"], "--timeout"),
        (["monitor", "--timeout", "1e9"], "--timeout"),
        (["monitor", "--max-age", "inf"], "--max-age"),
        (["monitor", "--max-backlog", str(2**64)], "--max-backlog"),
        (["monitor", "--min-workers", "-1"], "--min-workers"),
        (["health", "--timeout", "nan"], "--timeout"),
        (["health", "--max-age", "nan"], "--max-age"),
        (["queues", "--timeout", "inf"], "--timeout"),
        (["queues", "--watch", "--interval", "nan"], "--interval"),
        (["queues", "--watch", "--interval", "1e12"], "--interval"),
        (["dlq", "list", "default", "--offset", str(2**64)], "--offset"),
        (["health", "--max-dead", str(2**64)], "--max-dead"),
        (["health", "--max-new-dead", "-1"], "--max-new-dead"),
        (["health", "--dead-window", "inf"], "--dead-window"),
    ],
)
def test_a_value_out_of_range_is_refused_with_one_line(invoke: Invoke, args: list[str], named: str) -> None:
    result = invoke(*args, "--broker", FAKE_URL)

    assert result.exit_code == 2
    assert named in result.output.strip().splitlines()[-1]
    assert "Traceback" not in result.output
