"""Headers every response of the monitor carries, whatever route made it.

- ``X-Content-Type-Options: nosniff``: a browser takes JSON, metrics and static files for what
  their ``Content-Type`` says, never for a script or page it guessed.
- A ``Content-Security-Policy`` (the pages' own: only this monitor's files) on responses that
  have none, so that nothing served here, whichever way it is opened, loads from elsewhere.
"""

from __future__ import annotations

from typing import Any

from tasklens.monitor.http.pages import CONTENT_SECURITY_POLICY

__all__ = ["DEFAULT_HEADERS", "SecurityHeadersMiddleware"]

#: Added to each response that does not set them itself.
DEFAULT_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)


class SecurityHeadersMiddleware:
    """Adds ``DEFAULT_HEADERS`` to every HTTP response that lacks them.

    Parameters:
      app: The ASGI application whose responses it completes.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {key.lower() for key, _ in headers}
                headers.extend(header for header in DEFAULT_HEADERS if header[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
