"""``tasklens demo`` runs end to end and prints one trace per request."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("where", ["redis", "in-process"])
def test_demo_prints_the_trace_trees(where: str, request: pytest.FixtureRequest) -> None:
    args = [sys.executable, "-m", "tasklens", "demo", "--trace-tree"]
    if where == "redis":
        request.getfixturevalue("redis_url")
    else:
        args.append("--no-redis")
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert ("Redis at 127.0.0.1:6379" in out) == (where == "redis")
    assert out.count("trace ") >= 3
    assert "POST /signup" in out and "POST /reminders" in out and "POST /etl" in out
    assert "ERROR ConnectionError" in out and "dramatiq.retry.scheduled" in out
    assert "attempt=2" in out and "delay=500 ms" in out
    for actor in ("fetch_rows", "transform_rows", "store_rows"):
        assert f"actor={actor}" in out
    assert "6 messages processed" in out
    # The Celery chord, in one trace: three thumbnails, then the album from the last one.
    assert ("prefork" not in out) and (("on Redis" in out) == (where == "redis"))
    chord = out[out.index("publish album  internal") :]
    assert chord.count("task=celery_demo.render_thumbnail") == 6  # three sends, three runs
    assert chord.count("task=celery_demo.publish_album") == 2
    assert "4 Celery tasks run" in out
