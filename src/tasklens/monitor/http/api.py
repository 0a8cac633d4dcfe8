"""The REST API: queues, one queue, workers, and the dead-letter actions.

Dead letters come newest first on Redis and in queue order (oldest first) on RabbitMQ. A requeue
or delete naming an id that is not a dead letter of the queue changes nothing and answers 404.

Reads come from the cached snapshot (see ``SnapshotReader``); dead-letter reads and actions go
to the broker through their own inspector, one at a time. Actions need the bearer token.

When the monitor reads several brokers (Dramatiq's and Celery's), every queue carries its
``messaging_system``; the routes naming a queue take ``?messaging_system=dramatiq|celery``, which
is needed only when both libraries have a queue of that name (without it they answer 409 with the
``choices``); when two brokers of one library have it, ``?broker=`` (the redacted URL as
``brokers`` lists it, or its index) chooses among them, the 409's ``choices`` then being the
brokers. With one broker, a ``messaging_system`` that is not its library is 404.

=========================================================  =====================================
``GET /api/queues``                                        every queue's counts and the workers
``GET /api/queues/{queue}``                                one queue's counts
``GET /api/workers``                                       live workers
``GET /api/queues/{queue}/dead-letters?offset=&limit=``    a page of dead letters, newest first
``GET /api/queues/{queue}/dead-letters/{message_id}``      one dead letter with its traceback
``POST /api/queues/{queue}/dead-letters/requeue``          requeue some ids or all (token)
``POST /api/queues/{queue}/dead-letters/delete``           delete some ids (token)
``DELETE /api/queues/{queue}/dead-letters/{message_id}``   delete one (token)
``DELETE /api/queues/{queue}/dead-letters``                purge (token)
=========================================================  =====================================
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from tasklens.monitor.http.auth import action_access, read_access
from tasklens.monitor.http.errors import ErrorBody
from tasklens.monitor.http.schemas import (
    DeadLetterOut,
    DeadLetterPageOut,
    DeletedOut,
    DeleteIn,
    PurgedOut,
    QueueOut,
    QueuesOut,
    RequeueAll,
    RequeuedOut,
    RequeueIds,
    WorkersOut,
)
from tasklens.monitor.http.state import MonitorState, monitor_state

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_OFFSET", "MAX_PAGE_SIZE", "actions_router", "router"]

logger = logging.getLogger(__name__)

#: Dead letters per page when the request does not say.
DEFAULT_PAGE_SIZE = 50
#: Most dead letters one page may hold.
MAX_PAGE_SIZE = 1000
#: Largest offset accepted when paging (beyond any real queue; keeps broker arguments in range).
MAX_OFFSET = 1_000_000_000

State = Annotated[MonitorState, Depends(monitor_state)]
#: Which task library's queue is meant, when the monitor reads several brokers and two libraries
#: have a queue of that name (otherwise 409 names the choices).
System = Annotated[
    Literal["dramatiq", "celery"] | None,
    Query(description="dramatiq or celery: which library's queue, when both have one of this name."),
]
#: Which broker's queue is meant, when two brokers of one library have a queue of that name
#: (otherwise 409 lists their redacted URLs as the choices).
Broker = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="The broker holding the queue: its redacted URL as `brokers` in /api/queues lists it,"
        " or its index there (from 0); needed when two brokers of one library have a queue of this name.",
    ),
]

#: Errors every route may answer with.
COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    409: {
        "model": ErrorBody,
        "description": "Both libraries (or two brokers) have a queue of this name: see choices.",
    },
    503: {"model": ErrorBody, "description": "The broker did not answer."},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such queue or message."},
}
BAD_BODY: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON."},
}
FORBIDDEN: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorBody, "description": "The monitor has no auth token: actions are disabled."},
}

router = APIRouter(
    prefix="/api", tags=["queues"], dependencies=[Depends(read_access)], responses=COMMON_ERRORS
)
actions_router = APIRouter(
    prefix="/api",
    tags=["dead letters"],
    dependencies=[Depends(action_access)],
    responses={**COMMON_ERRORS, **FORBIDDEN, **NOT_FOUND},
)


@router.get("/queues", summary="Every queue's counts")
def list_queues(state: State) -> QueuesOut:
    return QueuesOut.of(state.reader.read(), state.broker)


@router.get("/queues/{queue}", summary="One queue's counts", responses=NOT_FOUND)
def show_queue(state: State, queue: str, messaging_system: System = None) -> QueueOut:
    snapshot = state.reader.read()
    stats = snapshot.queue(queue, messaging_system)
    return QueueOut.of(stats, snapshot.system_of(stats))


@router.get("/workers", summary="Live workers")
def show_workers(state: State) -> WorkersOut:
    """The count of live workers, and each of them for Celery (node name, pool, concurrency,
    active and processed tasks, last heartbeat); ``workers`` is null with ``workers_note`` when
    it cannot be known (Celery with heartbeats disabled)."""
    return WorkersOut.of(state.reader.read(), state.broker)


@router.get("/queues/{queue}/dead-letters", summary="A page of dead letters", responses=NOT_FOUND)
def list_dead_letters(
    state: State,
    queue: str,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    messaging_system: System = None,
    broker: Broker = None,
) -> DeadLetterPageOut:
    with state.actions.borrow() as inspector:
        page = inspector.for_queue(queue, messaging_system, broker).dead_letters(
            queue, offset=offset, limit=limit
        )
    return DeadLetterPageOut(
        items=[DeadLetterOut.of(letter) for letter in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/queues/{queue}/dead-letters/{message_id}", summary="One dead letter", responses=NOT_FOUND)
def show_dead_letter(
    state: State, queue: str, message_id: str, messaging_system: System = None, broker: Broker = None
) -> DeadLetterOut:
    with state.actions.borrow() as inspector:
        return DeadLetterOut.of(
            inspector.for_queue(queue, messaging_system, broker).dead_letter(queue, message_id)
        )


@actions_router.post(
    "/queues/{queue}/dead-letters/requeue", summary="Requeue dead letters", responses=BAD_BODY
)
def requeue_dead_letters(
    state: State,
    queue: str,
    body: RequeueIds | RequeueAll,
    messaging_system: System = None,
    broker: Broker = None,
) -> RequeuedOut:
    message_ids = body.message_ids if isinstance(body, RequeueIds) else None
    with state.actions.borrow() as inspector:
        moved = inspector.for_queue(queue, messaging_system, broker).requeue_dead(
            queue, message_ids, reset_retries=body.reset_retries
        )
    state.reader.invalidate()
    logger.info("Requeued %d dead letters of %r.", moved, queue)
    return RequeuedOut(requeued=moved)


@actions_router.post(
    "/queues/{queue}/dead-letters/delete", summary="Delete some dead letters", responses=BAD_BODY
)
def delete_dead_letters(
    state: State, queue: str, body: DeleteIn, messaging_system: System = None, broker: Broker = None
) -> DeletedOut:
    with state.actions.borrow() as inspector:
        deleted = inspector.for_queue(queue, messaging_system, broker).delete_dead(queue, body.message_ids)
    state.reader.invalidate()
    logger.info("Deleted %d dead letters of %r.", deleted, queue)
    return DeletedOut(deleted=deleted)


@actions_router.delete("/queues/{queue}/dead-letters/{message_id}", summary="Delete one dead letter")
def delete_dead_letter(
    state: State, queue: str, message_id: str, messaging_system: System = None, broker: Broker = None
) -> DeletedOut:
    with state.actions.borrow() as inspector:
        deleted = inspector.for_queue(queue, messaging_system, broker).delete_dead(queue, [message_id])
    state.reader.invalidate()
    return DeletedOut(deleted=deleted)


@actions_router.delete("/queues/{queue}/dead-letters", summary="Purge the dead-letter queue")
def purge_dead_letters(
    state: State, queue: str, messaging_system: System = None, broker: Broker = None
) -> PurgedOut:
    with state.actions.borrow() as inspector:
        purged = inspector.for_queue(queue, messaging_system, broker).purge_dead(queue)
    state.reader.invalidate()
    logger.info("Purged %d dead letters of %r.", purged, queue)
    return PurgedOut(purged=purged)
