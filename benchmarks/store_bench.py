"""The embedded store's benchmark: ingest rate while the dashboard is polled, and API latency.

Two measurements, each against a real ``tasklens`` receiver and dashboard API served by uvicorn
in a subprocess (so the load generator does not share its interpreter):

1. Ingest: clients POST OTLP/protobuf traces requests (512 spans each, shaped like the Dramatiq
   instrumentation's send and process spans) as fast as the server answers, while a poller reads
   ``/api/overview``, ``/api/actors`` and ``/api/runs`` every second. The rate is spans committed
   to the store per second, from the first request until the last span is committed.
2. Latency: a store filled with ``stored_spans`` spans (bulk-inserted with SQL, all within the
   last hour, which is the dashboard's default window) answers every API call the UI makes
   ``samples`` times; the p50 and p95 of each are reported. The store also holds what a monitor
   with eight busy workers records over that hour: queue depth per queue and state, and process
   and queue-wait metrics every five seconds.

Usage::

    python -m benchmarks.store_bench                      # 1,000,000 stored spans
    python -m benchmarks.store_bench --stored-spans 100000 --ingest-spans 50000

    from benchmarks.store_bench import run_store_bench
    result = run_store_bench(stored_spans=1_000_000)
    result["ingest"]["spans_per_second"], result["latency"]["/api/runs"]["p95_ms"]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tasklens import semconv

__all__ = ["TARGET_P95_MS", "TARGET_SPANS_PER_SECOND", "bulk_fill", "make_requests", "run_store_bench"]

#: The ingest rate the store must sustain while the dashboard is polled, in spans per second.
TARGET_SPANS_PER_SECOND = 10_000
#: The p95 latency every dashboard API call must stay under with 1,000,000 spans, in ms.
TARGET_P95_MS = 300.0
#: Spans in one traces request, as the SDK's batch processor sends them by default.
SPANS_PER_REQUEST = 512
#: Example actors and their queues, with their typical duration in seconds.
ACTORS: tuple[tuple[str, str, float], ...] = (
    ("send_welcome_email", "emails", 0.02),
    ("charge_payment", "payments", 0.08),
    ("refund_payment", "payments", 0.05),
    ("generate_report", "reports", 1.5),
    ("fetch_page", "pipeline", 0.2),
    ("transform_page", "pipeline", 0.03),
    ("store_page", "pipeline", 0.01),
    ("send_reminder", "default", 0.01),
)
_NS = 1_000_000_000
_ROOT = Path(__file__).resolve().parent.parent


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource_spans(spans: list[Span], instance: int) -> ResourceSpans:
    resource = ResourceSpans()
    resource.resource.attributes.extend(
        [_kv("service.name", "bench-worker"), _kv("service.instance.id", f"bench-worker-{instance}")]
    )
    resource.scope_spans.append(ScopeSpans(spans=spans))
    resource.scope_spans[0].scope.name = "tasklens.dramatiq"
    return resource


def make_requests(count: int, *, spans_per_request: int = SPANS_PER_REQUEST, seed: int = 0) -> list[bytes]:
    """``count`` encoded traces requests, each of send and process span pairs.

    Parameters:
      count(int): How many distinct requests.
      spans_per_request(int): Spans in each (half send, half process).
      seed(int): Seed of the random durations, errors and ids.
    """
    rng = random.Random(seed)
    bodies = []
    now_ns = time.time_ns()
    for index in range(count):
        spans: list[Span] = []
        for _ in range(spans_per_request // 2):
            actor, queue, typical = ACTORS[rng.randrange(len(ACTORS))]
            trace_id = rng.randbytes(16)
            send_id, process_id = rng.randbytes(8), rng.randbytes(8)
            message_id = f"{rng.getrandbits(128):032x}"
            start = now_ns - rng.randrange(60 * _NS)
            duration = int(rng.lognormvariate(0, 0.5) * typical * _NS)
            common = [
                _kv(semconv.MESSAGING_SYSTEM, semconv.MESSAGING_SYSTEM_DRAMATIQ),
                _kv(semconv.MESSAGING_DESTINATION_NAME, queue),
                _kv(semconv.MESSAGING_MESSAGE_ID, message_id),
                _kv(semconv.DRAMATIQ_ACTOR_NAME, actor),
            ]
            send = Span(
                trace_id=trace_id,
                span_id=send_id,
                name=semconv.span_name(semconv.OPERATION_SEND, queue),
                kind=Span.SPAN_KIND_PRODUCER,
                start_time_unix_nano=start - 2_000_000,
                end_time_unix_nano=start - 1_000_000,
                attributes=[
                    *common,
                    _kv(semconv.MESSAGING_OPERATION_TYPE, semconv.OPERATION_SEND),
                    _kv(semconv.MESSAGING_OPERATION_NAME, semconv.OPERATION_SEND),
                ],
            )
            process = Span(
                trace_id=trace_id,
                span_id=process_id,
                parent_span_id=send_id,
                name=semconv.span_name(semconv.OPERATION_PROCESS, queue),
                kind=Span.SPAN_KIND_CONSUMER,
                start_time_unix_nano=start,
                end_time_unix_nano=start + duration,
                attributes=[
                    *common,
                    _kv(semconv.MESSAGING_OPERATION_TYPE, semconv.OPERATION_PROCESS),
                    _kv(semconv.MESSAGING_OPERATION_NAME, semconv.OPERATION_PROCESS),
                    _kv(semconv.DRAMATIQ_MESSAGE_RETRIES, 0),
                ],
            )
            if rng.random() < 0.05:
                process.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="card declined"))
                process.attributes.append(_kv(semconv.ERROR_TYPE, "PaymentDeclined"))
                event = process.events.add(name="exception", time_unix_nano=start + duration)
                event.attributes.extend(
                    [_kv("exception.type", "PaymentDeclined"), _kv("exception.message", "card declined")]
                )
            spans.extend((send, process))
        request = ExportTraceServiceRequest(resource_spans=[_resource_spans(spans, index % 4)])
        bodies.append(request.SerializeToString())
    return bodies


def bulk_fill(path: Path, spans: int, *, window: float = 3600.0, now: float | None = None) -> float:
    """Fill the store at ``path`` with ``spans`` spans (send and process pairs) in one SQL
    statement, and its run rollups; returns the seconds it took.

    Parameters:
      path(Path): The database file (created with the store's schema when missing).
      spans(int): How many spans, half of them runs.
      window(float): The runs' start times spread over the last ``window`` seconds.
      now(float|None): The end of that window, in Unix seconds; now when ``None``.
    """
    from tasklens.monitor.store.quantiles import duration_bin
    from tasklens.monitor.store.schema import connect, create_schema

    started = time.perf_counter()
    end_ns = int((time.time() if now is None else now) * _NS)
    first_ns = end_ns - int(window * _NS)
    runs = max(spans // 2, 1)
    conn = connect(path)
    create_schema(conn)
    conn.create_function("duration_bin", 1, lambda ns: duration_bin(ns / _NS), deterministic=True)
    actor_case = " ".join(f"WHEN {i} THEN '{name}'" for i, (name, _, _) in enumerate(ACTORS))
    queue_case = " ".join(f"WHEN {i} THEN '{queue}'" for i, (_, queue, _) in enumerate(ACTORS))
    typical_case = " ".join(f"WHEN {i} THEN {typical}" for i, (_, _, typical) in enumerate(ACTORS))
    conn.execute("BEGIN")
    conn.execute(
        f"""
        WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {spans - 1}),
        base AS (
            SELECT i, i / 2 AS r, i % 2 AS is_process, (i / 2) % {len(ACTORS)} AS a,
                   {first_ns} + (i / 2) * {int(window * _NS) // runs} AS t,
                   (i / 2) % 20 = 0 AS failed
            FROM seq
        ),
        shaped AS (
            SELECT *, CASE a {actor_case} END AS actor, CASE a {queue_case} END AS queue,
                   CAST((CASE a {typical_case} END) * (0.5 + (abs(random()) % 1000) / 1000.0) * {_NS}
                        AS INTEGER) AS duration,
                   printf('%08x-0000-4000-8000-%012x', r, r) AS message_id
            FROM base
        )
        INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, instance, start_ns,
            end_ns, status_code, status_message, operation, actor, queue, message_id, attempt,
            error_type, error_message, attributes, events, links)
        SELECT printf('%016x%016x', r * 2654435761 % 9223372036854775807, r),
               printf('%016x', i + 1),
               CASE WHEN is_process THEN printf('%016x', i) END,
               CASE WHEN is_process THEN 'process ' ELSE 'send ' END || queue,
               CASE WHEN is_process THEN 5 ELSE 4 END,
               'bench-worker', 'bench-worker-' || (r % 4),
               CASE WHEN is_process THEN t ELSE t - 2000000 END,
               CASE WHEN is_process THEN t + duration ELSE t - 1000000 END,
               CASE WHEN is_process AND failed THEN 2 ELSE 0 END,
               CASE WHEN is_process AND failed THEN 'card declined' END,
               CASE WHEN is_process THEN 'process' ELSE 'send' END,
               actor, queue, message_id,
               CASE WHEN is_process THEN 1 END,
               CASE WHEN is_process AND failed THEN 'PaymentDeclined' END,
               CASE WHEN is_process AND failed THEN 'card declined' END,
               json_object('messaging.system', 'dramatiq', 'messaging.destination.name', queue,
                           'messaging.message.id', message_id, 'dramatiq.actor.name', actor,
                           'messaging.operation.type', CASE WHEN is_process THEN 'process' ELSE 'send' END),
               CASE WHEN is_process AND failed THEN json_array(json_object('name', 'exception',
                    'time', (t + duration) / 1e9, 'attributes', json_object('exception.type',
                    'PaymentDeclined', 'exception.message', 'card declined'))) END,
               NULL
        FROM shaped
        """
    )
    conn.execute(
        "INSERT INTO run_stats (minute, actor, queue, runs, errors, retries, dead_letters)"
        " SELECT start_ns / 60000000000 * 60 AS minute, actor, queue, count(*), sum(status_code = 2), 0, 0"
        " FROM spans WHERE operation = 'process' GROUP BY minute, actor, queue"
    )
    conn.execute(
        "INSERT INTO run_durations (minute, actor, queue, bin, count)"
        " SELECT start_ns / 60000000000 * 60 AS minute, actor, queue, duration_bin(end_ns - start_ns) AS b,"
        " count(*) FROM spans WHERE operation = 'process' GROUP BY minute, actor, queue, b"
    )
    _fill_history(conn, first_ns, end_ns)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


#: Worker processes whose metrics and queue-depth history the filled store holds.
HISTORY_WORKERS = 8
#: How often those workers exported metrics and the monitor recorded depth, in seconds.
HISTORY_INTERVAL_S = 5


def _fill_history(conn: sqlite3.Connection, first_ns: int, end_ns: int) -> None:
    """Broker depth for every queue and state, and each worker's process and queue-wait metrics,
    every ``HISTORY_INTERVAL_S`` seconds over the window: what a monitor with busy workers holds."""
    step_ns = HISTORY_INTERVAL_S * _NS
    ticks = (
        f"WITH RECURSIVE tick(t) AS (SELECT {first_ns} UNION ALL SELECT t + {step_ns} FROM tick"
        f" WHERE t < {end_ns})"
    )
    queues = sorted({queue for _, queue, _ in ACTORS})
    queue_rows = " UNION ALL ".join(f"SELECT '{queue}' AS queue" for queue in queues)
    conn.execute(
        f"{ticks}, queues AS ({queue_rows}),"
        " states(state) AS (VALUES ('ready'), ('delayed'), ('in_flight'), ('dead'))"
        " INSERT INTO queue_depth (time_ns, queue, messaging_system, state, value)"
        " SELECT t, queue, 'dramatiq', state, abs(random()) % 500 FROM tick, queues, states"
    )
    conn.execute(
        f"{ticks} INSERT INTO broker_workers (time_ns, workers) SELECT t, {HISTORY_WORKERS} FROM tick"
    )
    workers = " UNION ALL ".join(
        f"SELECT 'bench-worker-{i}' AS instance, {i} AS w" for i in range(HISTORY_WORKERS)
    )
    process = (
        "VALUES ('process.cpu.utilization', 'gauge', 0), ('process.memory.usage', 'updowncounter', 1),"
        " ('process.thread.count', 'updowncounter', 2)"
    )
    conn.execute(
        f"{ticks}, workers AS ({workers}), names(name, kind, n) AS ({process})"
        " INSERT INTO metric_points (time_ns, start_ns, name, series, kind, temporality, service, instance,"
        " actor, attributes, value) SELECT t, NULL, name, w * 100 + n, kind, 2, 'bench-worker', instance,"
        " NULL, '{}', abs(random()) % 100 FROM tick, workers, names"
    )
    actors = " UNION ALL ".join(
        f"SELECT '{name}' AS actor, {i} AS a" for i, (name, _, _) in enumerate(ACTORS)
    )
    bounds = json.dumps(list(semconv.QUEUE_WAIT_BUCKETS_S))
    conn.execute(
        f"{ticks}, workers AS ({workers}), actors AS ({actors})"
        " INSERT INTO metric_points (time_ns, start_ns, name, series, kind, temporality, service, instance,"
        " actor, attributes, count, sum, bounds, bucket_counts)"
        f" SELECT t, {first_ns}, '{semconv.MESSAGE_QUEUE_WAIT.name}', 10000 + w * 100 + a, 'histogram', 2,"
        " 'bench-worker', instance,"
        " actor, json_object('dramatiq.actor.name', actor), (t - ?) / 1000000000, 1.0, ?,"
        " json_array(0, 0, (t - ?) / 2000000000, (t - ?) / 2000000000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
        " FROM tick, workers, actors",
        (first_ns, bounds, first_ns, first_ns),
    )
    conn.execute(
        "INSERT INTO metric_series (series, name, temporality, last_ns)"
        " SELECT series, name, temporality, MAX(time_ns) FROM metric_points GROUP BY series"
    )


# -- The server under test ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(path: Path, port: int) -> None:
    """Serve the receiver and the dashboard API over the store at ``path`` until killed.

    Parameters:
      path(Path): The database file.
      port(int): The local TCP port.
    """
    import uvicorn
    from fastapi import FastAPI

    from tasklens.monitor.http.dashboard_api import dashboard_router
    from tasklens.monitor.ingest.receiver import OtlpReceiver
    from tasklens.monitor.store import RetentionPolicy, TelemetryStore

    store = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=None))
    app = FastAPI()
    app.include_router(OtlpReceiver(store).router())
    app.include_router(dashboard_router(store.reader))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class _Server:
    def __init__(self, path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.store_bench", "serve", str(path), str(self.port)],
            cwd=_ROOT,
            env={**os.environ, "PYTHONPATH": str(_ROOT)},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/overview", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the benchmark server did not start within 30 s")

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return (time.perf_counter() - started) * 1000


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
        "samples": len(ordered),
    }


def _committed(path: Path) -> int:
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    finally:
        conn.close()


def measure_ingest(path: Path, spans: int, *, clients: int = 2) -> dict[str, Any]:
    """Spans committed per second while the dashboard is polled every second.

    Parameters:
      path(Path): A fresh database file.
      spans(int): Spans to send in all.
      clients(int): Concurrent HTTP connections sending requests.
    """
    bodies = make_requests(min(64, max(1, spans // SPANS_PER_REQUEST)))
    requests_total = max(1, spans // SPANS_PER_REQUEST)
    server = _Server(path)
    statuses: dict[int, int] = {}
    poll_ms: list[float] = []
    stop = threading.Event()
    lock = threading.Lock()
    next_index = iter(range(requests_total))

    def send() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            connection.request("POST", "/v1/traces", bodies[index % len(bodies)], headers)
            response = connection.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    def poll() -> None:
        for route in _cycle(["/api/overview", "/api/actors", "/api/runs?status=error"]):
            if stop.wait(1.0):
                return
            poll_ms.append(_timed_get(server.url + route))

    try:
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        started = time.perf_counter()
        senders = [threading.Thread(target=send) for _ in range(clients)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        sent_seconds = time.perf_counter() - started
        accepted = statuses.get(200, 0) * SPANS_PER_REQUEST
        deadline = time.monotonic() + 120
        while _committed(path) < accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        committed_seconds = time.perf_counter() - started
        stop.set()
        poller.join()
    finally:
        server.close()
    committed = _committed(path)
    return {
        "spans_sent": requests_total * SPANS_PER_REQUEST,
        "spans_committed": committed,
        "statuses": statuses,
        "send_seconds": round(sent_seconds, 2),
        "commit_seconds": round(committed_seconds, 2),
        "spans_per_second": round(committed / committed_seconds),
        "poll": _percentiles(poll_ms) if poll_ms else None,
        "target_spans_per_second": TARGET_SPANS_PER_SECOND,
    }


def _cycle(items: list[str]) -> Any:
    while True:
        yield from items


def measure_latency(path: Path, *, samples: int = 30) -> dict[str, Any]:
    """p50/p95 of every dashboard API call against the store at ``path``.

    Parameters:
      path(Path): A filled database file.
      samples(int): Calls of each route.
    """
    conn = sqlite3.connect(str(path))
    trace_id, actor, message_id = conn.execute(
        "SELECT trace_id, actor, message_id FROM spans WHERE operation = 'process' AND status_code = 2"
        " ORDER BY start_ns DESC LIMIT 1"
    ).fetchone()
    conn.close()
    server = _Server(path)
    try:
        first_page = json.loads(urllib.request.urlopen(f"{server.url}/api/runs").read())
        routes = [
            "/api/overview?window=1h",
            "/api/overview?window=24h",
            "/api/actors?window=1h",
            f"/api/actors/{actor}?window=1h",
            "/api/runs",
            f"/api/runs?cursor={first_page['next_cursor']}",
            f"/api/runs?actor={actor}",
            "/api/runs?queue=payments&status=error",
            f"/api/runs?q={message_id}",
            f"/api/runs?q={trace_id}",
            "/api/runs?q=declined",
            "/api/runs?q=no-such-text",
            f"/api/traces/{trace_id}",
            "/api/queues/history?window=1h",
            "/api/processes?window=15m",
        ]
        results = {}
        for route in routes:
            _timed_get(server.url + route)
            results[route] = _percentiles([_timed_get(server.url + route) for _ in range(samples)])
    finally:
        server.close()
    return results


def run_store_bench(
    *,
    stored_spans: int = 1_000_000,
    ingest_spans: int = 200_000,
    samples: int = 30,
    clients: int = 2,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Both measurements; the result is JSON-ready.

    Parameters:
      stored_spans(int): Spans in the store the latencies are measured against.
      ingest_spans(int): Spans sent in the ingest measurement.
      samples(int): Calls of each API route.
      clients(int): Concurrent connections of the ingest measurement.
      directory(Path|None): Where the databases go; a temporary directory when ``None``.

    Returns:
      ``{"ingest": {"spans_per_second", "spans_committed", "poll": {...}, ...},
      "fill_seconds": s, "stored_spans": n, "latency": {route: {"p50_ms", "p95_ms", "max_ms",
      "samples"}}, "worst_p95_ms": ms, "targets": {"ingest": bool, "latency": bool}}``
    """
    with tempfile.TemporaryDirectory(dir=directory) as temporary:
        root = Path(temporary)
        ingest = measure_ingest(root / "ingest.db", ingest_spans, clients=clients)
        filled = root / "filled.db"
        fill_seconds = bulk_fill(filled, stored_spans)
        latency = measure_latency(filled, samples=samples)
    worst = max(result["p95_ms"] for result in latency.values())
    return {
        "ingest": ingest,
        "stored_spans": stored_spans,
        "fill_seconds": round(fill_seconds, 2),
        "latency": latency,
        "worst_p95_ms": worst,
        "targets": {
            "ingest": ingest["spans_per_second"] >= TARGET_SPANS_PER_SECOND,
            "latency": worst < TARGET_P95_MS,
        },
    }


