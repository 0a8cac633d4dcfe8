"""A Redis URL naming a database that is not a number is refused, not read as database 0."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Invoke
from tests.monitor.processes import run_tasklens

BAD_URL = "redis://:hunter22@127.0.0.1:6379/7x"


@pytest.mark.parametrize(
    "command",
    [
        ["health"],
        ["queues"],
        ["dlq", "list", "default"],
        ["monitor", "--no-store"],
    ],
)
def test_every_command_refuses_a_database_that_is_not_a_number(invoke: Invoke, command: list[str]) -> None:
    result = invoke(*command, "--broker", BAD_URL)

    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "invalid Redis database '7x' in redis://:***@127.0.0.1:6379/7x" in line
    assert "hunter22" not in result.output


def test_a_db_parameter_that_is_not_a_number_is_refused_too() -> None:
    result = run_tasklens("health", "--broker", "unix:///run/redis.sock?db=one")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tasklens: invalid Redis database 'one' in unix:///run/redis.sock?db=one: use a number,"
        " like redis://host:6379/0"
    )
