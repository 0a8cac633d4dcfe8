"""What every RabbitMQ layout shares: one AMQP connection, passive declares, the management API.

Dramatiq's layout (``RabbitmqInspector``) and Celery's (``CeleryRabbitmqInspector``) both read
through an ``AmqpSession``: a blocking pika connection opened on first use and reopened after a
failure, lent one channel at a time (pika is not thread-safe), errors turned into
``BrokerUnavailable``/``BrokerError`` naming the redacted URL; passive ``queue_declare`` (which
changes nothing, and whose "not found" closes the channel: a fresh one is returned); and GETs on
the management API with the AMQP URL's credentials unless the management URL has its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.connection_workflow import AMQPConnectorException, AMQPConnectorStackTimeout

from tasklens.brokers.base import BrokerError, BrokerUnavailable
from tasklens.brokers.url import redact_url, scrub

__all__ = ["NOT_FOUND", "AmqpSession", "QueueCounts", "amqp_reason"]

#: AMQP reply code of a passive declare of a queue (or exchange) that does not exist.
NOT_FOUND = 404


@dataclass(frozen=True)
class QueueCounts:
    """What a passive declare tells of a queue.

    Parameters:
      exists(bool): Whether the queue exists.
      ready(int): Messages ready to be delivered.
      consumers(int): Consumers attached.
    """

    exists: bool
    ready: int = 0
    consumers: int = 0


class AmqpSession:
    """One RabbitMQ connection, opened when first needed, and its management API.

    Parameters:
      url(str): ``amqp://`` or ``amqps://`` URL, with the virtual host as its path.
      timeout(float): Connect, handshake and management call timeout, in seconds.
      management_url(str|None): The management API's base URL (``http://user:pw@host:15672``).
    """

    def __init__(self, url: str, *, timeout: float, management_url: str | None = None) -> None:
        self.url = url
        self.redacted_url = redact_url(url)
        self.timeout = timeout
        self.management_url = management_url.rstrip("/") if management_url else None
        try:
            self.parameters = pika.URLParameters(url)
        except Exception as e:
            raise BrokerError(f"invalid RabbitMQ URL {self.redacted_url}: {scrub(str(e), url)}") from None
        self.parameters.socket_timeout = timeout
        self.parameters.stack_timeout = timeout
        self.parameters.blocked_connection_timeout = timeout
        self.parameters.connection_attempts = 1
        self._connection: pika.BlockingConnection | None = None
        # A blocking connection is not thread-safe: one operation at a time.
        self._lock = threading.RLock()

    @property
    def virtual_host(self) -> str:
        return str(self.parameters.virtual_host)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None and connection.is_open:
                with suppress(pika.exceptions.AMQPError):
                    connection.close()

    @contextmanager
    def channel(self) -> Iterator[BlockingChannel]:
        """A fresh channel on the shared connection, (re)connecting as needed."""
        with self._lock:
            try:
                channel = self._open_channel()
                try:
                    yield channel
                finally:
                    if channel.is_open:
                        channel.close()
            except pika.exceptions.UnroutableError:
                raise BrokerError(
                    f"{self.redacted_url} could not route a requeued message: does the queue still "
                    "exist? The dead letter was kept."
                ) from None
            except pika.exceptions.NackError:
                raise BrokerError(
                    f"{self.redacted_url} refused a requeued message; the dead letter was kept."
                ) from None
            except AMQPConnectorStackTimeout:
                self._drop_connection()
                raise BrokerUnavailable(
                    f"cannot reach {self.redacted_url}: no answer within {self.timeout:g} s"
                ) from None
            except (
                pika.exceptions.AMQPConnectionError,
                pika.exceptions.ConnectionClosed,
                AMQPConnectorException,
                OSError,
            ) as e:
                self._drop_connection()
                raise BrokerUnavailable(
                    f"cannot reach {self.redacted_url}: {amqp_reason(e, self.url)}"
                ) from None
            except pika.exceptions.AMQPChannelError as e:
                raise BrokerError(
                    f"{self.redacted_url} refused the operation: {amqp_reason(e, self.url)}"
                ) from None

    def declare_passive(self, channel: BlockingChannel, name: str) -> tuple[BlockingChannel, QueueCounts]:
        """The queue's counts, and the channel to go on with (a missing queue closes the channel)."""
        try:
            method = channel.queue_declare(queue=name, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != NOT_FOUND:
                raise
            assert self._connection is not None
            return self._connection.channel(), QueueCounts(exists=False)
        return channel, QueueCounts(exists=True, ready=method.message_count, consumers=method.consumer_count)

    def exchange_exists(self, channel: BlockingChannel, name: str) -> tuple[BlockingChannel, bool]:
        """Whether the exchange exists, and the channel to go on with."""
        try:
            channel.exchange_declare(exchange=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != NOT_FOUND:
                raise
            assert self._connection is not None
            return self._connection.channel(), False
        return channel, True

    def management_get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``{management_url}/api/{path}`` (``{vhost}`` in ``path`` is the quoted virtual
        host) and decode its JSON. Raises BrokerUnavailable."""
        import httpx

        assert self.management_url is not None
        vhost = quote(self.virtual_host, safe="")
        endpoint = f"{self.management_url}/api/{path.format(vhost=vhost)}"
        redacted = redact_url(endpoint)
        auth = None
        if "@" not in self.management_url.split("//", 1)[-1]:
            credentials = self.parameters.credentials
            auth = (getattr(credentials, "username", ""), getattr(credentials, "password", ""))
        try:
            response = httpx.get(endpoint, params=params, auth=auth, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise BrokerUnavailable(
                f"cannot reach {redacted}: {amqp_reason(e, self.management_url)}"
            ) from None
        if response.status_code != 200:
            raise BrokerUnavailable(f"{redacted} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise BrokerUnavailable(f"{redacted} did not answer JSON") from None

    def _open_channel(self) -> BlockingChannel:
        connection = self._connection
        if connection is not None and connection.is_open:
            try:
                # Also notices a connection the server closed while we were idle.
                connection.process_data_events(0)
                return connection.channel()
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionClosed, OSError):
                self._drop_connection()
        self._connection = pika.BlockingConnection(self.parameters)
        return self._connection.channel()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            with suppress(Exception):
                connection.close()


def amqp_reason(error: BaseException, url: str) -> str:
    """The innermost meaningful cause of a pika or httpx error, e.g. ``Connection refused``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return scrub(current.strerror, url)
        nested = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        # pika's connection workflow wraps the socket error in an ``exception`` attribute.
        wrapped = getattr(current, "exception", None)
        if not isinstance(wrapped, BaseException):
            wrapped = None
        current = nested or wrapped or current.__cause__ or current.__context__
    text = str(error).strip() or type(error).__name__
    return scrub(text, url)
