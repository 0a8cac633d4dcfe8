"""``python -m benchmarks.celery``: the Celery tables of ``make bench`` alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.celery.suite import add_arguments, resummarize, run

#: Where results go unless ``--output`` says otherwise.
RESULTS = Path(__file__).resolve().parent.parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.celery", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for celery-latest.*")
    parser.add_argument("--quick", action="store_true", help="a few dozen tasks, 1 round, no warm-up trial")
    parser.add_argument(
        "--resummarize", type=Path, metavar="JSON", help="rebuild the tables from a celery-latest.json"
    )
    add_arguments(parser)
    arguments = parser.parse_args(argv)
    if arguments.resummarize is not None:
        return resummarize(arguments.resummarize, arguments.output)
    return run(arguments)


if __name__ == "__main__":
    sys.exit(main())
