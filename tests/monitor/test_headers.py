"""Every response says nosniff and has a CSP; /docs ships every file it loads; /redoc is off."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tasklens.monitor.http.pages import CONTENT_SECURITY_POLICY

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


def test_the_api_reference_is_served_with_every_file_it_needs_and_a_csp(client: TestClient) -> None:
    page = client.get("/docs")
    assets = [client.get(path) for path in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js")]
    initializer = client.get("/static/js/docs.js")

    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # Everything it loads comes from the monitor itself.
    assert set(re.findall(r'(?:src|href)="([^"]+)"', page.text)) == {
        "/static/favicon.svg",
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/static/js/docs.js",
    }
    assert [(r.status_code, r.headers["content-type"].split(";")[0]) for r in assets] == [
        (200, "text/css"),
        (200, "text/javascript"),
    ]
    assert "SwaggerUIBundle" in assets[1].text
    assert '"/openapi.json"' in initializer.text
    assert "<script>" not in page.text


@pytest.mark.parametrize("path", ["/redoc", "/docs/oauth2-redirect"])
def test_the_cdn_documentation_pages_are_not_served(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "tasklens monitor"
