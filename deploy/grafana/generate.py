"""Generates the Grafana dashboards in ``deploy/grafana/dashboards/`` with grafana-foundation-sdk.

Run ``make dashboards`` (or ``python deploy/grafana/generate.py``) after changing this file and
commit the JSON it writes; ``--check`` exits 1, naming the files, when the committed JSON is not
what this file generates (a test runs it).

Every query reads the series names of docs/telemetry.md ("Prometheus names"), the same whether
Prometheus scrapes ``tasklens monitor`` or a Collector's prometheus exporter. The data sources
are variables: ``datasource`` (Prometheus), ``traces`` (Tempo) and ``jaeger`` (Jaeger, in a row
of its own that queries nothing until it is opened).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus, stat, table, tempo, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import common, dashboard

#: Where the generated dashboards are written.
OUTPUT = Path(__file__).resolve().parent / "dashboards"
#: Tags on every dashboard, so that they can be found (and linked) together.
TAGS = ["tasklens"]
#: The dashboards' schema version: the Grafana release the JSON is written for.
SCHEMA_VERSION = 39

PROMETHEUS = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
TEMPO = dashboard.DataSourceRef(type_val="tempo", uid="${traces}")
JAEGER = dashboard.DataSourceRef(type_val="jaeger", uid="${jaeger}")

#: Matchers every worker-side query of the overview carries.
QUEUE_FILTER = 'messaging_system=~"$library", messaging_destination_name=~"$queue"'
#: A task is a Dramatiq actor or a Celery task: a series has one of the two labels, and the
#: other matches the empty alternative.
TASK_FILTER = f'{QUEUE_FILTER}, dramatiq_actor_name=~"$task|", celery_task_name=~"$task|"'
#: Legend of a per-task series: one of the two labels is empty.
TASK_LEGEND = "{{dramatiq_actor_name}}{{celery_task_name}}"
#: Matchers of the process health queries.
PROCESS_FILTER = 'service_name=~"$service", service_instance_id=~"$instance"'
RATE = "$__rate_interval"


# -- Building blocks ------------------------------------------------------------------------------


def query(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref_id)


def graph(title: str, unit: str, *queries: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .unit(unit)
        .height(8)
        .span(12)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if description:
        panel = panel.description(description)
    for target in queries:
        panel = panel.with_target(target)
    return panel


def single(title: str, unit: str, expr: str, *, width: int = 6, description: str = "") -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .unit(unit)
        .height(4)
        .span(width)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(query(expr).instant())
    )
    return panel.description(description) if description else panel


class JaegerSearch(cogbuilder.Builder[cogvariants.Dataquery]):
    """A Jaeger trace search (the SDK has no Jaeger types; this is the data source's query model).

    Parameters:
      service(str): The service whose traces to search.
      tags(str): Span tags to match, in logfmt (``error=true``).
      limit(int): How many traces at most.
    """

    def __init__(self, service: str, tags: str, limit: int) -> None:
        self._query = {
            "refId": "A",
            "datasource": JAEGER.to_json(),
            "queryType": "search",
            "service": service,
            "tags": tags,
            "limit": limit,
        }

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(dict(self._query))


def datasource_variable(name: str, label: str, plugin: str) -> builder.DatasourceVariable:
    return builder.DatasourceVariable(name).label(label).type(plugin)


def label_variable(name: str, label: str, selector: str, label_name: str) -> builder.QueryVariable:
    return (
        builder.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({selector}, {label_name})")
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


#: Series that name every library and queue: the broker knows idle queues too, the workers'
#: metrics know queues where no monitor runs.
QUEUE_SERIES = '__name__=~"tasklens_queue_depth|messaging_client_consumed_messages_total"'


def library_variable() -> builder.QueryVariable:
    return label_variable("library", "Library", f"{{{QUEUE_SERIES}}}", "messaging_system")


def queue_variable() -> builder.QueryVariable:
    return label_variable(
        "queue", "Queue", f'{{{QUEUE_SERIES}, messaging_system=~"$library"}}', "messaging_destination_name"
    )


def task_variable() -> builder.QueryVariable:
    return (
        builder.QueryVariable("task")
        .label("Task / actor")
        .datasource(PROMETHEUS)
        .query(
            "query_result(count by (dramatiq_actor_name, celery_task_name)"
            f" (messaging_client_consumed_messages_total{{{QUEUE_FILTER}}}))"
        )
        .regex('/(?:dramatiq_actor_name|celery_task_name)="([^"]+)"/')
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def new_dashboard(uid: str, title: str, description: str) -> builder.Dashboard:
    return (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .link(
            builder.DashboardLink("tasklens")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(datasource_variable("datasource", "Metrics", "prometheus"))
    )


def quantile(q: float, metric: str, by: str, matchers: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{matchers}}}[{RATE}])))"


def either(
    dramatiq: str, celery: str, by: str, matchers: str, *, rate: bool = True, celery_only: str = ""
) -> str:
    """The Dramatiq series or else the Celery one: each library names its extras itself.

    ``celery_only`` adds matchers to the Celery selector alone.
    """
    celery_matchers = f"{matchers}, {celery_only}" if celery_only else matchers
    if rate:
        return (
            f"sum by ({by}) (rate({dramatiq}{{{matchers}}}[{RATE}]))"
            f" or sum by ({by}) (rate({celery}{{{celery_matchers}}}[{RATE}]))"
        )
    return f"sum by ({by}) ({dramatiq}{{{matchers}}}) or sum by ({by}) ({celery}{{{celery_matchers}}})"


# -- Dashboards -----------------------------------------------------------------------------------


def overview() -> builder.Dashboard:
    by_queue = "messaging_system, messaging_destination_name"
    queue_legend = "{{messaging_destination_name}} ({{messaging_system}})"
    consumed = "messaging_client_consumed_messages_total"
    return (
        new_dashboard(
            "tasklens-overview",
            "tasklens / Overview",
            "Throughput, errors, latency, queue depth, oldest message, workers, dead letters and retries"
            " of every Dramatiq and Celery queue.",
        )
        .with_variable(library_variable())
        .with_variable(queue_variable())
        .with_panel(
            single(
                "Broker reachable",
                "bool_yes_no",
                "min(tasklens_broker_up)",
                description="1 when every tasklens monitor could read its broker at its last scrape.",
            )
        )
        .with_panel(
            single(
                "Live workers",
                "short",
                'sum(tasklens_workers{messaging_system=~"$library"})',
                description="Worker processes with a recent heartbeat (Redis) or consumers (RabbitMQ).",
            )
        )
        .with_panel(
            single(
                "Ready messages",
                "short",
                f'sum(tasklens_queue_depth{{{QUEUE_FILTER}, state="ready"}})',
            )
        )
        .with_panel(
            single(
                "Dead letters",
                "short",
                f'sum(tasklens_queue_depth{{{QUEUE_FILTER}, state="dead"}})',
            )
        )
        .with_panel(
            graph(
                "Throughput",
                "reqps",
                query(f"sum by ({by_queue}) (rate({consumed}{{{QUEUE_FILTER}}}[{RATE}]))", queue_legend),
                description="Messages processed per second.",
            )
        )
        .with_panel(
            graph(
                "Error rate",
                "percentunit",
                query(
                    f'sum by ({by_queue}) (rate({consumed}{{{QUEUE_FILTER}, error_type!=""}}[{RATE}]))'
                    f" / sum by ({by_queue}) (rate({consumed}{{{QUEUE_FILTER}}}[{RATE}]))",
                    queue_legend,
                ),
                description="Share of processed messages that ended with an error.",
            )
        )
        .with_panel(
            graph(
                "Processing duration p50 / p95",
                "s",
                query(
                    quantile(0.5, "messaging_process_duration_seconds", by_queue, QUEUE_FILTER),
                    "p50 {{messaging_destination_name}}",
                ),
                query(
                    quantile(0.95, "messaging_process_duration_seconds", by_queue, QUEUE_FILTER),
                    "p95 {{messaging_destination_name}}",
                    "B",
                ),
            )
        )
        .with_panel(
            graph(
                "Queue depth by state",
                "short",
                query(
                    f"sum by ({by_queue}, state) (tasklens_queue_depth{{{QUEUE_FILTER}}})",
                    "{{messaging_destination_name}} {{state}}",
                ),
                description="Ready, delayed, in flight and dead messages, read from the broker.",
            )
        )
        .with_panel(
            graph(
                "Oldest ready message",
                "s",
                query(
                    f"max by ({by_queue}) (tasklens_queue_oldest_message_age_seconds{{{QUEUE_FILTER}}})",
                    queue_legend,
                ),
            )
        )
        .with_panel(
            graph(
                "Live workers",
                "short",
                query('sum by (messaging_system) (tasklens_workers{messaging_system=~"$library"})'),
            )
        )
        .with_panel(
            graph(
                "Dead-lettered messages",
                "reqps",
                query(
                    either(
                        "dramatiq_message_dead_lettered_total",
                        "celery_task_failures_total",
                        by_queue,
                        QUEUE_FILTER,
                        celery_only='celery_task_state="failure"',
                    ),
                    queue_legend,
                ),
                description="Messages sent to the dead-letter queue (Dramatiq) or failed for good (Celery),"
                " per second.",
            )
        )
        .with_panel(
            graph(
                "Retries",
                "reqps",
                query(
                    either(
                        "dramatiq_message_retries_total", "celery_task_retries_total", by_queue, QUEUE_FILTER
                    ),
                    queue_legend,
                ),
                description="Retries scheduled per second.",
            )
        )
        .with_panel(
            graph(
                "Sent",
                "reqps",
                query(
                    f"sum by ({by_queue})"
                    f" (rate(messaging_client_sent_messages_total{{{QUEUE_FILTER}}}[{RATE}]))",
                    queue_legend,
                ),
                description="Messages enqueued per second by producers (web apps and tasks).",
            )
        )
        .with_panel(
            graph(
                "In flight",
                "short",
                query(
                    either(
                        "dramatiq_messages_in_flight",
                        "celery_tasks_in_flight",
                        by_queue,
                        QUEUE_FILTER,
                        rate=False,
                    ),
                    queue_legend,
                ),
                description="Messages being processed right now, as the workers count them.",
            )
        )
    )


def per_task() -> builder.Dashboard:
    by_task = "dramatiq_actor_name, celery_task_name"
    consumed = "messaging_client_consumed_messages_total"
    return (
        new_dashboard(
            "tasklens-task",
            "tasklens / Task",
            "One Dramatiq actor or Celery task: throughput, errors by type, duration, queue wait,"
            " retries, dead letters and its traces.",
        )
        .with_variable(datasource_variable("traces", "Traces", "tempo"))
        .with_variable(datasource_variable("jaeger", "Jaeger", "jaeger"))
        .with_variable(library_variable())
        .with_variable(queue_variable())
        .with_variable(task_variable())
        .with_variable(
            label_variable(
                "service",
                "Service (Jaeger)",
                f"messaging_client_consumed_messages_total{{{QUEUE_FILTER}}}",
                "service_name",
            )
            .multi(False)
            .include_all(False)
        )
        .with_panel(
            graph(
                "Processed, by outcome",
                "reqps",
                query(
                    f'sum by ({by_task}) (rate({consumed}{{{TASK_FILTER}, error_type=""}}[{RATE}]))',
                    f"{TASK_LEGEND} ok",
                ),
                query(
                    f'sum by ({by_task}) (rate({consumed}{{{TASK_FILTER}, error_type!=""}}[{RATE}]))',
                    f"{TASK_LEGEND} failed",
                    "B",
                ),
            )
        )
        .with_panel(
            graph(
                "Errors by type",
                "reqps",
                query(
                    f"sum by ({by_task}, error_type)"
                    f' (rate({consumed}{{{TASK_FILTER}, error_type!=""}}[{RATE}]))',
                    f"{TASK_LEGEND} {{{{error_type}}}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Processing duration p50 / p95 / p99",
                "s",
                *(
                    query(
                        quantile(q, "messaging_process_duration_seconds", by_task, TASK_FILTER),
                        f"p{round(q * 100)} {TASK_LEGEND}",
                        ref_id,
                    )
                    for q, ref_id in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
                ),
            )
        )
        .with_panel(
            graph(
                "Queue wait p95",
                "s",
                query(
                    quantile(0.95, "dramatiq_message_queue_wait_seconds", by_task, TASK_FILTER)
                    + " or "
                    + quantile(0.95, "celery_task_queue_wait_seconds", by_task, TASK_FILTER),
                    TASK_LEGEND,
                ),
                description="From when a message became ready to when a worker started it.",
            )
        )
        .with_panel(
            graph(
                "Retries",
                "reqps",
                query(
                    either(
                        "dramatiq_message_retries_total", "celery_task_retries_total", by_task, TASK_FILTER
                    ),
                    TASK_LEGEND,
                ),
            )
        )
        .with_panel(
            graph(
                "Dead letters and failures, by reason",
                "reqps",
                query(
                    f"sum by ({by_task}, dramatiq_dead_letter_reason)"
                    f" (rate(dramatiq_message_dead_lettered_total{{{TASK_FILTER}}}[{RATE}]))"
                    f" or sum by ({by_task}, celery_task_state)"
                    f" (rate(celery_task_failures_total{{{TASK_FILTER}}}[{RATE}]))",
                    f"{TASK_LEGEND} {{{{dramatiq_dead_letter_reason}}}}{{{{celery_task_state}}}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Send duration p95",
                "s",
                query(
                    quantile(0.95, "messaging_client_operation_duration_seconds", by_task, TASK_FILTER),
                    TASK_LEGEND,
                ),
                description="How long producers wait for the broker to take a message.",
            )
        )
        .with_panel(
            graph(
                "In flight",
                "short",
                query(
                    either(
                        "dramatiq_messages_in_flight",
                        "celery_tasks_in_flight",
                        by_task,
                        TASK_FILTER,
                        rate=False,
                    ),
                    TASK_LEGEND,
                ),
            )
        )
        .with_panel(
            table.Panel()
            .title("Recent failed runs")
            .description("Process spans of the task that ended with an error; open one for its whole trace.")
            .datasource(TEMPO)
            .height(10)
            .span(24)
            .show_header(True)
            .with_target(
                tempo.TempoQuery()
                .ref_id("A")
                .datasource(TEMPO)
                .query_type("traceql")
                .query(
                    "{ kind = consumer && status = error"
                    ' && span.messaging.destination.name =~ "${queue:regex}"'
                    ' && (span.dramatiq.actor.name =~ "${task:regex}"'
                    ' || span.celery.task.name =~ "${task:regex}") }'
                )
                .limit(20)
            )
        )
        .with_row(
            builder.Row("Traces in Jaeger")
            .collapsed(True)
            .with_panel(
                table.Panel()
                .title("Recent failed runs (Jaeger)")
                .description("Failed spans of the service that works the task, from Jaeger.")
                .datasource(JAEGER)
                .height(10)
                .span(24)
                .show_header(True)
                .with_target(JaegerSearch("${service}", "error=true", 20))
            )
        )
    )


def worker_processes() -> builder.Dashboard:
    by_process = "service_name, service_instance_id"
    legend = "{{service_instance_id}}"
    return (
        new_dashboard(
            "tasklens-worker-processes",
            "tasklens / Worker processes",
            "CPU, memory, threads, file descriptors and garbage collection of each worker process.",
        )
        .with_variable(label_variable("service", "Service", "process_cpu_time_seconds_total", "service_name"))
        .with_variable(
            label_variable(
                "instance",
                "Process",
                'process_cpu_time_seconds_total{service_name=~"$service"}',
                "service_instance_id",
            )
        )
        .with_panel(
            single(
                "Processes",
                "short",
                f"count(process_memory_usage_bytes{{{PROCESS_FILTER}}})",
                width=8,
            )
        )
        .with_panel(
            single(
                "CPU, all processes",
                "short",
                f"sum(rate(process_cpu_time_seconds_total{{{PROCESS_FILTER}}}[{RATE}]))",
                width=8,
                description="CPU seconds per second: 1 is one core busy.",
            )
        )
        .with_panel(
            single(
                "Memory, all processes",
                "bytes",
                f"sum(process_memory_usage_bytes{{{PROCESS_FILTER}}})",
                width=8,
            )
        )
        .with_panel(
            graph(
                "CPU per process",
                "short",
                query(
                    f"sum by ({by_process})"
                    f" (rate(process_cpu_time_seconds_total{{{PROCESS_FILTER}}}[{RATE}]))",
                    legend,
                ),
                description="CPU seconds per second (user and system): 1 is one core busy.",
            )
        )
        .with_panel(
            graph(
                "Resident memory per process",
                "bytes",
                query(f"sum by ({by_process}) (process_memory_usage_bytes{{{PROCESS_FILTER}}})", legend),
            )
        )
        .with_panel(
            graph(
                "Virtual memory per process",
                "bytes",
                query(f"sum by ({by_process}) (process_memory_virtual_bytes{{{PROCESS_FILTER}}})", legend),
            )
        )
        .with_panel(
            graph(
                "Threads per process",
                "short",
                query(f"sum by ({by_process}) (process_thread_count{{{PROCESS_FILTER}}})", legend),
            )
        )
        .with_panel(
            graph(
                "Open file descriptors",
                "short",
                query(
                    f"sum by ({by_process}) (process_open_file_descriptor_count{{{PROCESS_FILTER}}})", legend
                ),
            )
        )
        .with_panel(
            graph(
                "Garbage collections",
                "ops",
                query(
                    f"sum by ({by_process}, cpython_gc_generation)"
                    f" (rate(cpython_gc_collections_total{{{PROCESS_FILTER}}}[{RATE}]))",
                    f"{legend} gen {{{{cpython_gc_generation}}}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Context switches",
                "ops",
                query(
                    f"sum by ({by_process}, type)"
                    f" (rate(process_context_switches_total{{{PROCESS_FILTER}}}[{RATE}]))",
                    f"{legend} {{{{type}}}}",
                ),
            )
        )
    )


#: Each dashboard's file name and builder.
DASHBOARDS = {
    "tasklens-overview.json": overview,
    "tasklens-task.json": per_task,
    "tasklens-worker-processes.json": worker_processes,
}


def render(name: str) -> str:
    """The JSON of dashboard ``name`` (a key of ``DASHBOARDS``), as committed."""
    model = DASHBOARDS[name]().build()
    model.schema_version = SCHEMA_VERSION
    # Stable panel ids keep links to one panel (viewPanel=N) working across regenerations.
    number = 0
    for panel in model.panels or []:
        for each in (panel, *(getattr(panel, "panels", None) or [])):
            number += 1
            each.id_val = number
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="Compare with the committed files; write nothing."
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="Folder to write to or compare with.")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.output / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            args.output.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run make dashboards)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
