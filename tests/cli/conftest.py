from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from tasklens.cli import main
from tests.monitor.ground_truth import queue as queue

Invoke = Callable[..., Result]


@pytest.fixture
def invoke() -> Invoke:
    """``invoke(*args, input=None)``: run a tasklens command in this process."""
    runner = CliRunner(env={"COLUMNS": "200"})

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return run
