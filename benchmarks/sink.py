"""A local OTLP/HTTP receiver that accepts everything and keeps nothing.

Exporters under test send their batches here, so that what is measured is the cost of producing
and sending telemetry, not the cost of storing it. The sink runs in its own process (started by
:class:`SinkProcess`) so that it does not share a GIL with the process under test, answers every
``POST`` with ``200`` and an empty protobuf body (a valid, empty ``Export*ServiceResponse``), and
counts requests and bytes per path so that each trial can report what it exported.

Run on its own: ``python -m benchmarks.sink --port 4318``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

__all__ = ["SinkProcess", "SinkStats", "serve"]

#: How long the sink process may take to report its port, in seconds.
START_TIMEOUT = 30.0

#: The content type of an OTLP/HTTP protobuf response.
PROTOBUF = "application/x-protobuf"

SinkStats = dict[str, int]


class _Counters:
    """Requests and bytes received, per path; shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: Counter[str] = Counter()

    def add(self, path: str, size: int) -> None:
        with self.lock:
            self.values[f"{path}:requests"] += 1
            self.values[f"{path}:bytes"] += size

    def snapshot(self) -> SinkStats:
        with self.lock:
            return dict(self.values)


class _Handler(BaseHTTPRequestHandler):
    """Reads and discards an OTLP request; ``GET /stats`` returns the counters as JSON."""

    # HTTP/1.1 keeps the exporter's connection alive, as a real collector would.
    protocol_version = "HTTP/1.1"
    counters: _Counters

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        remaining = size
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        self.counters.add(self.path, size)
        self.send_response(200)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = json.dumps(self.counters.snapshot()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log."""


def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` (0 picks a free port) and print the port on stdout."""
    handler = type("Handler", (_Handler,), {"counters": _Counters()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


class SinkProcess:
    """The sink in a child process, for the duration of a ``with`` block.

    Example::

        with SinkProcess() as sink:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
            ...
            print(sink.stats())
    """

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL (exporters append ``/v1/traces`` and so on)."""
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> SinkStats:
        """Requests and bytes received so far, keyed ``"<path>:requests"`` and ``"<path>:bytes"``."""
        with urllib.request.urlopen(f"{self.endpoint}/stats", timeout=5) as response:
            stats: SinkStats = json.loads(response.read())
            return stats

    def __enter__(self) -> SinkProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self._process.kill()
            raise RuntimeError("the OTLP sink did not start")
        self.port = int(line)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
