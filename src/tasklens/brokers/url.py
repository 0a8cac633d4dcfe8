"""Broker URLs as they may be shown: with every password replaced by ``***``.

Example:

  >>> redact_url("redis://:hunter2@cache:6379/0")
  'redis://:***@cache:6379/0'
  >>> redact_url("amqp://guest:guest@rabbit:5672/%2F")
  'amqp://guest:***@rabbit:5672/%2F'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_url", "scrub"]

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
