"""The dashboard's pages and assets as HTTP resources: served, typed, and self-contained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tasklens.monitor.http import pages

#: The only absolute URL the assets may contain: the SVG namespace, which is a name, not a fetch.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.include_router(pages.router)
    return TestClient(app)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/actors",
        "/actors/send_email",
        "/runs",
        "/runs/0af7651916cd43dd8448eb211c80319c",
        "/queues",
        "/workers",
    ],
)
def test_every_page_answers_with_the_shell(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in response.text


def test_pages_may_load_and_call_nothing_but_the_monitor(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/static/js/app.js", "text/javascript"),
        ("/static/css/tasklens.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_media_type(client: TestClient, path: str, media_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


def test_files_outside_the_static_directory_are_not_served(client: TestClient) -> None:
    assert client.get("/static/../pages.py").status_code == 404
    assert client.get("/static/%2e%2e/pages.py").status_code == 404


def test_assets_load_nothing_from_other_servers() -> None:
    for asset in sorted(pages.STATIC_DIR.rglob("*")):
        if asset.is_file():
            urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", asset.read_text()))
            assert urls <= ALLOWED_URLS, (
                f"{asset.relative_to(pages.STATIC_DIR)} refers to {urls - ALLOWED_URLS}"
            )


def test_every_module_the_pages_import_exists() -> None:
    for module in sorted(pages.STATIC_DIR.rglob("*.js")):
        for target in re.findall(
            r"""import\s*(?:[^'"]*\s+from\s+)?\(?\s*["'](\.[^"']+)["']""", module.read_text()
        ):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"


def test_no_asset_parses_data_as_html() -> None:
    for module in sorted(pages.STATIC_DIR.rglob("*.js")):
        text = module.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in text, f"{module.name} uses {sink}: render data with text nodes"


def test_the_static_directory_ships_inside_the_package() -> None:
    assert pages.STATIC_DIR.is_dir()
    # tasklens/monitor/static, beside the monitor's parts (pages.py is in tasklens/monitor/http).
    assert Path(pages.__file__).parents[1] in pages.STATIC_DIR.parents
