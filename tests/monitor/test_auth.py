"""Who may read /metrics and health: loopback, --public-metrics, or the token."""

from __future__ import annotations

import pytest

from tests.monitor.conftest import AUTH, TOKEN, ClientFactory

PUBLIC_PATHS = ["/metrics", "/healthz", "/readyz", "/api/health"]


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_loopback_serves_metrics_and_health_without_the_token(make_client: ClientFactory, path: str) -> None:
    client = make_client(host="127.0.0.1", auth_token=TOKEN)

    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_exposed_bind_requires_the_token_for_metrics_and_health(
    make_client: ClientFactory, path: str
) -> None:
    client = make_client(host="0.0.0.0", auth_token=TOKEN)

    refused = client.get(path)

    assert refused.status_code == 401
    assert refused.json()["error"].startswith("missing bearer token")
    assert client.get(path, headers=AUTH).status_code == 200


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_metrics_opens_metrics_and_health_only(make_client: ClientFactory, path: str) -> None:
    client = make_client(host="0.0.0.0", auth_token=TOKEN, public_metrics=True)

    assert client.get(path).status_code == 200
    assert client.get("/api/queues").status_code == 401
    assert client.delete("/api/queues/default/dead-letters").status_code == 401


def test_insecure_exposed_bind_serves_reads_but_never_actions(make_client: ClientFactory) -> None:
    client = make_client(host="0.0.0.0", insecure=True)

    assert client.get("/metrics").status_code == 200
    assert client.get("/api/queues").status_code == 200
    assert client.delete("/api/queues/default/dead-letters").status_code == 403


def test_a_token_in_another_scheme_is_not_accepted(make_client: ClientFactory) -> None:
    client = make_client(auth_token=TOKEN)

    assert client.get("/api/queues", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
