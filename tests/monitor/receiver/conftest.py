from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from tasklens.monitor.http.dashboard_api import dashboard_router
from tasklens.monitor.ingest.received_metrics import ReceivedMetrics
from tasklens.monitor.ingest.receiver import OtlpReceiver
from tasklens.monitor.store import RetentionPolicy, TelemetryStore

#: Longest a test server may take to start or stop, in seconds.
SERVER_TIMEOUT = 10.0


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_TIMEOUT)
        sock.close()


@dataclass
class Served:
    """A receiver and the dashboard API over one store, served on a local port."""

    url: str
    store: TelemetryStore
    metrics: ReceivedMetrics
    receiver: OtlpReceiver


ServeFactory = Callable[..., Served]


@contextmanager
def served_receiver(path: Path, **options: Any) -> Iterator[Served]:
    """A receiver (built with ``options``) and the dashboard API over a store at ``path``."""
    store = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=None))
    metrics = ReceivedMetrics()
    receiver = OtlpReceiver(store, metrics, **options)
    app = FastAPI()
    app.include_router(receiver.router())
    app.include_router(dashboard_router(store.reader))
    try:
        with serving(app) as url:
            yield Served(url, store, metrics, receiver)
    finally:
        store.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """``serve(name, **receiver_options)``: a started receiver with its own store."""
    with ExitStack() as stack:

        def start(name: str = "telemetry.db", **options: Any) -> Served:
            return stack.enter_context(served_receiver(tmp_path / name, **options))

        yield start


@pytest.fixture
def served(serve: ServeFactory) -> Served:
    return serve()
