"""The dashboard demo: the monitor with its store, a worker, a web shop and its traffic, in one process.

Everything talks the way it would in production: the worker and the shop are instrumented by
``tasklens.setup()`` and export OTLP over HTTP to the monitor, which stores what it receives,
reads the brokers (Redis when one answers on localhost, else the in-process Dramatiq broker and
Celery's in-memory transport) and serves the dashboard.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dramatiq
import httpx
from rich.console import Console

from tasklens.demo.traffic import TrafficGenerator

if TYPE_CHECKING:
    from tasklens.telemetry import Telemetry

__all__ = ["DashboardDemo", "run_dashboard_demo", "start_dashboard_demo"]

#: How often the demo's telemetry is exported to the monitor, in milliseconds.
EXPORT_INTERVAL_MS = 2_000
#: Worker threads processing the demo's messages.
WORKER_THREADS = 6
#: How often the progress line is redrawn, in seconds.
PROGRESS_INTERVAL_S = 1.0

logger = logging.getLogger(__name__)


@dataclass
class DashboardDemo:
    """The running demo's parts; ``stop()`` takes them down, last started first.

    Parameters:
      url(str): The dashboard.
      token(str): The monitor's auth token (dead-letter actions need it).
      broker_description(str): Which broker the demo runs on.
      celery_description(str): Where the demo's Celery worker runs.
      traffic(TrafficGenerator|None): The shop's traffic, once started.
    """

    url: str
    token: str
    broker_description: str
    celery_description: str = ""
    traffic: TrafficGenerator | None = None
    stoppers: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # every part gets its chance to stop
                logger.debug("Stopping a part of the demo failed.", exc_info=True)


def _configure_telemetry(monitor_url: str) -> Telemetry:
    # The demo's process is the user's worker and web app: configure it as a user would, with
    # the standard variables, pointed at the monitor.
    os.environ.setdefault("OTEL_SERVICE_NAME", "demo-shop")
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = monitor_url
    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    os.environ["OTEL_METRIC_EXPORT_INTERVAL"] = str(EXPORT_INTERVAL_MS)
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "500"
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "otlp")
    import tasklens

    return tasklens.setup()


def start_dashboard_demo(
    *, port: int = 0, prefer_redis: bool = True, store_dir: Path | None = None
) -> DashboardDemo:
    """Start every part of the demo and return once the dashboard answers.

    Parameters:
      port(int): The dashboard's port; 0 picks a free one.
      prefer_redis(bool): Use the local Redis when it answers.
      store_dir(Path|None): Where the monitor keeps its store; a temporary directory by default.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from tasklens.brokers.celery_memory import MEMORY_URL, CeleryMemoryInspector
    from tasklens.brokers.composite import CompositeInspector, CompositeMember
    from tasklens.brokers.stub import STUB_URL, StubInspector
    from tasklens.demo import celery_app
    from tasklens.demo.actors import declare_actors
    from tasklens.demo.broker import REDIS_HOST, REDIS_PORT, demo_broker
    from tasklens.demo.serving import BackgroundServer
    from tasklens.demo.webapp import create_demo_app
    from tasklens.monitor import MonitorSettings, create_app

    token = secrets.token_urlsafe(12)
    store = Path(tempfile.mkdtemp(prefix="tasklens-demo-")) if store_dir is None else store_dir
    demo = demo_broker(prefer_redis=prefer_redis, create=False)

    def open_in_process_inspector() -> CompositeInspector:
        # Both libraries' queues live in this process: Dramatiq's stub broker and Celery's
        # in-memory transport, each read by an inspector of its own.
        members = [
            CompositeMember(STUB_URL, lambda: StubInspector(demo.broker, workers=1), library="dramatiq"),
            CompositeMember(
                MEMORY_URL, lambda: CeleryMemoryInspector((celery_app.CELERY_QUEUE,)), library="celery"
            ),
        ]
        return CompositeInspector(members, timeout=settings.broker_timeout)

    from tasklens.demo.celery_worker import celery_key_prefix
    from tasklens.monitor.settings import BrokerSpec

    # The monitor comes first: the worker's exporters need its address. On Redis it reads both
    # the Dramatiq namespace and the Celery key prefix of the demo.
    brokers: tuple[BrokerSpec, ...] = ()
    options: dict[str, Any] = {}
    if demo.url:
        celery_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
        brokers = (BrokerSpec(demo.url, library="dramatiq"), BrokerSpec(celery_url, library="celery"))
        options = {"global_keyprefix": celery_key_prefix()}
    settings = MonitorSettings(
        broker_url=demo.url or STUB_URL,
        port=port,
        auth_token=token,
        store_path=str(store / "telemetry.db"),
        cache_ttl=1.0,
        brokers=brokers,
        transport_options=options,
    )
    inspector_factory: Any = None if demo.url else open_in_process_inspector
    monitor = BackgroundServer(create_app(settings, open_inspector=inspector_factory), port=port).start()
    parts = DashboardDemo(monitor.url, token, demo.description)
    if store_dir is None:
        parts.stoppers.append(lambda: shutil.rmtree(store, ignore_errors=True))
    parts.stoppers.append(monitor.stop)

    telemetry = _configure_telemetry(monitor.url)
    parts.stoppers.append(telemetry.shutdown)

    demo.create()  # after setup(): the instrumentation attaches to brokers as they are made
    broker = demo.broker
    assert broker is not None
    parts.stoppers.append(demo.close)
    actors = declare_actors(broker)

    worker = dramatiq.Worker(broker, worker_threads=WORKER_THREADS, worker_timeout=100)
    worker.start()
    parts.stoppers.append(worker.stop)

    shop_app = create_demo_app(actors)
    FastAPIInstrumentor.instrument_app(shop_app, exclude_spans=["receive", "send"])
    shop = BackgroundServer(shop_app).start()
    parts.stoppers.append(shop.stop)

    parts.traffic = TrafficGenerator(shop.url).start()
    parts.stoppers.append(parts.traffic.stop)

    # Celery next to Dramatiq: its spans and metrics reach the same monitor.
    from tasklens.demo.celery_worker import CeleryTraffic, start_celery_demo

    celery = start_celery_demo(on_redis=demo.namespace is not None)
    parts.celery_description = celery.description
    parts.stoppers.append(celery.stop)
    parts.stoppers.append(CeleryTraffic().start().stop)
    return parts


