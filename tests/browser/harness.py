"""What the browser tests run against: a monitor on a free port, fed by a real Dramatiq worker.

``MonitorServer`` serves ``create_app(settings)`` with uvicorn in a thread of the test process.
``ShopWorker`` is a Redis broker under a namespace of its own with a few example actors, a real
``dramatiq.Worker`` and tasklens's middleware, exporting traces, metrics and logs over OTLP/HTTP
to the monitor, the way ``tasklens.setup()`` makes workers do it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import httpx
import uvicorn
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.monitor import MonitorSettings, create_app
from tasklens.telemetry.process_metrics import start_process_metrics
from tasklens.telemetry.providers import build_resource
from tasklens.telemetry.settings import TelemetrySettings

#: How long the harness waits for a server or a condition, in seconds.
WAIT_TIMEOUT = 20.0


class MonitorServer:
    """``tasklens monitor``'s app served by uvicorn on 127.0.0.1, on a port the OS picked.

    Parameters:
      settings(MonitorSettings): The monitor's settings; host and port are ignored.
    """

    def __init__(self, settings: MonitorSettings) -> None:
        self.settings = settings
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="monitor", daemon=True
        )

    def start(self) -> MonitorServer:
        self._thread.start()
        wait_until(lambda: self._server.started, what="the monitor to start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_TIMEOUT)
        self._socket.close()

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON route with the monitor's token; raise on an error status."""
        headers = {"Authorization": f"Bearer {self.settings.auth_token}"} if self.settings.auth_token else {}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=5.0)
        response.raise_for_status()
        return response.json()


def wait_until(condition: Callable[[], Any], *, what: str, timeout: float = WAIT_TIMEOUT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class CardDeclined(Exception):
    """The example payment failure."""


@dataclass
class ShopWorker:
    """A small shop's task code on Redis, instrumented by tasklens and exporting to the monitor.

    Parameters:
      redis_url(str): The Redis server.
      namespace(str): Dramatiq's key namespace, unique to the test run.
      otlp_endpoint(str): The monitor's base URL; ``/v1/traces`` etc. are appended.
      headers(dict): Headers the exporters send (the monitor's token).
    """

    redis_url: str
    namespace: str
    otlp_endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    #: Set to make the dead-lettering actor succeed: the bug has been fixed.
    fixed: threading.Event = field(default_factory=threading.Event)
    #: Set to let the slow report actor finish.
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        # The resource tasklens.setup() gives a process (host and pid included), with an id of
        # the test's own.
        resource = build_resource(TelemetrySettings.from_env({}), "shop-worker").merge(
            Resource({"service.instance.id": f"worker-{uuid.uuid4().hex[:8]}"})
        )
        endpoint = self.otlp_endpoint.rstrip("/")
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=self.headers),
                schedule_delay_millis=200,
            )
        )
        self.metric_reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", headers=self.headers),
            export_interval_millis=1000,
        )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.metric_reader])
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", headers=self.headers),
                schedule_delay_millis=200,
            )
        )
        self.log_handler = LoggingHandler(logger_provider=self.logger_provider)
        self.logger = logging.getLogger(f"shop.{self.namespace}")
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.log_handler)
        self.tracer = self.tracer_provider.get_tracer("shop")

        self.broker = RedisBroker(url=self.redis_url, namespace=self.namespace)
        middleware = OpenTelemetryMiddleware(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        self.broker.add_middleware(middleware, before=type(self.broker.middleware[0]))
        self.queues = {
            name: f"{self.namespace}-{name}" for name in ("emails", "payments", "imports", "stock", "reports")
        }
        self._declare_actors()
        self.worker: dramatiq.Worker | None = None
        self._process_metrics = False

    def _declare_actors(self) -> None:
        logger, tracer, fixed, release = self.logger, self.tracer, self.fixed, self.release
        reserved: set[int] = set()

        def send_welcome_email(user_id: int) -> None:
            with tracer.start_as_current_span("render template"):
                logger.info("rendering <b>welcome</b> for user %s", user_id)

        def charge_payment(order_id: int, amount: int) -> None:
            logger.info("charging order %s", order_id)
            with tracer.start_as_current_span("call payment provider"):
                if amount < 0:
                    raise CardDeclined(f"card declined for order {order_id}")

        def import_catalog(source: str) -> None:
            if not fixed.is_set():
                logger.error("cannot parse %s", source)
                raise ValueError(f"unparseable catalog at {source}")
            logger.info("imported %s", source)

        def reserve_stock(order_id: int) -> None:
            # The warehouse is busy the first time: the retry succeeds.
            if order_id not in reserved:
                reserved.add(order_id)
                raise ConnectionError(f"warehouse busy for order {order_id}")

        def generate_report(name: str) -> None:
            release.wait(WAIT_TIMEOUT * 3)

        def fetch_feed(url: str) -> str:
            with tracer.start_as_current_span("download"):
                return f"<feed of {url}>"

        def store_feed(url: str, body: str) -> None:
            logger.info("storing %d bytes from %s", len(body), url)

        self.fetch_feed = dramatiq.actor(fetch_feed, broker=self.broker, queue_name=self.queues["imports"])
        self.store_feed = dramatiq.actor(store_feed, broker=self.broker, queue_name=self.queues["imports"])
        self.send_welcome_email = dramatiq.actor(
            send_welcome_email, broker=self.broker, queue_name=self.queues["emails"]
        )
        self.charge_payment = dramatiq.actor(
            charge_payment,
            broker=self.broker,
            queue_name=self.queues["payments"],
            max_retries=1,
            min_backoff=10,
            max_backoff=20,
        )
        self.reserve_stock = dramatiq.actor(
            reserve_stock,
            broker=self.broker,
            queue_name=self.queues["stock"],
            max_retries=2,
            min_backoff=10,
            max_backoff=20,
        )
        self.generate_report = dramatiq.actor(
            generate_report, broker=self.broker, queue_name=self.queues["reports"], time_limit=120_000
        )
        self.import_catalog = dramatiq.actor(
            import_catalog, broker=self.broker, queue_name=self.queues["imports"], max_retries=0
        )

    def checkout(self, order_id: int, amount: int) -> dramatiq.Message:
        """What a web request handler does: a SERVER span around sending the payment task."""
        with self.tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "POST")
            span.set_attribute("http.route", "/checkout")
            span.set_attribute("http.response.status_code", 202)
            return self.charge_payment.send(order_id, amount)

    def import_feed(self, url: str) -> None:
        """A request that starts a two-step pipeline: fetch, then store what was fetched."""
        with self.tracer.start_as_current_span("POST /feeds", kind=trace.SpanKind.SERVER):
            dramatiq.pipeline(
                [self.fetch_feed.message(url), self.store_feed.message(url)], broker=self.broker
            ).run()

    def start(self) -> ShopWorker:
        # CPU, memory and threads of this process, as tasklens.setup() reports them in a worker.
        self._process_metrics = start_process_metrics(self.meter_provider)
        self.worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=3)
        self.worker.start()
        return self

    def flush(self) -> None:
        """Push every finished span, metric and log record to the monitor now."""
        self.tracer_provider.force_flush()
        self.metric_reader.force_flush()
        self.logger_provider.force_flush()

    def stop(self) -> None:
        self.release.set()
        if self.worker is not None:
            self.worker.stop()
        self.flush()
        self.logger.removeHandler(self.log_handler)
        if self._process_metrics:
            from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

            SystemMetricsInstrumentor().uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()
        client = self.broker.client
        keys = list(client.scan_iter(match=f"{self.namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        self.broker.close()
