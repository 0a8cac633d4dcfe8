"""Run a failed Celery task again, with its original arguments, once.

``POST /api/runs/{trace_id}/{span_id}/run-again`` (bearer token, like every action) reads the
failed run's process span from the store: its task name (``celery.task.name``), queue
(``messaging.destination.name``) and arguments (``celery.task.args``, recorded by workers with
``capture_args``), or else from its dead letter, where its queue keeps one (Celery on RabbitMQ
with a dead-letter exchange). The task is sent again through Celery itself (``send_task`` of the ``--app``
when given, else of an app made for the monitor's broker URL), so the message is Celery's own
protocol; its ``traceparent`` header is the failed run's, so the new run is a child of the failed
one in the same trace.

A run whose arguments were not captured, were redacted or cut short cannot be sent again as it
was: the action refuses (409) and says why, rather than send something else. Each failed run is
sent again at most once: the first request claims the run in the store (one ``INSERT`` on its
primary key, atomic across threads and processes), so a double click publishes once and the
second request is told which task the first one sent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel

from tasklens import semconv
from tasklens.brokers.base import BrokerError
from tasklens.messaging.arguments import MAX_ARGS_LENGTH, REDACTED
from tasklens.monitor.http.auth import action_access
from tasklens.monitor.http.errors import ErrorBody, error_response
from tasklens.monitor.http.state import MonitorState, monitor_state
from tasklens.monitor.settings import BrokerSpec, MonitorSettings
from tasklens.monitor.store import StoreReader
from tasklens.monitor.store.schema import connect

__all__ = ["RunAgainLedger", "RunAgainOut", "RunAgainRefused", "run_again_router"]

logger = logging.getLogger(__name__)

#: A trace id (32 hex digits) and a span id (16).
TRACE_ID_PATTERN = r"^[0-9a-fA-F]{32}$"
SPAN_ID_PATTERN = r"^[0-9a-fA-F]{16}$"
#: The W3C trace-context header the new task carries: the failed run's span, sampled.
TRACEPARENT_HEADER = "traceparent"
#: The table of runs already sent again (one row per failed run).
LEDGER_TABLE = """
CREATE TABLE IF NOT EXISTS run_again (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (trace_id, span_id)
)
"""


class RunAgainRefused(Exception):
    """The run cannot be sent again; ``status`` is the HTTP status that says why.

    Parameters:
      status(int): 404 (no such run), 409 (not a failed Celery run, or arguments unknown).
      message(str): What is wrong and what to do about it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RunAgainOut(BaseModel):
    """A failed run sent again."""

    task_id: str
    task: str
    queue: str
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class FailedRun:
    """What sending a failed Celery run again needs.

    Parameters:
      trace_id(str): Its trace.
      span_id(str): Its process span.
      task(str): The task's name.
      queue(str): The queue it ran from.
      args(list): Its positional arguments.
      kwargs(dict): Its keyword arguments.
      message_id(str|None): Its task id, by which its dead letter is found.
    """

    trace_id: str
    span_id: str
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    message_id: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


