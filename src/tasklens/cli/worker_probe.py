"""``tasklens health --worker URL``: a worker's own health endpoint as an exec probe."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import click
import httpx

from tasklens.brokers.url import redact_url
from tasklens.cli.options import fail

__all__ = ["EXIT_UNHEALTHY", "WORKER_PROBE_TIMEOUT", "check_worker", "worker_url"]

#: Exit status of an unhealthy or unreachable worker.
EXIT_UNHEALTHY = 1
#: Longest the probe waits for the worker's answer, in seconds.
WORKER_PROBE_TIMEOUT = 5.0


def worker_url(url: str) -> str:
    """The endpoint's URL: ``/healthz`` when ``url`` names no path.

    Parameters:
      url(str): Like ``http://127.0.0.1:8099``.

    Raises:
      click.BadParameter: When it is not an http URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            "use the worker's health URL, like http://127.0.0.1:8099", param_hint="--worker"
        )
    return urlunsplit(parts._replace(path=parts.path if parts.path not in ("", "/") else "/healthz"))


def check_worker(url: str, timeout: float = WORKER_PROBE_TIMEOUT) -> None:
    """Ask the worker, print its verdict on one line, exit 0 (healthy) or 1.

    Parameters:
      url(str): The worker's health URL.
      timeout(float): Longest wait, in seconds.
    """
    endpoint = worker_url(url)
    try:
        response = httpx.get(endpoint, timeout=timeout)
        body = response.json()
    except httpx.HTTPError as exc:
        fail(
            f"unhealthy: worker health endpoint {redact_url(endpoint)} did not answer: {type(exc).__name__}",
            EXIT_UNHEALTHY,
        )
    except ValueError:
        fail(
            f"unhealthy: {redact_url(endpoint)} answered {response.status_code} without a JSON verdict",
            EXIT_UNHEALTHY,
        )
    status = body.get("status") if isinstance(body, dict) else None
    healthy = response.status_code == 200 and status == "healthy"
    reasons = body.get("reasons") if isinstance(body, dict) else None
    library = body.get("library", "worker") if isinstance(body, dict) else "worker"
    line = f"{'healthy' if healthy else 'unhealthy'}: {library} worker at {redact_url(endpoint)}"
    checks = body.get("checks") if isinstance(body, dict) else None
    if isinstance(checks, dict) and checks.get("pid") is not None:
        line += f" (pid {checks['pid']})"
    line += "".join(f"; {reason}" for reason in reasons or [])
    click.echo(line)
    raise SystemExit(0 if healthy else EXIT_UNHEALTHY)
