from __future__ import annotations

import pytest

from tasklens.brokers import redact_url
from tasklens.brokers.url import InvalidBrokerUrl, check_redis_database, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://user:p%40ss@cache:6380/1", "rediss://user:***@cache:6380/1"),
        ("amqp://guest:guest@rabbit:5672/%2F", "amqp://guest:***@rabbit:5672/%2F"),
        (
            "redis://cache:6379/0?namespace=app&password=hunter2",
            "redis://cache:6379/0?namespace=app&password=***",
        ),
        ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("amqp://guest@rabbit/", "amqp://guest@rabbit/"),
        ("redis://[::1", "redis://[::1"),
    ],
)
def test_passwords_are_replaced(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_driver_message_quoting_the_password_is_scrubbed() -> None:
    url = "redis://:hunter2@cache:6379/0"
    message = f"AUTH hunter2 failed for {url}"
    assert scrub(message, url) == "AUTH *** failed for redis://:***@cache:6379/0"


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("redis://cache:6379/0", 0),
        ("redis://cache:6379/15", 15),
        ("redis://cache:6379", 0),
        ("redis://cache:6379/", 0),
        ("rediss://cache:6380/%33", 3),
        ("unix:///run/redis.sock?db=4", 4),
        ("redis://cache:6379/2?namespace=app", 2),
    ],
)
def test_redis_databases_that_are_numbers_are_read(url: str, database: int) -> None:
    assert check_redis_database(url) == database


@pytest.mark.parametrize(
    "url",
    ["redis://cache:6379/7x", "redis://cache:6379/-1", "redis://cache:6379/0/1", "unix:///s.sock?db=x"],
)
def test_redis_databases_that_are_not_numbers_are_refused(url: str) -> None:
    with pytest.raises(InvalidBrokerUrl, match="invalid Redis database"):
        check_redis_database(url)
