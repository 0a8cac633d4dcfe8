"""What every Redis layout shares: a client that fails fast, and errors without credentials.

Both Dramatiq's layout (``RedisInspector``) and Celery's (``CeleryRedisInspector``) read through
a client made by ``redis_client``: one attempt per command within ``timeout`` seconds, so a down
broker is reported at once instead of after retries; ``redis_errors`` turns redis-py's errors
into ``BrokerUnavailable``/``BrokerError`` whose message names the redacted URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tasklens.brokers.base import BrokerError, BrokerUnavailable
from tasklens.brokers.url import redact_url, scrub

__all__ = ["SCAN_COUNT", "glob_escape", "redis_client", "redis_errors"]

#: The COUNT hint of each SCAN call while discovering keys.
SCAN_COUNT = 1000
#: How often an idle pooled connection is checked before use, in seconds.
HEALTH_CHECK_INTERVAL = 30

_REDIS_ERROR_REASON = re.compile(r"^Error -?\d+ (?:connecting to|while writing to) \S+?\.? (.*?)\.?$")


def redis_client(url: str, *, timeout: float, shown_url: str | None = None) -> redis.Redis:
    """A client for ``url`` that gives up after one attempt of ``timeout`` seconds.

    Parameters:
      url(str): A ``redis://``, ``rediss://`` or ``unix://`` URL redis-py understands.
      timeout(float): Connect and command timeout, in seconds.
      shown_url(str|None): The URL to name in errors (redacted); by default ``url`` redacted.

    Raises:
      BrokerError: when the URL is not one redis-py can use.
    """
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # A pooled connection the server closed is noticed and replaced at checkout.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=HEALTH_CHECK_INTERVAL,
        )
    except (ValueError, TypeError) as e:
        raise BrokerError(f"invalid Redis URL {shown_url or redact_url(url)}: {scrub(str(e), url)}") from None


@contextmanager
def redis_errors(url: str, shown_url: str) -> Iterator[None]:
    """Turn redis-py errors raised in the block into broker errors naming ``shown_url``.

    Parameters:
      url(str): The URL as connected to (its secrets are scrubbed from messages).
      shown_url(str): The redacted URL to name.
    """
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise BrokerUnavailable(f"cannot reach {shown_url}: {_reason(e, url)}") from None
    except redis.RedisError as e:
        raise BrokerError(f"{shown_url} refused the command: {scrub(str(e), url)}") from None


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN ``MATCH`` pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def _reason(error: Exception, url: str) -> str:
    text = str(error).strip()
    match = _REDIS_ERROR_REASON.match(text)
    if match and match.group(1):
        text = match.group(1)
    return scrub(text or type(error).__name__, url)
