"""Hook costs of several tasklens revisions side by side: the effect of each optimization.

``python -m benchmarks.revisions 545dff1 c71a29f HEAD`` exports ``src/tasklens`` of each commit
(``git archive``, the working tree is not touched; ``WORKTREE`` means the files as they are now)
into a temporary directory and runs ``benchmarks.hooks`` against each in its own process, the
revisions interleaved over ``--rounds`` rounds, and prints the median CPU µs per message.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.runner import PROJECT_ROOT

__all__ = ["main"]

#: The set-ups of ``benchmarks.hooks`` compared here, with their column titles.
SETUPS = {
    "no-op providers": "no-op",
    "SDK, nothing exported": "SDK",
    "SDK, 10% sampled": "SDK 10%",
    "SDK, spans not recorded": "unrecorded",
    "setup(), 100%": "setup()",
    "setup(), 10% sampled": "setup() 10%",
    "setup(), not recorded": "setup() unrec.",
}

#: Runs in each revision's process: prints the hook costs as JSON.
_PROBE = """
import json, sys, tasklens
assert tasklens.__file__.startswith(sys.argv[1]), tasklens.__file__
from benchmarks.hooks import measure_hooks
print(json.dumps({s: measure_hooks(s, int(sys.argv[2])) for s in sys.argv[3:]}), flush=True)
import os
os._exit(0)  # the providers' final export would wait on a closed port
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout


def _export(revision: str, into: Path) -> Path:
    """``src/tasklens`` of ``revision`` under ``into``; returns the directory to put on sys.path."""
    if revision == "WORKTREE":
        return PROJECT_ROOT / "src"
    archive = subprocess.run(
        ["git", "archive", revision, "src/tasklens"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.revisions", description=__doc__.split("\n")[0]
    )
    parser.add_argument("revisions", nargs="+", help="commits, or WORKTREE for the current files")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args(argv)
    costs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory(prefix="tlbench-rev-") as temporary:
        paths = {r: _export(r, Path(temporary) / r.replace("/", "_")) for r in arguments.revisions}
        for _ in range(arguments.rounds):
            for revision, path in paths.items():
                env_path = f"{path}:{PROJECT_ROOT}"
                completed = subprocess.run(
                    [sys.executable, "-c", _PROBE, str(path), str(arguments.messages), *SETUPS],
                    cwd=PROJECT_ROOT,
                    env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
                    capture_output=True,
                    text=True,
                )
                if completed.returncode != 0:
                    print(f"{revision}: {completed.stderr.strip().splitlines()[-1]}", file=sys.stderr)
                    continue
                for setup, result in json.loads(completed.stdout).items():
                    for hook, value in result.items():
                        costs[revision][f"{setup}|{hook}"].append(value)
    print(f"CPU µs per message, median of {arguments.rounds} interleaved rounds (benchmarks.hooks)")
    header = "".join(f"{title + ' ' + hook:>19}" for title in SETUPS.values() for hook in ("send", "process"))
    print(f"{'revision':<12}{header}")
    for revision in arguments.revisions:
        cells = "".join(
            f"{statistics.median(costs[revision][f'{s}|{h}']):>19.1f}"
            if costs[revision][f"{s}|{h}"]
            else f"{'-':>19}"
            for s in SETUPS
            for h in ("send", "process")
        )
        subject = "" if revision == "WORKTREE" else _git("log", "-1", "--format=%s", revision).strip()
        print(f"{revision:<12}{cells}\n{'':<12}{subject[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
