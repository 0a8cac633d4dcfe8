"""deploy/systemd: ``systemd-analyze verify`` accepts the units without a warning.

``systemd-analyze`` comes with systemd; ``make system-deps`` installs it where it is missing, and
under ``CI=true`` its absence fails the test instead of skipping it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY
from tests.monitor.processes import SUBPROCESS_TIMEOUT, require_program

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
#: Where the units expect the virtualenv holding the application and tasklens.
INSTALLED_BIN = "/opt/tasklens/venv/bin/"
#: This virtualenv's programs, which verify looks for instead (it checks ExecStart exists).
LOCAL_BIN = f"{Path(sys.executable).parent}/"


def _verify(units: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    copies = []
    for unit in units:
        text = unit.read_text()
        assert INSTALLED_BIN in text, f"{unit.name} runs a program from {INSTALLED_BIN}"
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_BIN, LOCAL_BIN))
        copies.append(str(copy))
    return subprocess.run(
        [require_program("systemd-analyze"), "verify", *copies],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_analyze_verifies_the_unit_without_a_warning(unit: Path, tmp_path: Path) -> None:
    verified = _verify([unit], tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr


def test_systemd_analyze_reports_a_misspelt_directive(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    unit = broken / "tasklens-worker.service"
    unit.write_text(
        (DEPLOY / "systemd" / "tasklens-worker.service").read_text().replace("KillMode", "KilMode")
    )
    verified = _verify([unit], tmp_path)
    assert "Unknown key 'KilMode'" in verified.stderr


def test_there_is_a_unit_for_a_worker_and_one_for_the_monitor() -> None:
    assert [unit.name for unit in UNITS] == ["tasklens-monitor.service", "tasklens-worker.service"]
    worker = (DEPLOY / "systemd" / "tasklens-worker.service").read_text()
    assert "KillSignal=SIGTERM" in worker and "TimeoutStopSec=" in worker
    monitor = (DEPLOY / "systemd" / "tasklens-monitor.service").read_text()
    assert "tasklens monitor" in monitor and "EnvironmentFile=/etc/tasklens/monitor.env" in monitor
