"""``tasklens dlq`` on the real Redis: list, show, requeue, delete, purge, confirmations."""

from __future__ import annotations

import json
import os

import redis

from tests.cli.conftest import Invoke
from tests.monitor.ground_truth import PopulatedQueue, populated_queue


def test_list_shows_every_dead_letter(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("dlq", "list", queue.queue, "--broker", queue.url)

    assert result.exit_code == 0, result.output
    for message_id in queue.dead_ids:
        assert message_id in result.output
    assert "ValueError: boom" in result.output
    assert f"1-5 of 5 dead letters in '{queue.queue}'" in result.output


def test_list_json_pages(invoke: Invoke, queue: PopulatedQueue) -> None:
    first = json.loads(
        invoke("dlq", "list", queue.queue, "--broker", queue.url, "--json", "--limit", "2").output
    )
    rest = json.loads(
        invoke("dlq", "list", queue.queue, "--broker", queue.url, "--json", "--offset", "2").output
    )

    assert first["total"] == 5 and len(first["items"]) == 2 and len(rest["items"]) == 3
    listed = [item["message_id"] for item in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(queue.dead_ids)


def test_show_one_dead_letter(invoke: Invoke, queue: PopulatedQueue) -> None:
    message_id = queue.dead_ids[2]

    result = invoke("dlq", "show", queue.queue, message_id, "--broker", queue.url)

    assert result.exit_code == 0, result.output
    assert f"message id:  {message_id}" in result.output
    assert f"actor:       {queue.queue}_fail" in result.output
    assert "args:        [2]" in result.output
    assert "ValueError: boom 2" in result.output


def test_show_a_missing_message_is_one_line_and_exit_1(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("dlq", "show", queue.queue, "no-such-id", "--broker", queue.url)

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-id" in result.stderr


def test_requeue_some_ids(invoke: Invoke, queue: PopulatedQueue, redis_client: redis.Redis) -> None:
    result = invoke("dlq", "requeue", queue.queue, *queue.dead_ids[:2], "--broker", queue.url)

    assert result.exit_code == 0, result.output
    assert f"requeued 2 dead letters to '{queue.queue}'" in result.output
    assert queue.dead_count(redis_client) == 3
    assert queue.ready_count(redis_client) == 3 + 2


def test_requeue_needs_ids_or_all(invoke: Invoke, queue: PopulatedQueue) -> None:
    neither = invoke("dlq", "requeue", queue.queue, "--broker", queue.url)
    both = invoke("dlq", "requeue", queue.queue, queue.dead_ids[0], "--all", "--broker", queue.url)

    assert neither.exit_code == both.exit_code == 2
    assert "--all" in neither.output


def test_requeue_all_asks_first(invoke: Invoke, queue: PopulatedQueue, redis_client: redis.Redis) -> None:
    declined = invoke("dlq", "requeue", queue.queue, "--all", "--broker", queue.url, input="n\n")

    assert declined.exit_code == 1
    assert f"Requeue all 5 dead letters of '{queue.queue}'?" in declined.stderr
    assert queue.dead_count(redis_client) == 5

    accepted = invoke("dlq", "requeue", queue.queue, "--all", "--broker", queue.url, input="y\n")

    assert accepted.exit_code == 0, accepted.output
    assert queue.dead_count(redis_client) == 0
    assert queue.ready_count(redis_client) == 3 + 5


def test_requeue_all_with_yes_resets_retries(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("dlq", "requeue", queue.queue, "--all", "--yes", "--reset-retries", "--broker", queue.url)

    assert result.exit_code == 0, result.output
    assert "requeued 5 dead letters" in result.output
    assert json.loads(invoke("queues", "--broker", queue.url, "--json").output)["queues"][0]["dead"] == 0


def test_large_requeue_shows_a_progress_bar(redis_url: str, unique_name: str, monkeypatch: object) -> None:
    import subprocess
    import sys

    with populated_queue(redis_url, unique_name, dead=150) as queue:
        env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tasklens",
                "dlq",
                "requeue",
                queue.queue,
                "--all",
                "--yes",
                "--broker",
                queue.url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        client = redis.Redis.from_url(redis_url)
        remaining = queue.dead_count(client)
        client.close()

    assert result.returncode == 0, result.stderr
    assert "requeued 150 dead letters" in result.stdout
    assert "requeueing" in result.stderr and "150/150" in result.stderr
    assert remaining == 0


def test_delete_some(invoke: Invoke, queue: PopulatedQueue, redis_client: redis.Redis) -> None:
    result = invoke("dlq", "delete", queue.queue, *queue.dead_ids[:3], "--broker", queue.url)

    assert result.exit_code == 0, result.output
    assert "deleted 3 dead letters" in result.output
    assert queue.dead_count(redis_client) == 2
    assert queue.ready_count(redis_client) == 3


def test_delete_with_an_id_that_is_not_dead_changes_nothing(
    invoke: Invoke, queue: PopulatedQueue, redis_client: redis.Redis
) -> None:
    result = invoke(
        "dlq", "delete", queue.queue, queue.dead_ids[0], "not-a-dead-letter", "--broker", queue.url
    )

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not-a-dead-letter" in result.stderr
    assert queue.dead_count(redis_client) == 5


def test_purge_asks_first_then_deletes_every_dead_letter(
    invoke: Invoke, queue: PopulatedQueue, redis_client: redis.Redis
) -> None:
    declined = invoke("dlq", "purge", queue.queue, "--broker", queue.url, input="n\n")

    assert declined.exit_code == 1
    assert queue.dead_count(redis_client) == 5

    purged = invoke("dlq", "purge", queue.queue, "--yes", "--broker", queue.url)

    assert purged.exit_code == 0, purged.output
    assert f"purged 5 dead letters from '{queue.queue}'" in purged.output
    assert queue.dead_count(redis_client) == 0
    assert queue.ready_count(redis_client) == 3
