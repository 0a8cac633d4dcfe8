"""``GET /api/alerts``: in the OpenAPI document, guarded like the other ``/api`` reads."""

from __future__ import annotations

import time

from tasklens.monitor.alerts import build_alert_config
from tests.monitor.conftest import AUTH, TOKEN, ClientFactory


def test_documented_and_guarded_by_the_token(make_client: ClientFactory) -> None:
    client = make_client(auth_token=TOKEN)
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/api/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    body = client.get("/api/alerts", headers=AUTH).json()
    assert body["enabled"] is False and body["firing"] == [] and body["rules"] == []
    operation = client.get("/openapi.json", headers=AUTH).json()["paths"]["/api/alerts"]["get"]
    assert operation["security"]
    assert "AlertsOut" in operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


def test_a_firing_alert_is_listed(make_client: ClientFactory, tmp_path) -> None:
    config = build_alert_config(
        rules=[("backlog", {"threshold": "2", "for": "0s"})],
        interval="0.1s",
        state_path=str(tmp_path / "a.json"),
    )
    client = make_client(alerts=config)
    deadline = time.monotonic() + 10
    while not (body := client.get("/api/alerts").json())["firing"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert [(a["key"], a["value"], a["severity"]) for a in body["firing"]] == [
        ("backlog:default", 3.0, "warning")
    ]
    assert {r["name"] for r in body["rules"]} >= {"backlog", "broker_unreachable"}
    assert body["enabled"] is True and body["notifiers"] == []
