"""Broker URLs as they may be shown (every password replaced by ``***``), and checked.

redis-py reads a database it cannot parse (``redis://host:6379/7x``) as database 0, silently:
``check_redis_database`` refuses such a URL before anything reads or acts on the wrong database.

Example:

  >>> redact_url("redis://:hunter2@cache:6379/0")
  'redis://:***@cache:6379/0'
  >>> redact_url("amqp://guest:guest@rabbit:5672/%2F")
  'amqp://guest:***@rabbit:5672/%2F'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from tasklens.brokers.base import BrokerError

__all__ = ["REDACTED", "InvalidBrokerUrl", "check_broker_url", "check_redis_database", "redact_url", "scrub"]

#: What a password is replaced with.
REDACTED = "***"

#: Query parameters that carry secrets in Redis and AMQP URLs.
SECRET_QUERY_PARAMETERS = frozenset({"password", "passwd", "pass", "token", "auth"})

#: Fallback for text that is not a parseable URL: the userinfo part of ``scheme://user:pw@``.
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]*@")


def redact_url(url: str) -> str:
    """The URL with its password (userinfo and ``?password=``) replaced by ``***``.

    Parameters:
      url(str): A broker URL such as ``redis://:pw@host:6379/0`` or ``amqp://u:pw@host/vhost``.

    Returns:
      str: The same URL, safe to log and show.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostinfo = netloc.rpartition("@")
            if ":" in userinfo:
                username = userinfo.split(":", 1)[0]
                netloc = f"{username}:{REDACTED}@{hostinfo}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key.lower() in SECRET_QUERY_PARAMETERS for key, _ in pairs):
                query = urlencode(
                    [(k, REDACTED if k.lower() in SECRET_QUERY_PARAMETERS else v) for k, v in pairs],
                    safe="*",
                )
        if netloc == parts.netloc and query == parts.query:
            return url
        if "://" in url:
            # urlunsplit drops the ``//`` of URLs without a host, such as ``unix:///path``.
            rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
            rebuilt += f"?{query}" if query else ""
            return rebuilt + (f"#{parts.fragment}" if parts.fragment else "")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return _USERINFO_PASSWORD.sub(rf"\1:{REDACTED}@", url)


class InvalidBrokerUrl(BrokerError):
    """A broker URL that cannot mean what it says, such as a Redis database that is not a number."""


#: URL schemes whose path is the database number (``unix://`` URLs give it as ``?db=``).
_REDIS_TCP_SCHEMES = frozenset({"redis", "rediss"})
_DATABASE = re.compile(r"^[0-9]{1,9}$")


def check_redis_database(url: str) -> int:
    """The database a Redis URL names (0 when none), refusing one that is not a number.

    Parameters:
      url(str): A ``redis://``, ``rediss://`` or ``unix://`` URL.

    Raises:
      InvalidBrokerUrl: When the path or the ``db`` parameter is not a database number.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidBrokerUrl(f"invalid broker URL {redact_url(url)}: {exc}") from None
    given = [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key == "db"]
    if parts.scheme.lower() in _REDIS_TCP_SCHEMES and parts.path not in ("", "/"):
        given.insert(0, unquote(parts.path)[1:])
    for database in given:
        if not _DATABASE.match(database):
            raise InvalidBrokerUrl(
                f"invalid Redis database {database!r} in {redact_url(url)}: use a number,"
                " like redis://host:6379/0"
            )
    return int(given[0]) if given else 0


def check_broker_url(url: str) -> None:
    """Refuse a broker URL whose parts cannot be read as meant (a Redis database that is not a
    number); other URLs pass, for ``open_broker`` to judge their scheme.

    Parameters:
      url(str): A broker URL.

    Raises:
      InvalidBrokerUrl: With a one-line message naming the redacted URL.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in (*_REDIS_TCP_SCHEMES, "unix"):
        check_redis_database(url)


def scrub(text: str, url: str) -> str:
    """``text`` (say, a driver's error message) with any secret of ``url`` replaced by ``***``.

    Parameters:
      text(str): Text that might quote the URL or its password.
      url(str): The URL whose secrets must not appear.
    """
    text = text.replace(url, redact_url(url))
    for secret in _secrets(url):
        text = text.replace(secret, REDACTED)
    return text


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    secrets = []
    if parts.password:
        secrets.append(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in SECRET_QUERY_PARAMETERS and value:
            secrets.append(value)
    # Short secrets would mangle unrelated words of the message.
    return [secret for secret in secrets if len(secret) >= 3]
