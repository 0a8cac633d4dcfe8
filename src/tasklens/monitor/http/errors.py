"""Every error the monitor answers with is JSON: ``{"error": "<what went wrong and what to do>"}``.

Broker errors map to status codes here, once: an unreachable broker is 503, an unknown queue or
message 404, a queue name several task libraries share without ``messaging_system`` saying which
409 (with the ``choices``), a malformed request 422 (with the offending fields in ``details``), and anything
unexpected 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasklens.brokers.base import (
    AmbiguousQueue,
    BrokerError,
    BrokerUnavailable,
    MessageNotFound,
    QueueNotFound,
)

__all__ = ["ErrorBody", "install_error_handlers"]

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    details: list[dict[str, Any]] | None = None
    choices: list[str] | None = None


#: Status code of each broker error; other ``BrokerError`` subclasses are 502.
BROKER_ERROR_STATUS: dict[type[BrokerError], int] = {
    BrokerUnavailable: 503,
    AmbiguousQueue: 409,
    QueueNotFound: 404,
    MessageNotFound: 404,
}


def install_error_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error with an ``ErrorBody``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BrokerError, _broker_error)
    app.add_exception_handler(Exception, _unexpected_error)


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response.

    Parameters:
      status_code(int): The HTTP status.
      message(str): What went wrong and what to do about it.
      headers(dict|None): Extra response headers.
    """
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"location": list(error.get("loc", ())), "message": error.get("msg", "")} for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['location']))}: {d['message']}" for d in details)
    body = {"error": f"invalid request: {summary}", "details": details}
    return JSONResponse(jsonable_encoder(body), status_code=422)


async def _broker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BrokerError)
    status_code = next(
        (code for kind, code in BROKER_ERROR_STATUS.items() if isinstance(exc, kind)),
        502,
    )
    if status_code >= 500:
        logger.warning("%s %s failed: %s", request.method, request.url.path, exc)
    if isinstance(exc, AmbiguousQueue):
        return JSONResponse({"error": str(exc), "choices": exc.choices}, status_code=status_code)
    return error_response(status_code, str(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not bad input: logged with its traceback, answered without it.
    logger.error("%s %s failed.", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error ({type(exc).__name__}); the monitor's log has the details")
