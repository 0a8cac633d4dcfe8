"""Which ``Host`` a request may name: the monitor's defence against DNS rebinding.

A web page on ``http://attacker.example:9191`` whose name the attacker makes resolve to
127.0.0.1 is, to the browser, the same origin as the monitor: without a check it could read the
runs, traces and dead letters of a loopback monitor that has no token. Every request's ``Host``
must therefore name the monitor: ``localhost``, ``127.0.0.1``, ``[::1]``, the address it binds,
or a name given with ``--allowed-host``. When the monitor binds every address (``0.0.0.0``,
``::``) any IP address is accepted too: an address is never a rebound name, and probes and
scrapers (Kubernetes, Prometheus) name the pod by its address. Any other ``Host`` is answered
421 with a JSON error, on every route.

Example:

  >>> policy = HostPolicy.for_bind("127.0.0.1", ("monitor.internal",))
  >>> policy.allows("monitor.internal:9191"), policy.allows("attacker.example:9191")
  (True, False)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ANY_HOST", "LOOPBACK_NAMES", "HostCheckMiddleware", "HostPolicy", "valid_host_name"]

logger = logging.getLogger(__name__)

#: ``--allowed-host`` value that accepts any ``Host`` (behind a proxy that checks it already).
ANY_HOST = "*"
#: Names of this machine that every monitor answers to.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Bind addresses meaning every interface.
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
#: Status of a request naming another host: "Misdirected Request".
MISDIRECTED = 421

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normalized(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def valid_host_name(name: str) -> bool:
    """Whether ``name`` is a host name, an IP address or ``*``, as ``--allowed-host`` takes.

    Parameters:
      name(str): The option's value.
    """
    name = _normalized(name)
    return name == ANY_HOST or _ip(name) is not None or _HOST_NAME.match(name) is not None


def host_of(header: str) -> str:
    """The host of a ``Host`` header, without its port, lowercase (``[::1]:9191`` -> ``::1``).

    Parameters:
      header(str): The header's value.
    """
    header = header.strip()
    if header.startswith("["):
        return _normalized(header.split("]", 1)[0] + "]")
    return _normalized(header.rsplit(":", 1)[0] if header.count(":") == 1 else header)


@dataclass(frozen=True)
class HostPolicy:
    """The hosts a request may name.

    Parameters:
      names(frozenset[str]): Accepted host names and addresses, lowercase, without brackets.
      any_address(bool): Whether any IP address is accepted too.
      any_host(bool): Whether every ``Host`` is accepted (``--allowed-host '*'``).
    """

    names: frozenset[str]
    any_address: bool = False
    any_host: bool = False

    @classmethod
    def for_bind(cls, bind: str, allowed: tuple[str, ...] = ()) -> HostPolicy:
        """The policy of a monitor binding ``bind`` with ``--allowed-host`` values ``allowed``.

        Parameters:
          bind(str): The ``--host`` it listens on.
          allowed(tuple[str, ...]): Extra names.
        """
        bind = _normalized(bind)
        extra = {_normalized(name) for name in allowed}
        names = LOOPBACK_NAMES | extra | ({bind} - WILDCARD_BINDS)
        return cls(frozenset(names), any_address=bind in WILDCARD_BINDS, any_host=ANY_HOST in extra)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is served.

        Parameters:
          header(str|None): The header; ``None`` when the request has none (HTTP/1.0, which no
            browser sends), which is served.
        """
        if header is None or self.any_host:
            return True
        host = host_of(header)
        return host in self.names or (self.any_address and _ip(host) is not None)


class HostCheckMiddleware:
    """Answers 421 with a JSON error to a request whose ``Host`` the policy refuses.

    Parameters:
      app: The ASGI application it guards.
      policy(HostPolicy): Which hosts are accepted.
    """

    def __init__(self, app: Any, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), None)
        if self.policy.allows(header):
            await self.app(scope, receive, send)
            return
        logger.info("Refused a request for host %r", header)
        body = json.dumps(
            {
                "error": f"this monitor does not answer to host {header!r}: browse it by an address it"
                " listens on, or start it with --allowed-host NAME"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": MISDIRECTED,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
