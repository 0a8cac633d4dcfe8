"""Who may read and who may act: bearer-token checks as FastAPI dependencies.

- Health and ``/metrics`` (``public_access``): open when the monitor binds loopback, when
  ``--public-metrics`` is given, or when no token is configured (``--insecure``); otherwise the
  token is required.
- OTLP ingest, ``/v1/*`` (``ingest_access``): open when the monitor binds loopback or no token is
  configured; otherwise the token is required. ``--public-metrics`` opens nothing here: what a
  public scrape may read is no licence to write.
- The REST API's reads (``read_access``): the token is required whenever one is configured.
- Dead-letter actions (``action_access``): the token is always required; with no token
  configured they are refused with 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tasklens.monitor.http.state import MonitorState, monitor_state
from tasklens.monitor.settings import AUTH_TOKEN_ENV, MonitorSettings

__all__ = [
    "action_access",
    "document_security",
    "ingest_access",
    "public_access",
    "read_access",
    "token_needed",
]

#: Reads ``Authorization: Bearer <token>`` and documents the scheme in the OpenAPI document.
bearer_scheme = HTTPBearer(auto_error=False, description="The monitor's --auth-token.")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
State = Annotated[MonitorState, Depends(monitor_state)]

#: Why an action is refused when the monitor has no token.
NO_TOKEN_MESSAGE = (
    "dead-letter actions need an auth token: restart the monitor with --auth-token"
    f" or {AUTH_TOKEN_ENV}, then send it as 'Authorization: Bearer <token>'"
)


def public_access(state: State, credentials: Credentials) -> None:
    """Allow health and metrics reads per the bind address and ``--public-metrics``."""
    settings = state.settings
    if settings.auth_token is None or not token_needed(public_access, settings):
        return
    _check_token(settings.auth_token, credentials)


def ingest_access(state: State, credentials: Credentials) -> None:
    """Allow OTLP exports: the token is needed when one is configured and the bind is exposed."""
    settings = state.settings
    if settings.auth_token is None or not token_needed(ingest_access, settings):
        return
    _check_token(settings.auth_token, credentials)


def read_access(state: State, credentials: Credentials) -> None:
    """Allow API reads: the token is needed when one is configured."""
    if state.settings.auth_token is None:
        return
    _check_token(state.settings.auth_token, credentials)


def token_needed(access: Callable[..., None], settings: MonitorSettings) -> bool:
    """Whether routes guarded by ``access`` refuse requests without the token under ``settings``.

    Parameters:
      access: ``public_access``, ``ingest_access``, ``read_access`` or ``action_access``.
      settings(MonitorSettings): The monitor's settings.
    """
    if access is action_access:
        return True
    if settings.auth_token is None:
        return False
    if access is public_access:
        return not (settings.loopback or settings.public_metrics)
    if access is ingest_access:
        return not settings.loopback
    return True


def document_security(
    schema: dict[str, Any], routers: Sequence[APIRouter], settings: MonitorSettings
) -> None:
    """Mark the bearer token optional in ``schema`` on the operations that do not need it, so
    the OpenAPI document says what this monitor, with these settings, enforces.

    Parameters:
      schema(dict): The OpenAPI document, changed in place.
      routers(Sequence[APIRouter]): The routers the app includes.
      settings(MonitorSettings): The monitor's settings.
    """
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            guards = [
                depends.dependency for depends in route.dependencies if depends.dependency in ACCESS_LEVELS
            ]
            if not guards or any(token_needed(guard, settings) for guard in guards):
                continue
            operations = schema.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is not None and operation.get("security"):
                    operation["security"] = [{}, *operation["security"]]


def action_access(state: State, credentials: Credentials) -> None:
    """Allow dead-letter actions: the token is always needed."""
    if state.settings.auth_token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NO_TOKEN_MESSAGE)
    _check_token(state.settings.auth_token, credentials)


def _check_token(expected: str, credentials: HTTPAuthorizationCredentials | None) -> None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


#: The access checks, from the most open to the most guarded.
ACCESS_LEVELS: tuple[Callable[..., None], ...] = (public_access, ingest_access, read_access, action_access)
