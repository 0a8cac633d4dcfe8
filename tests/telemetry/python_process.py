"""Run a Python script in a fresh interpreter, as a worker process would start.

``tasklens.setup()`` changes process-wide state (global providers, log record factory,
instrumented brokers), so its tests run it where nothing else has: in a new process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The repository root: scripts run from there so that ``tests.*`` modules import.
ROOT = Path(__file__).resolve().parents[2]
#: The prefix of the line a script prints to report its findings.
RESULT_PREFIX = "RESULT "
#: Environment variables that would leak the caller's telemetry configuration into the script.
SCRUBBED = ("DRAMATIQ_SERVICE_NAME",)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        """What the script reported with :func:`report`, decoded."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        raise AssertionError(f"the script reported nothing\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}")


def environment(**variables: str) -> dict[str, str]:
    """The current environment without any ``OTEL_*`` setting, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("OTEL_") and name not in SCRUBBED
    }
    env.update(variables)
    return env


def run_python(script: str, env: dict[str, str], timeout: float = 60, prefix: Sequence[str] = ()) -> Finished:
    """Run ``script`` (dedented) with ``env``; fail the test when it does not exit in time.

    Parameters:
      prefix: a command of the virtualenv to run Python under, such as ``opentelemetry-instrument``.
    """
    wrapper = [str(Path(sys.executable).parent / command) for command in prefix]
    completed = subprocess.run(
        [*wrapper, sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Finished(completed.returncode, completed.stdout, completed.stderr)


#: Paste into a script to give it ``report(value)``.
REPORT = f"""
import json as _json
def report(value):
    print({RESULT_PREFIX!r} + _json.dumps(value), flush=True)
"""
