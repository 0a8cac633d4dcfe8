"""Who may read and who may act: bearer-token checks as FastAPI dependencies.

- Health and ``/metrics`` (``public_access``): open when the monitor binds loopback, when
  ``--public-metrics`` is given, or when no token is configured (``--insecure``); otherwise the
  token is required.
- The REST API's reads (``read_access``): the token is required whenever one is configured.
- Dead-letter actions (``action_access``): the token is always required; with no token
  configured they are refused with 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tasklens.monitor.settings import AUTH_TOKEN_ENV
from tasklens.monitor.state import MonitorState, monitor_state

__all__ = ["action_access", "public_access", "read_access"]

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
    if settings.loopback or settings.public_metrics or settings.auth_token is None:
        return
    _check_token(settings.auth_token, credentials)


def read_access(state: State, credentials: Credentials) -> None:
    """Allow API reads: the token is needed when one is configured."""
    if state.settings.auth_token is None:
        return
    _check_token(state.settings.auth_token, credentials)


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
