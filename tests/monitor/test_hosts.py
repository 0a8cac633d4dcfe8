"""Every route refuses a Host that does not name the monitor (DNS rebinding), with a JSON error."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tasklens.cli.monitor import monitor
from tasklens.monitor.http.hosts import HostPolicy
from tests.monitor.conftest import AUTH, TOKEN, ClientFactory
from tests.monitor.processes import running_monitor

#: One request per kind of route: pages, static files, the API, the DLQ, health, /metrics, OTLP.
ROUTES = [
    ("GET", "/"),
    ("GET", "/static/index.html"),
    ("GET", "/api/queues"),
    ("GET", "/api/queues/default/dead-letters"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/traces"),
    ("POST", "/v1/metrics"),
    ("POST", "/v1/logs"),
]


def _request(client: TestClient, method: str, path: str, host: str) -> httpx.Response:
    headers = {"Host": host, "Content-Type": "application/x-protobuf", **AUTH}
    return client.request(method, path, headers=headers, content=b"" if method == "POST" else None)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_rebound_name_is_refused_on_every_route(client: TestClient, method: str, path: str) -> None:
    response = _request(client, method, path, "attacker.example:9191")

    assert response.status_code == 421
    assert "attacker.example" in response.json()["error"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:9191", "localhost:9191", "[::1]:9191", "LOCALHOST", "localhost."]
)
def test_loopback_names_are_served(client: TestClient, host: str) -> None:
    assert _request(client, "GET", "/api/queues", host).status_code == 200


def test_allowed_hosts_are_served_and_others_still_refused(make_client: ClientFactory) -> None:
    client = make_client(allowed_hosts=("monitor.internal",))

    assert _request(client, "GET", "/api/queues", "monitor.internal:9191").status_code == 200
    assert _request(client, "GET", "/api/queues", "monitor.internal.attacker.example").status_code == 421


def test_an_exposed_monitor_answers_to_its_addresses_but_not_to_names(make_client: ClientFactory) -> None:
    client = make_client(host="0.0.0.0", auth_token=TOKEN)

    assert _request(client, "GET", "/metrics", "10.1.2.3:9191").status_code == 200
    assert _request(client, "GET", "/metrics", "[fd00::5]:9191").status_code == 200
    assert _request(client, "GET", "/metrics", "attacker.example").status_code == 421


def test_a_monitor_bound_to_one_address_answers_to_it_and_loopback_only() -> None:
    policy = HostPolicy.for_bind("10.0.0.5")

    assert [policy.allows(host) for host in ("10.0.0.5:9191", "127.0.0.1", "10.0.0.6", "evil.test")] == [
        True,
        True,
        False,
        False,
    ]


def test_a_served_monitor_refuses_a_rebound_name() -> None:
    with running_monitor("--broker", "redis://127.0.0.1:1/0") as url:
        refused = httpx.get(f"{url}/api/queues", headers={"Host": "attacker.example"})
        served = httpx.get(f"{url}/healthz")

    assert refused.status_code == 421
    assert refused.json()["error"]
    assert served.status_code == 200


@pytest.mark.parametrize("name", ["bad host", "a/b", "x:y:z", ""])
def test_the_command_refuses_an_invalid_allowed_host(name: str) -> None:
    result = CliRunner().invoke(monitor, ["--allowed-host", name])

    assert result.exit_code == 2
    assert "--allowed-host" in result.output
