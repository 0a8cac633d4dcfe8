"""The worker's own health endpoint: ``GET /healthz`` on a loopback port, from a daemon thread.

It answers 200 with ``{"status": "healthy", ...}`` or 503 with ``"unhealthy"`` and the reasons,
from the probes of the task libraries running in this process and the verdicts its sibling worker
processes publish (``siblings``). Any other path is 404.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tasklens.worker_health.siblings import STALE_AFTER, SiblingBoard
from tasklens.worker_health.verdict import WorkerProbe, WorkerVerdict

__all__ = ["HEALTH_PATH", "WorkerHealthServer"]

logger = logging.getLogger(__name__)

#: The endpoint's path.
HEALTH_PATH = "/healthz"


class WorkerHealthServer:
    """Serves ``GET /healthz`` for the probes registered with ``add``.

    Parameters:
      host(str): The address to bind (loopback unless told otherwise).
      port(int): The TCP port (0: any free one, see ``port`` once started).

    Example:

      >>> server = WorkerHealthServer("127.0.0.1", 8099)
      >>> server.add(probe)
      >>> server.start()
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self._probes: list[WorkerProbe] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        #: Where the sibling and child worker processes this endpoint answers for publish.
        self.boards: list[SiblingBoard] = []

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1]) if self._httpd is not None else self.requested_port

    def add(self, probe: WorkerProbe) -> None:
        """Judge ``probe`` too."""
        with self._lock:
            if probe not in self._probes:
                self._probes.append(probe)

    def local_verdict(self) -> WorkerVerdict | None:
        """This process's verdict; ``None`` before any worker has started in it."""
        with self._lock:
            probes = [probe for probe in self._probes if probe.started]
        if not probes:
            return None
        verdicts = [probe.verdict() for probe in probes]
        if len(verdicts) == 1:
            return verdicts[0]
        reasons = [f"{v.library}: {reason}" for v in verdicts for reason in v.reasons]
        checks = {v.library: v.checks for v in verdicts}
        return WorkerVerdict(not reasons, "+".join(v.library for v in verdicts), reasons, checks)

    def verdict(self) -> WorkerVerdict:
        """This process's verdict and those its sibling and child worker processes publish
        (see ``siblings``): healthy when all are; unhealthy when no worker has started here or
        in any of them."""
        local = self.local_verdict()
        others = [sibling for board in self.boards for sibling in board.siblings()]
        if local is None and not others:
            return WorkerVerdict(False, "none", ["no worker has started in this process"], {})
        reasons = list(local.reasons) if local is not None else []
        processes = []
        for sibling in others:
            stale = sibling.age > STALE_AFTER
            healthy = sibling.verdict.healthy and not stale
            processes.append({"pid": sibling.pid, "status": "healthy" if healthy else "unhealthy"})
            if stale:
                reasons.append(f"worker process {sibling.pid} has not reported for {sibling.age:.0f} s")
            reasons.extend(f"worker process {sibling.pid}: {reason}" for reason in sibling.verdict.reasons)
        library = local.library if local is not None else others[0].verdict.library
        checks = {**(local.checks if local is not None else {}), "sibling_processes": processes}
        return WorkerVerdict(not reasons, library, reasons, checks)

    def start(self) -> None:
        """Bind and serve on a daemon thread.

        Raises:
          OSError: When the port cannot be bound.
        """
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != HEALTH_PATH:
                    self._answer(404, {"error": f"not found; the worker's health is at {HEALTH_PATH}"})
                    return
                try:
                    verdict = server.verdict()
                except Exception as exc:  # a probe bug must still answer, as unhealthy
                    logger.exception("The worker health probe failed.")
                    verdict = WorkerVerdict(False, "unknown", [f"the probe failed: {type(exc).__name__}"])
                self._answer(200 if verdict.healthy else 503, verdict.to_json())

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would flood the worker's log

        httpd = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="tasklens-worker-health", daemon=True).start()

    def forget_listener(self) -> None:
        """In a forked child: close this copy of the parent's listening socket (the parent serves)."""
        if self._httpd is not None:
            self._httpd.socket.close()
            self._httpd = None
        self.boards = []

    def reset_after_fork(self) -> None:
        """In a forked child: fresh locks, and each probe's own reset."""
        self._lock = threading.Lock()
        for probe in self._probes:
            probe.after_fork()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