def format_store_bench(result: dict[str, Any]) -> str:
    """The result as a short table, with each target and whether it is met."""
    ingest = result["ingest"]
    poll_p95 = (ingest["poll"] or {}).get("p95_ms")
    polled = f"poll p95 {poll_p95:.0f} ms" if poll_p95 is not None else "too short to poll"
    lines = [
        f"Dashboard store (SQLite, {result['stored_spans']:,} stored spans)",
        f"  ingest: {ingest['spans_per_second']:,.0f} spans/s while the API is polled "
        f"({polled}); target >= {TARGET_SPANS_PER_SECOND:,}: "
        + ("met" if result["targets"]["ingest"] else "NOT met"),
        f"  {'route':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}",
    ]
    for route, timing in result["latency"].items():
        lines.append(
            f"  {route:<52} {timing['p50_ms']:>8.1f} {timing['p95_ms']:>8.1f} {timing['max_ms']:>8.1f}"
        )
    lines.append(
        f"  worst p95 {result['worst_p95_ms']:.1f} ms; target < {TARGET_P95_MS} ms: "
        + ("met" if result["targets"]["latency"] else "NOT met")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["serve"]:
        serve(Path(arguments[1]), int(arguments[2]))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stored-spans", type=int, default=1_000_000)
    parser.add_argument("--ingest-spans", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the result as JSON here")
    options = parser.parse_args(arguments)
    result = run_store_bench(
        stored_spans=options.stored_spans,
        ingest_spans=options.ingest_spans,
        samples=options.samples,
        clients=options.clients,
    )
    if options.output:
        options.output.write_text(json.dumps(result, indent=2))
    print(format_store_bench(result))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
