"""Every response says nosniff and has a CSP; /docs and /redoc, which would load a CDN, are off."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tasklens.monitor.pages import CONTENT_SECURITY_POLICY

RESPONSES = [
    ("GET", "/api/queues"),
    ("GET", "/api/queues/nope"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/static/js/app.js"),
    ("GET", "/static/index.html"),
    ("GET", "/"),
    ("POST", "/v1/traces"),
]


@pytest.mark.parametrize(("method", "path"), RESPONSES)
def test_every_response_says_nosniff_and_has_a_csp(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Content-Type": "application/x-protobuf"}, content=b"")

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_cdn_documentation_pages_are_not_served(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert "cdn" not in response.text.lower()
    assert client.get("/openapi.json").json()["info"]["title"] == "tasklens monitor"
