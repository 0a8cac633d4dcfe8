"""The dashboard's data API: the JSON routes the web UI reads from the embedded store.

Every route is a GET answering JSON, with times in Unix seconds, durations in seconds and
``window`` given like ``15m``, ``1h`` or ``24h``. ``docs/dashboard-api.md`` describes each
response; a parameter that is not acceptable is answered with 400 and ``{"error": "..."}``.

- ``/api/overview``: throughput, error rate and p95 over time, depth over time, live workers,
  the worst actors.
- ``/api/actors`` and ``/api/actors/{actor}``: per-actor figures; an actor's series and runs.
- ``/api/runs``: task executions, newest first, filtered and paged.
- ``/api/traces/{trace_id}``: a trace's spans and log records, for the waterfall.
- ``/api/queues/history``: depth per queue and state over time.
- ``/api/processes``: CPU, memory and threads of each worker process.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tasklens.monitor.errors import ErrorBody, error_response
from tasklens.monitor.store import InvalidQuery, RunFilter, StoreReader, parse_duration

__all__ = ["DEFAULT_PROCESS_WINDOW", "DEFAULT_WINDOW", "MAX_WINDOW", "dashboard_router"]

#: The window of the charts and tables unless ``window`` says otherwise.
DEFAULT_WINDOW = "1h"
#: The window of ``/api/processes`` unless ``window`` says otherwise.
DEFAULT_PROCESS_WINDOW = "15m"
#: The error responses every route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A parameter is not acceptable."},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
}
#: ... and those of the routes that read one actor or trace.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such actor or trace in the store."},
}
#: The longest window accepted, in seconds (31 days).
MAX_WINDOW = 31 * 86400.0


def _window(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise InvalidQuery(f"window: {error}") from None
    if seconds > MAX_WINDOW:
        raise InvalidQuery("window: at most 31d")
    return seconds


def _number(name: str, text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidQuery(f"{name} must be a number (Unix seconds)") from None


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return RunFilter.limit
    if not text.isdigit():
        raise InvalidQuery("limit must be a positive integer")
    return int(text)


def dashboard_router(reader: StoreReader, dependencies: list[Any] | None = None) -> APIRouter:
    """The dashboard data routes, reading from ``reader``.

    Include it before a router with ``/api/queues/{queue}``, so that ``/api/queues/history``
    reaches this one.

    Parameters:
      reader(StoreReader): The store's reader.
      dependencies(list|None): FastAPI dependencies of every route (access checks).
    """
    router = APIRouter(tags=["dashboard"], dependencies=dependencies or [])

    @router.get(
        "/api/overview", summary="Throughput, errors, p95, depth, workers, worst actors", responses=ERRORS
    )
    def overview(window: str = DEFAULT_WINDOW) -> Any:
        try:
            return {"window": window, **reader.overview(_window(window))}
        except InvalidQuery as error:
            return error_response(400, str(error))

    @router.get(
        "/api/actors", summary="Per-actor rate, errors, percentiles, retries, dead letters", responses=ERRORS
    )
    def actors(window: str = DEFAULT_WINDOW) -> Any:
        try:
            return {"window": window, **reader.actors(_window(window))}
        except InvalidQuery as error:
            return error_response(400, str(error))

    @router.get(
        "/api/actors/{actor}", summary="One actor: figures, series and recent runs", responses=NOT_FOUND
    )
    def actor(actor: str, window: str = DEFAULT_WINDOW) -> Any:
        try:
            found = reader.actor(actor, _window(window))
        except InvalidQuery as error:
            return error_response(400, str(error))
        if found is None:
            return error_response(404, f"no runs of actor {actor!r} in the last {window}")
        return {"window": window, **found}

    @router.get("/api/runs", summary="Task executions, newest first", responses=ERRORS)
    def runs(
        actor: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        q: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: str | None = None,
        cursor: str | None = None,
    ) -> Any:
        try:
            query = RunFilter(
                actor=actor or None,
                queue=queue or None,
                status=status or None,
                text=q or None,
                since=_number("since", since),
                until=_number("until", until),
                limit=_limit(limit),
                cursor=cursor or None,
            )
            return reader.runs(query)
        except InvalidQuery as error:
            return error_response(400, str(error))

    @router.get("/api/traces/{trace_id}", summary="A trace's spans and logs", responses=NOT_FOUND)
    def trace(trace_id: str) -> Any:
        try:
            found = reader.trace(trace_id)
        except InvalidQuery as error:
            return error_response(400, str(error))
        if found is None:
            return error_response(404, f"trace {trace_id} is not in the store")
        return found

    @router.get("/api/queues/history", summary="Depth per queue and state over time", responses=ERRORS)
    def queue_history(queue: str | None = None, window: str = DEFAULT_WINDOW) -> Any:
        try:
            return {"window": window, **reader.queue_history(_window(window), queue or None)}
        except InvalidQuery as error:
            return error_response(400, str(error))

    @router.get("/api/processes", summary="CPU, memory and threads of each worker process", responses=ERRORS)
    def processes(window: str = DEFAULT_PROCESS_WINDOW) -> Any:
        try:
            return {"window": window, **reader.processes(_window(window))}
        except InvalidQuery as error:
            return error_response(400, str(error))

    return router
