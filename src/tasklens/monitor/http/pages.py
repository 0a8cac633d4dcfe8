"""The web dashboard: the page routes and the static files they load.

Every page is the same small HTML shell (``static/index.html``); the JavaScript module for the
path fills it from the monitor's JSON API and keeps it up to date by polling. Everything the
pages need ships in ``static/``: nothing is fetched from another server.

=================================  ==========================================================
``/``                              overview: throughput, errors, p95, depth, workers
``/actors``, ``/actors/{actor}``   per-actor figures; one actor's charts and recent runs
``/runs``, ``/runs/{trace_id}``    searchable runs; one run's trace as a waterfall
``/queues``                        depth history and the dead-letter browser
``/workers``                       live workers and each process's CPU and memory
``/alerts``                        firing alerts, their history, the rules and notifiers
``/static/...``                    the pages' HTML, CSS, JavaScript and icon
``/docs``                          the API reference: Swagger UI (from ``swagger-ui-bundle``)
                                   reading ``/openapi.json``
=================================  ==========================================================

There is no ``/redoc``: one reference page is enough, and ReDoc ships in no package made for
serving it from FastAPI on its own.

The pages themselves are public (they hold no data); the JSON they read is protected by the
API's own token checks, and the token the user types is kept in the browser's local storage.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE_PATHS", "STATIC_DIR", "router"]

#: The directory holding the dashboard's HTML, CSS and JavaScript.
STATIC_DIR = Path(__file__).parents[1] / "static"
#: The page routes; each answers with the shell that loads the page's module.
PAGE_PATHS: tuple[str, ...] = (
    "/",
    "/actors",
    "/actors/{actor}",
    "/runs",
    "/runs/{trace_id}",
    "/queues",
    "/workers",
    "/alerts",
)
#: What the page may load and talk to: only this monitor. Style attributes are allowed because
#: the charts and the waterfall position their parts with them; scripts only from files.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
#: Headers of every page. Pages are small and change with the package: the browser revalidates
#: them every time.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

#: Swagger UI's files, as ``swagger-ui-bundle`` ships them.
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
#: The two of them ``/docs`` loads, and their types.
SWAGGER_UI_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}

router = APIRouter(include_in_schema=False)


def page() -> FileResponse:
    """The page shell; the path decides which page module it runs."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


for _path in PAGE_PATHS:
    router.add_api_route(_path, page, methods=["GET"], name=f"page:{_path}")


@router.get("/docs")
def api_reference() -> FileResponse:
    """The API reference page."""
    return FileResponse(STATIC_DIR / "docs.html", media_type="text/html", headers=PAGE_HEADERS)


def _swagger_ui_file(name: str) -> None:
    def serve() -> FileResponse:
        return FileResponse(SWAGGER_UI_DIR / name, media_type=SWAGGER_UI_FILES[name])

    router.add_api_route(f"/docs/{name}", serve, methods=["GET"], name=f"docs:{name}")


for _name in SWAGGER_UI_FILES:
    _swagger_ui_file(_name)

router.mount("/static", StaticFiles(directory=STATIC_DIR, follow_symlink=False), name="static")
