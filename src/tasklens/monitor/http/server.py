"""Run the monitor with uvicorn, refusing an exposed bind that nothing protects."""

from __future__ import annotations

import logging

import uvicorn

from tasklens.brokers.url import redact_url
from tasklens.monitor.http.app import create_app
from tasklens.monitor.http.protocol import KEEP_ALIVE_TIMEOUT, MAX_HEADER_BYTES, HeaderTimeoutProtocol
from tasklens.monitor.settings import AUTH_TOKEN_ENV, MonitorSettings

__all__ = ["InsecureBindError", "check_bind", "serve"]

logger = logging.getLogger(__name__)


class InsecureBindError(Exception):
    """The monitor would listen beyond this machine with no auth token."""


def check_bind(settings: MonitorSettings) -> None:
    """Refuse a non-loopback bind without a token, unless ``insecure`` says so.

    Parameters:
      settings(MonitorSettings): The bind address, token and ``insecure`` flag.

    Raises:
      InsecureBindError: With a message saying how to fix the command.
    """
    if settings.loopback or settings.auth_token or settings.insecure:
        return
    raise InsecureBindError(
        f"refusing to listen on {settings.host} without an auth token: pass --auth-token"
        f" (or set {AUTH_TOKEN_ENV}), or --insecure to serve it unprotected"
    )


def serve(settings: MonitorSettings, *, log_level: str = "info") -> None:
    """Serve the monitor until interrupted.

    Parameters:
      settings(MonitorSettings): What to read and where to listen.
      log_level(str): uvicorn's log level.

    Raises:
      InsecureBindError: When the bind is exposed and unprotected.
    """
    check_bind(settings)
    if not settings.loopback and settings.auth_token is None:
        logger.warning("Serving on %s with no auth token (--insecure).", settings.host)
    app = create_app(settings)
    logger.info(
        "tasklens monitor for %s on http://%s:%d",
        redact_url(settings.broker_url),
        settings.host,
        settings.port,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        http=HeaderTimeoutProtocol,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