class RunAgainLedger:
    """Which failed runs were sent again, in the store's database.

    Parameters:
      path(Path|str): The store's database file.
    """

    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        self._conn.execute(LEDGER_TABLE)
        self._lock = threading.Lock()

    def claim(self, trace_id: str, span_id: str, task_id: str) -> str | None:
        """Claim the run for ``task_id``; ``None`` when claimed now, else the task id that
        claimed it first."""
        with self._lock:
            inserted = self._conn.execute(
                "INSERT OR IGNORE INTO run_again (trace_id, span_id, task_id, sent_at) VALUES (?, ?, ?, ?)",
                (trace_id, span_id, task_id, time.time()),
            ).rowcount
            if inserted == 1:
                return None
            row = self._conn.execute(
                "SELECT task_id FROM run_again WHERE trace_id = ? AND span_id = ?", (trace_id, span_id)
            ).fetchone()
            return str(row[0]) if row else task_id

    def release(self, trace_id: str, span_id: str) -> None:
        """Forget a claim whose publish failed, so that the run may be sent again later."""
        with self._lock:
            self._conn.execute(
                "DELETE FROM run_again WHERE trace_id = ? AND span_id = ?", (trace_id, span_id)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class ArgumentsUnknown(RunAgainRefused):
    """The span does not tell the run's arguments (its dead letter may)."""

    def __init__(self, message: str, run: FailedRun) -> None:
        super().__init__(409, message)
        self.run = run


def failed_run(reader: StoreReader, trace_id: str, span_id: str) -> FailedRun:
    """The failed Celery run of that span, with its arguments. Raises RunAgainRefused, or
    ArgumentsUnknown (carrying the run without its arguments) when the span has none to replay."""
    found = reader.trace(trace_id.lower())
    span = next((s for s in (found or {}).get("spans", []) if s.get("span_id") == span_id.lower()), None)
    if span is None:
        raise RunAgainRefused(404, f"no run {trace_id}/{span_id} in the store")
    attributes = span.get("attributes") or {}
    task = attributes.get(semconv.CELERY_TASK_NAME)
    if attributes.get(semconv.MESSAGING_SYSTEM) != semconv.MESSAGING_SYSTEM_CELERY or not task:
        raise RunAgainRefused(409, f"run {trace_id}/{span_id} is not a Celery task run")
    if attributes.get(semconv.MESSAGING_OPERATION_TYPE) != semconv.OPERATION_PROCESS:
        raise RunAgainRefused(409, f"span {span_id} is not a task run (a process span)")
    if span.get("status") != "ERROR":
        raise RunAgainRefused(
            409, f"run {trace_id}/{span_id} of {task} did not fail: only failed runs run again"
        )
    queue = attributes.get(semconv.MESSAGING_DESTINATION_NAME)
    message_id = attributes.get(semconv.MESSAGING_MESSAGE_ID)
    run = FailedRun(
        trace_id=trace_id.lower(),
        span_id=span_id.lower(),
        task=str(task),
        queue=str(queue or ""),
        args=[],
        kwargs={},
        message_id=str(message_id) if message_id else None,
    )
    try:
        args, kwargs = _captured(run.task, attributes.get(semconv.CELERY_TASK_ARGS))
    except RunAgainRefused as refused:
        raise ArgumentsUnknown(str(refused), run) from None
    return replace(run, args=args, kwargs=kwargs)


def _from_dead_letter(state: MonitorState, run: FailedRun, reason: str) -> FailedRun:
    """The run with the arguments of its dead letter (Celery on RabbitMQ with a dead-letter
    exchange keeps the message as it was sent). Raises RunAgainRefused saying both reasons."""
    if run.message_id and run.queue:
        try:
            with state.actions.borrow() as inspector:
                letter = inspector.for_queue(run.queue, semconv.MESSAGING_SYSTEM_CELERY).dead_letter(
                    run.queue, run.message_id
                )
        except BrokerError:
            pass
        else:
            return replace(run, args=list(letter.args), kwargs=dict(letter.kwargs))
    raise RunAgainRefused(409, f"{reason}; nor is the task a dead letter of queue {run.queue!r}")


def _captured(task: str, value: Any) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(value, str):
        raise RunAgainRefused(
            409,
            f"the arguments of this {task} run were not recorded: start the workers with "
            "capture_args=True to run failed tasks again from the dashboard",
        )
    if len(value) >= MAX_ARGS_LENGTH and value.endswith("…"):
        raise RunAgainRefused(409, f"the arguments of this {task} run were cut short when recorded")
    try:
        decoded = json.loads(value)
    except ValueError:
        raise RunAgainRefused(409, f"the recorded arguments of this {task} run are not readable") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("args"), list):
        raise RunAgainRefused(409, f"the recorded arguments of this {task} run are a custom selection")
    if REDACTED in value:
        raise RunAgainRefused(409, f"some arguments of this {task} run were redacted when recorded")
    kwargs = decoded.get("kwargs")
    return list(decoded["args"]), dict(kwargs) if isinstance(kwargs, dict) else {}


