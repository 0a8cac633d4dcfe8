"""The dashboard's data API: the JSON routes the web UI reads from the embedded store.

Every route is a GET answering JSON, with times in Unix seconds, durations in seconds and
``window`` given like ``15m``, ``1h`` or ``24h`` (windows beyond ``MAX_WINDOW`` count as it).
``docs/dashboard-api.md`` describes each response. The OpenAPI schema states what each parameter
accepts; a request outside it is answered with 422 and ``{"error": "..."}``, as every error of the
monitor is.

- ``/api/overview``: throughput, error rate and p95 over time, depth over time, live workers,
  the worst actors.
- ``/api/actors`` and ``/api/actors/{actor}``: per-actor figures; an actor's series and runs.
- ``/api/runs``: task executions, newest first, filtered and paged.
- ``/api/traces/{trace_id}``: a trace's spans and log records, for the waterfall.
- ``/api/queues/history``: depth per queue and state over time.
- ``/api/processes``: each process (worker or producer) by host and pid: its queues, what it
  runs now, CPU, memory and threads now and over the window.
- ``/api/monitor``: whether this monitor accepts dead-letter actions (it needs a token).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute

from tasklens.monitor.http.auth import NO_TOKEN_MESSAGE
from tasklens.monitor.http.errors import ErrorBody, error_response
from tasklens.monitor.http.state import MonitorState, monitor_state
from tasklens.monitor.store import InvalidQuery, RunFilter, StoreReader, parse_duration
from tasklens.monitor.store.queries import DEFAULT_RUNS_LIMIT, MAX_RUNS_LIMIT

__all__ = ["DEFAULT_PROCESS_WINDOW", "DEFAULT_WINDOW", "MAX_WINDOW", "dashboard_router"]

#: The window of the charts and tables unless ``window`` says otherwise.
DEFAULT_WINDOW = "1h"
#: The window of ``/api/processes`` unless ``window`` says otherwise.
DEFAULT_PROCESS_WINDOW = "15m"
#: The longest window looked at, in seconds (31 days); a longer one counts as this.
MAX_WINDOW = 31 * 86400.0
#: Latest time accepted by ``since`` and ``until``, in Unix seconds (the year 2255: beyond, the
#: store's nanosecond times overflow).
MAX_TIME = 9e9

#: A positive number, optionally followed by s, m, h, d or w.
WINDOW_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)[smhdw]?$"
#: ``next_cursor`` as ``/api/runs`` returns it.
CURSOR_PATTERN = r"^[0-9]{1,19}:[0-9]{1,19}$"
#: A trace id: 32 hexadecimal digits.
TRACE_ID_PATTERN = r"^[0-9a-fA-F]{32}$"

#: The error responses every route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    422: {"model": ErrorBody, "description": "A parameter is not acceptable."},
}
#: ... and those of the routes that read one actor or trace.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such actor or trace in the store."},
}

#: The ``status`` filters of ``/api/runs``.
RunStatus = Literal["ok", "error", "failed", "retried", "dead_lettered", "succeeded_after_retry"]

Window = Annotated[str, Query(pattern=WINDOW_PATTERN, description="How far back, like 15m, 1h or 24h.")]
Time = Annotated[float | None, Query(ge=0, le=MAX_TIME, description="Unix seconds.")]


def known_parameters(request: Request) -> None:
    """Refuse query parameters the route does not take, and any given twice: a misspelt or
    repeated filter is an error, not a silently different answer."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = {param.alias for param in route.dependant.query_params}
    for dependency in route.dependant.dependencies:
        known.update(param.alias for param in dependency.query_params)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise HTTPException(422, f"unknown query parameter {unknown[0]!r}: this route takes {accepted}")
    repeated = sorted(key for key in set(request.query_params) if len(request.query_params.getlist(key)) > 1)
    if repeated:
        raise HTTPException(422, f"query parameter {repeated[0]!r} given more than once: give it once")


def _seconds(window: str) -> float:
    return min(parse_duration(window), MAX_WINDOW)


def dashboard_router(reader: StoreReader, dependencies: list[Any] | None = None) -> APIRouter:
    """The dashboard data routes, reading from ``reader``.

    Include it before a router with ``/api/queues/{queue}``, so that ``/api/queues/history``
    reaches this one.

    Parameters:
      reader(StoreReader): The store's reader.
      dependencies(list|None): FastAPI dependencies of every route (access checks).
    """
    router = APIRouter(
        tags=["dashboard"], dependencies=[*(dependencies or []), Depends(known_parameters)], responses=ERRORS
    )

    @router.get("/api/overview", summary="Throughput, errors, p95, depth, workers, worst actors")
    def overview(window: Window = DEFAULT_WINDOW) -> dict[str, Any]:
        return {"window": window, **reader.overview(_seconds(window))}

    @router.get("/api/actors", summary="Per-actor rate, errors, percentiles, retries, dead letters")
    def actors(window: Window = DEFAULT_WINDOW) -> dict[str, Any]:
        return {"window": window, **reader.actors(_seconds(window))}

    @router.get(
        "/api/actors/{actor}", summary="One actor: figures, series and recent runs", responses=NOT_FOUND
    )
    def actor(actor: str, window: Window = DEFAULT_WINDOW) -> Any:
        found = reader.actor(actor, _seconds(window))
        if found is None:
            return error_response(404, f"no runs of actor {actor!r} in the last {window}")
        return {"window": window, **found}

    @router.get("/api/runs", summary="Task executions, newest first")
    def runs(
        actor: str | None = None,
        queue: str | None = None,
        status: Annotated[
            RunStatus | None,
            Query(
                description="ok or error (by the span's status), or how the attempt ended: failed (for"
                " good, no retry), retried, dead_lettered, succeeded_after_retry."
            ),
        ] = None,
        q: Annotated[
            str | None,
            Query(description="A message or trace id, or part of an actor, exception type or message."),
        ] = None,
        since: Time = None,
        until: Time = None,
        limit: Annotated[int, Query(ge=1, le=MAX_RUNS_LIMIT)] = DEFAULT_RUNS_LIMIT,
        cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    ) -> Any:
        query = RunFilter(
            actor=actor or None,
            queue=queue or None,
            status=status,
            text=q or None,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        try:
            return reader.runs(query)
        except InvalidQuery as error:
            return error_response(422, str(error))

    @router.get("/api/traces/{trace_id}", summary="A trace's spans and logs", responses=NOT_FOUND)
    def trace(trace_id: Annotated[str, Path(pattern=TRACE_ID_PATTERN)]) -> Any:
        found = reader.trace(trace_id)
        if found is None:
            return error_response(404, f"trace {trace_id} is not in the store")
        return found

    @router.get("/api/queues/history", summary="Depth per queue and state over time")
    def queue_history(queue: str | None = None, window: Window = DEFAULT_WINDOW) -> dict[str, Any]:
        return {"window": window, **reader.queue_history(_seconds(window), queue or None)}

    @router.get(
        "/api/processes", summary="Each process: host, pid, queues, what it runs now, CPU and memory history"
    )
    def processes(window: Window = DEFAULT_PROCESS_WINDOW) -> dict[str, Any]:
        return {"window": window, **reader.processes(_seconds(window))}

    @router.get("/api/monitor", summary="What this monitor allows the pages to do")
    def monitor(state: Annotated[MonitorState, Depends(monitor_state)]) -> dict[str, Any]:
        allowed = state.settings.auth_token is not None
        return {"dead_letter_actions": allowed, "reason": None if allowed else NO_TOKEN_MESSAGE}

    return router
