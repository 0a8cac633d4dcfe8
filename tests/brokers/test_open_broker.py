"""open_broker picks the implementation from the URL and the queues from names or the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasklens.brokers import AppNotFound, UnsupportedBroker, open_broker
from tasklens.brokers.rabbitmq import RabbitmqInspector
from tasklens.brokers.redis import RedisInspector


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/0", "unix:///run/redis.sock?db=0"]
)
def test_redis_urls(url: str) -> None:
    with open_broker(url, library="dramatiq") as inspector:
        assert isinstance(inspector, RedisInspector)
        assert inspector.namespace == "dramatiq"


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672/%2F", "amqps://u:pw@rabbit:5671/prod"])
def test_rabbitmq_urls(url: str) -> None:
    with open_broker(url, queues=["default"], library="dramatiq") as inspector:
        assert isinstance(inspector, RabbitmqInspector)
        assert inspector.queues == ("default",)


def test_another_scheme_is_refused_with_the_url_redacted() -> None:
    with pytest.raises(UnsupportedBroker) as caught:
        open_broker("sqs://key:secret@queue.example.com")
    message = str(caught.value)
    assert "secret" not in message
    assert message.startswith("unsupported broker URL sqs://key:***@queue.example.com: use redis://")


def test_namespace_precedence() -> None:
    assert open_broker("redis://cache/0?namespace=fromurl").namespace == "fromurl"  # type: ignore[attr-defined]
    inspector = open_broker("redis://cache/0?namespace=fromurl", namespace="explicit")
    assert inspector.namespace == "explicit"  # type: ignore[attr-defined]


def write_app(directory: Path, module: str, queues: list[str]) -> None:
    lines = [
        "import dramatiq",
        "from dramatiq.brokers.redis import RedisBroker",
        "broker = RedisBroker(url='redis://127.0.0.1:6379/0', namespace='shop')",
    ]
    for n, queue in enumerate(queues):
        lines += [f"@dramatiq.actor(broker=broker, queue_name={queue!r})", f"def actor{n}(): pass"]
    (directory / f"{module}.py").write_text("\n".join(lines) + "\n")


def test_the_app_gives_queues_and_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique_name: str
) -> None:
    module = f"app_{unique_name}"
    write_app(tmp_path, module, ["emails", "reports"])
    monkeypatch.syspath_prepend(str(tmp_path))
    inspector = open_broker("redis://127.0.0.1:6379/0", app=f"{module}:broker", queues=["extra"])
    assert isinstance(inspector, RedisInspector)
    assert inspector.namespace == "shop"
    assert inspector.queues == ("extra", "emails", "reports")
    in_url = open_broker("redis://127.0.0.1:6379/0?namespace=mine", app=f"{module}:broker")
    assert in_url.namespace == "mine"  # type: ignore[attr-defined]


def test_an_app_that_cannot_be_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AppNotFound, match="cannot import app module 'no_such_app_module'"):
        open_broker("redis://127.0.0.1:6379/0", app="no_such_app_module")
    (tmp_path / "not_a_broker_app.py").write_text("broker = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AppNotFound, match="is neither a Celery app nor a Dramatiq broker"):
        open_broker("redis://127.0.0.1:6379/0", app="not_a_broker_app:broker")
