"""The REST API over an in-memory broker: every route, errors as JSON, actions behind the token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tasklens.monitor import MonitorSettings, create_app
from tests.monitor.conftest import AUTH, LOCAL_URL, ClientFactory
from tests.monitor.fake_broker import FAKE_URL, FakeInspector


def test_queues_lists_every_queue_with_unknown_counts_as_null(client: TestClient) -> None:
    response = client.get("/api/queues")

    assert response.status_code == 200
    body = response.json()
    assert body["broker"] == "redis://:***@fake-broker:6379/0"
    assert body["workers"] == 2
    assert body["messaging_system"] == "dramatiq"
    assert [queue["name"] for queue in body["queues"]] == ["default", "emails"]
    default, emails = body["queues"]
    assert default == {
        "name": "default",
        "ready": 3,
        "delayed": 2,
        "in_flight": 1,
        "dead": 4,
        "oldest_age": 12.5,
        "consumers": None,
        "pending": 5,
        # Only Celery on Redis has priority steps and a visibility timeout.
        "priorities": None,
        "oldest_unacked_age": None,
        "visibility_timeout": None,
        "messaging_system": "dramatiq",  # each queue says its library, even with one broker
    }
    assert emails["delayed"] is None and emails["in_flight"] is None and emails["oldest_age"] is None


def test_one_queue_and_an_unknown_queue(client: TestClient) -> None:
    one = client.get("/api/queues/default").json()
    assert (one["ready"], one["messaging_system"]) == (3, "dramatiq")

    missing = client.get("/api/queues/nope")

    assert missing.status_code == 404
    assert missing.json() == {"error": "queue 'nope' not found"}


def test_workers(client: TestClient, fake: FakeInspector) -> None:
    fake.workers = 7
    assert client.get("/api/workers").json()["workers"] == 7


def test_dead_letters_are_paged_newest_first(client: TestClient) -> None:
    page = client.get("/api/queues/default/dead-letters", params={"offset": 1, "limit": 2}).json()

    assert page["total"] == 4 and page["offset"] == 1 and page["limit"] == 2
    assert [item["message_id"] for item in page["items"]] == ["default-m2", "default-m1"]
    assert page["items"][0]["traceback"].endswith("ValueError: boom")
    assert page["items"][0]["retries"] == 3


def test_one_dead_letter_shows_its_payload_and_traceback(client: TestClient) -> None:
    letter = client.get("/api/queues/default/dead-letters/default-m0").json()

    assert letter["actor"] == "fail"
    assert letter["args"] == [0]
    assert letter["kwargs"] == {"key": "value"}
    assert letter["died_at"] == 1_700_000_000.0
    assert "ValueError: boom" in letter["traceback"]


def test_unknown_dead_letter_is_404_json(client: TestClient) -> None:
    response = client.get("/api/queues/default/dead-letters/missing")

    assert response.status_code == 404
    assert "missing" in response.json()["error"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 100000}, {"offset": -1}, {"offset": "abc"}],
)
def test_bad_paging_parameters_are_422_json(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/api/queues/default/dead-letters", params=params)

    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("invalid request:")
    assert body["details"][0]["location"][0] == "query"


def test_unknown_route_is_404_json(client: TestClient) -> None:
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_actions_without_a_configured_token_are_refused_with_advice(
    client: TestClient, fake: FakeInspector
) -> None:
    response = client.delete("/api/queues/default/dead-letters")

    assert response.status_code == 403
    assert "--auth-token" in response.json()["error"]
    assert len(fake.dead["default"]) == 4


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/queues/default/dead-letters/requeue", {"all": True}),
        ("POST", "/api/queues/default/dead-letters/delete", {"message_ids": ["default-m0"]}),
        ("DELETE", "/api/queues/default/dead-letters/default-m0", None),
        ("DELETE", "/api/queues/default/dead-letters", None),
    ],
)
def test_actions_need_the_bearer_token(
    token_client: TestClient, fake: FakeInspector, method: str, path: str, body: object
) -> None:
    missing = token_client.request(method, path, json=body)
    wrong = token_client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})

    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "error" in missing.json()
    assert len(fake.dead["default"]) == 4

    allowed = token_client.request(method, path, json=body, headers=AUTH)

    assert allowed.status_code == 200, allowed.text
    assert len(fake.dead["default"]) < 4


def test_requeue_some_ids_resetting_retries(token_client: TestClient, fake: FakeInspector) -> None:
    response = token_client.post(
        "/api/queues/default/dead-letters/requeue",
        json={"message_ids": ["default-m1", "default-m3"], "reset_retries": True},
        headers=AUTH,
    )

    assert response.json() == {"requeued": 2}
    assert sorted(letter.message_id for letter in fake.requeued["default"]) == ["default-m1", "default-m3"]
    assert all(letter.retries == 0 for letter in fake.requeued["default"])
    assert [letter.message_id for letter in fake.dead["default"]] == ["default-m0", "default-m2"]


def test_requeue_of_an_id_that_is_not_dead_is_404_and_changes_nothing(
    token_client: TestClient, fake: FakeInspector
) -> None:
    response = token_client.post(
        "/api/queues/default/dead-letters/requeue",
        json={"message_ids": ["default-m1", "not-there"]},
        headers=AUTH,
    )

    assert response.status_code == 404
    assert "not-there" in response.json()["error"]
    assert len(fake.dead["default"]) == 4


def test_requeue_all(token_client: TestClient, fake: FakeInspector) -> None:
    response = token_client.post("/api/queues/default/dead-letters/requeue", json={"all": True}, headers=AUTH)

    assert response.json() == {"requeued": 4}
    assert fake.dead["default"] == []


@pytest.mark.parametrize(
    "body", [{}, {"message_ids": []}, {"all": True, "message_ids": ["a"]}, {"all": "yes"}]
)
def test_requeue_needs_ids_or_all_but_not_both(
    token_client: TestClient, fake: FakeInspector, body: object
) -> None:
    response = token_client.post("/api/queues/default/dead-letters/requeue", json=body, headers=AUTH)

    assert response.status_code == 422
    assert "error" in response.json()
    assert len(fake.dead["default"]) == 4


def test_delete_some_and_one(token_client: TestClient, fake: FakeInspector) -> None:
    some = token_client.post(
        "/api/queues/default/dead-letters/delete",
        json={"message_ids": ["default-m0", "default-m1"]},
        headers=AUTH,
    )
    one = token_client.delete("/api/queues/default/dead-letters/default-m2", headers=AUTH)
    again = token_client.delete("/api/queues/default/dead-letters/default-m2", headers=AUTH)

    assert some.json() == {"deleted": 2}
    assert one.json() == {"deleted": 1}
    assert again.status_code == 404
    assert [letter.message_id for letter in fake.dead["default"]] == ["default-m3"]


def test_purge(token_client: TestClient, fake: FakeInspector) -> None:
    response = token_client.delete("/api/queues/default/dead-letters", headers=AUTH)

    assert response.json() == {"purged": 4}
    assert fake.dead["default"] == []


def test_counts_show_an_action_at_once_despite_the_cache(make_client: ClientFactory) -> None:
    client = make_client(auth_token="t", cache_ttl=60.0)
    headers = {"Authorization": "Bearer t"}
    assert client.get("/api/queues/default", headers=headers).json()["dead"] == 4

    client.post(
        "/api/queues/default/dead-letters/delete", json={"message_ids": ["default-m0"]}, headers=headers
    )

    assert client.get("/api/queues/default", headers=headers).json()["dead"] == 3


def test_an_unexpected_error_is_500_json_without_a_traceback(fake: FakeInspector) -> None:
    fake.bug = RuntimeError("secret internals")
    app = create_app(MonitorSettings(broker_url=FAKE_URL), open_inspector=lambda: fake)

    with TestClient(app, raise_server_exceptions=False, base_url=LOCAL_URL) as client:
        response = client.get("/api/queues/default/dead-letters")

    assert response.status_code == 500
    assert response.json() == {"error": "internal error (RuntimeError); the monitor's log has the details"}


def test_broker_down_is_503_json_naming_the_redacted_url(client: TestClient, fake: FakeInspector) -> None:
    fake.down = True

    for path in ("/api/queues", "/api/queues/default", "/api/workers", "/api/queues/default/dead-letters"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "redis://:***@fake-broker:6379/0" in response.json()["error"]
        assert "s3cret" not in response.text


def test_reads_need_the_token_when_one_is_configured(make_client: ClientFactory) -> None:
    client = make_client(auth_token="t0ken")

    assert client.get("/api/queues").status_code == 401
    assert client.get("/api/queues", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_openapi_document_describes_the_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert {"/api/queues", "/api/queues/{queue}", "/api/workers", "/metrics", "/readyz"} <= set(
        document["paths"]
    )
    assert "HTTPBearer" in document["components"]["securitySchemes"]