def _progress(client: httpx.Client, demo: DashboardDemo) -> str:
    sent = demo.traffic.sent if demo.traffic is not None else 0
    try:
        actors: list[dict[str, Any]] = client.get("/api/actors", params={"window": "15m"}).json()["items"]
        queues: list[dict[str, Any]] = client.get("/api/queues").json()["queues"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return f"requests {sent} · waiting for the monitor"
    runs = sum(int(row.get("runs") or 0) for row in actors)
    failed = sum(round(int(row.get("runs") or 0) * float(row.get("error_pct") or 0) / 100) for row in actors)
    pending = sum(int(q.get("ready") or 0) + int(q.get("delayed") or 0) for q in queues)
    dead = sum(int(q.get("dead") or 0) for q in queues)
    return (
        f"requests {sent} · runs {runs} · failed attempts {failed} · pending {pending} · dead letters {dead}"
    )


def run_dashboard_demo(
    *,
    port: int = 0,
    prefer_redis: bool = True,
    duration: float | None = None,
    console: Console | None = None,
) -> int:
    """Run the dashboard demo until Ctrl-C (or ``duration`` seconds); return the exit code."""
    console = console or Console()
    logging.getLogger("dramatiq").setLevel(logging.CRITICAL)  # failures are the show, not noise
    logging.getLogger("tasklens.demo").setLevel(logging.INFO)  # the actors' log lines reach the runs
    demo = start_dashboard_demo(port=port, prefer_redis=prefer_redis)
    console.print(f"[bold]tasklens dashboard:[/] {demo.url}/#token={demo.token}", highlight=False)
    console.print(f"[bold]Auth token[/] (for dead-letter actions): {demo.token}")
    console.print(f"[bold]Broker:[/] {demo.broker_description}")
    console.print(f"[bold]Celery:[/] {demo.celery_description}")
    console.print("Press Ctrl-C to stop.", highlight=False)
    stop = threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        with httpx.Client(
            base_url=demo.url, headers={"Authorization": f"Bearer {demo.token}"}, timeout=5
        ) as client:
            # A terminal gets one line redrawn in place; a log gets a line every few seconds.
            interval = PROGRESS_INTERVAL_S if console.is_terminal else 5 * PROGRESS_INTERVAL_S
            end = "\r" if console.is_terminal else "\n"
            while not stop.wait(interval):
                console.print(_progress(client, demo), end=end, soft_wrap=True, highlight=False)
                if deadline is not None and time.monotonic() >= deadline:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        console.print("\nStopping…", highlight=False)
        demo.stop()
    console.print("Stopped.")
    return 0