class CelerySender:
    """Sends tasks through Celery: the ``--app``'s app, or one made for the broker URL.

    Parameters:
      settings(MonitorSettings): The monitor's broker URL, app and transport options.
    """

    def __init__(self, settings: MonitorSettings) -> None:
        self._settings = settings
        self._app: Any = None
        self._lock = threading.Lock()

    def _celery(self) -> Any:
        with self._lock:
            if self._app is None:
                from celery import Celery

                spec = _celery_spec(self._settings)
                if spec.app:
                    from tasklens.brokers.app import load_celery_app

                    self._app = load_celery_app(spec.app)
                else:
                    self._app = Celery("tasklens-monitor", broker=spec.url)
                    self._app.conf.broker_transport_options = dict(self._settings.transport_options)
            return self._app

    def send(self, run: FailedRun, task_id: str) -> None:
        """Publish the task again with its arguments under ``task_id``, a child of the failed run."""
        options: dict[str, Any] = {"task_id": task_id, "headers": {TRACEPARENT_HEADER: run.traceparent}}
        if run.queue:
            options["queue"] = run.queue
        # Where this process is instrumented, its send span (and the context it writes into the
        # headers) must be a child of the failed run, not a trace of its own.
        failed = trace.SpanContext(
            int(run.trace_id, 16), int(run.span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(1)
        )
        token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(failed)))
        try:
            self._celery().send_task(run.task, args=run.args, kwargs=run.kwargs, **options)
        finally:
            otel_context.detach(token)

    def close(self) -> None:
        with self._lock:
            if self._app is not None and not self._settings.app:
                self._app.close()
            self._app = None


def run_again_router(reader: StoreReader, ledger: RunAgainLedger) -> APIRouter:
    """The run-again action's route (needs the token).

    Parameters:
      reader(StoreReader): Where failed runs are read.
      ledger(RunAgainLedger): Which runs were sent again already.
    """
    router = APIRouter(
        prefix="/api",
        tags=["runs"],
        dependencies=[Depends(action_access)],
        responses={
            401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
            403: {"model": ErrorBody, "description": "The monitor has no auth token: actions are disabled."},
            404: {"model": ErrorBody, "description": "No such run in the store."},
            409: {
                "model": ErrorBody,
                "description": "Not a failed Celery run, its arguments are unknown, or it ran again already.",
            },
            503: {"model": ErrorBody, "description": "The broker did not take the task."},
        },
    )
    # Made on first use, from the settings of the app serving the request.
    senders: list[CelerySender] = []

    @router.post(
        "/runs/{trace_id}/{span_id}/run-again",
        summary="Send a failed Celery task again with its original arguments",
        response_model=RunAgainOut,
    )
    def run_again(
        state: Annotated[MonitorState, Depends(monitor_state)],
        trace_id: Annotated[str, PathParam(pattern=TRACE_ID_PATTERN)],
        span_id: Annotated[str, PathParam(pattern=SPAN_ID_PATTERN)],
    ) -> Any:
        try:
            try:
                run = failed_run(reader, trace_id, span_id)
            except ArgumentsUnknown as unknown:
                run = _from_dead_letter(state, unknown.run, str(unknown))
        except RunAgainRefused as refused:
            return error_response(refused.status, str(refused))
        task_id = str(uuid.uuid4())
        first = ledger.claim(run.trace_id, run.span_id, task_id)
        if first is not None:
            return error_response(409, f"this {run.task} run was sent again already, as task {first}")
        if not senders:
            senders.append(CelerySender(state.settings))
        sender = senders[0]
        try:
            sender.send(run, task_id)
        except Exception as e:  # whatever failed, the run stays claimable
            ledger.release(run.trace_id, run.span_id)
            logger.warning("Could not send %s again: %s", run.task, e)
            return error_response(
                503, f"the broker at {state.broker} did not take the task: {type(e).__name__}"
            )
        logger.info("Sent %s again as task %s (failed run %s/%s).", run.task, task_id, trace_id, span_id)
        return RunAgainOut(
            task_id=task_id, task=run.task, queue=run.queue, trace_id=run.trace_id, span_id=run.span_id
        )

    return router


def _celery_spec(settings: MonitorSettings) -> BrokerSpec:
    """The broker Celery tasks are sent again through: the first one said to be Celery's (by
    ``--library`` or an app), else the first one."""
    specs = settings.broker_specs
    for spec in specs:
        if spec.library == semconv.MESSAGING_SYSTEM_CELERY:
            return spec
    return next((spec for spec in specs if spec.app), specs[0])
