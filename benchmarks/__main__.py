"""``python -m benchmarks``: the whole benchmark in one run (this is what ``make bench`` runs).

Prints one table per broker and the targets, writes ``<output>/latest.json``, ``latest.md`` and
``ratios.png``, then runs the memory check and the dashboard store's benchmark (ingest rate and
API latency with a million stored spans, ``store.json``). ``--quick`` is a small run for trying
the harness out; its numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.brokers import BROKERS
from benchmarks.memory import MemorySpec, format_memory, summarize_memory
from benchmarks.report import (
    check_targets,
    extra_markdown,
    format_checks,
    markdown_tables,
    print_tables,
    summarize,
    write_chart,
    write_json,
)
from benchmarks.runner import Outcome, closed_port_endpoint, run_rounds, run_trial_process, trial_environment
from benchmarks.sink import SinkProcess
from benchmarks.store_bench import format_store_bench, run_store_bench
from benchmarks.variants import BASELINE, DEFAULT_VARIANTS, VARIANTS, Endpoints, get_variant

#: Messages per timed window on each broker in a full run (about 13 minutes on 2 cores in all).
DEFAULT_MESSAGES = {"redis": 10_000, "rabbitmq": 10_000}

#: Where results go unless ``--output`` says otherwise.
RESULTS = Path(__file__).resolve().parent / "results"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated: redis,rabbitmq")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)} (the baseline is always run)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--messages", type=int, help="messages per timed window on every broker")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument(
        "--memory-messages", type=int, default=100_000, help="memory check length; 0 skips it"
    )
    parser.add_argument("--memory-every", type=int, default=10_000, help="messages between memory samples")
    parser.add_argument("--memory-variant", default="tasklens", help="variant the memory check runs")
    parser.add_argument(
        "--store-spans",
        type=int,
        default=1_000_000,
        help="spans in the dashboard store for its latency measurement; 0 skips the store benchmark",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for latest.json, .md, .png")
    parser.add_argument("--quick", action="store_true", help="500 messages, 1 round, 20k memory check")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.messages = arguments.messages or 500
        arguments.rounds = 1
        arguments.memory_messages = min(arguments.memory_messages, 20_000)
        arguments.memory_every = min(arguments.memory_every, 5_000)
        arguments.store_spans = min(arguments.store_spans, 100_000)
    return arguments


def _print_progress(outcome: Outcome) -> None:
    if outcome.result is None:
        line = f"FAILED: {outcome.error}"
    else:
        r = outcome.result
        line = (
            f"enqueue {r['enqueue_rate']:>7,.0f}/s  process {r['process_rate']:>7,.0f}/s  "
            f"exported {outcome.exported_kib:>8,.0f} KiB"
        )
    print(
        f"round {outcome.round} {outcome.broker:<8} {outcome.variant:<22} {line}  ({outcome.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _memory_check(arguments: argparse.Namespace) -> dict | None:
    if arguments.memory_messages <= 0:
        return None
    with SinkProcess() as sink:
        endpoints = Endpoints(sink=sink.endpoint, unreachable=closed_port_endpoint())
        spec = MemorySpec(
            variant=arguments.memory_variant,
            messages=arguments.memory_messages,
            every=arguments.memory_every,
            threads=arguments.threads,
            sink=endpoints.sink,
            unreachable=endpoints.unreachable,
        )
        env = trial_environment(get_variant(spec.variant).environment(endpoints))
        print(
            f"memory check: {spec.variant}, {spec.messages:,} messages on redis", file=sys.stderr, flush=True
        )
        result, error = run_trial_process("benchmarks.memory", spec, env)
    if result is None:
        print(f"memory check FAILED: {error}", file=sys.stderr)
        return {"error": error}
    return summarize_memory(result)


def _store_bench(arguments: argparse.Namespace) -> dict | None:
    if arguments.store_spans <= 0:
        return None
    print(
        f"dashboard store: ingest, then {arguments.store_spans:,} stored spans", file=sys.stderr, flush=True
    )
    return run_store_bench(
        stored_spans=arguments.store_spans, ingest_spans=min(200_000, arguments.store_spans)
    )


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    brokers = [b for b in arguments.brokers.split(",") if b]
    variants = [BASELINE, *(v for v in arguments.variants.split(",") if v and v != BASELINE)]
    for name in variants:
        get_variant(name)
    messages = {b: arguments.messages or DEFAULT_MESSAGES[b] for b in brokers}
    started = time.perf_counter()

    def write_partial(done: int, so_far: list[Outcome]) -> None:
        # A long run on a loaded machine still leaves the rounds it finished.
        if done < arguments.rounds:
            partial = summarize(so_far)
            arguments.output.mkdir(parents=True, exist_ok=True)
            (arguments.output / "partial.md").write_text(
                f"{done} of {arguments.rounds} rounds\n\n"
                + markdown_tables(partial, messages, done)
                + "\n"
                + extra_markdown(partial, messages, done)
            )

    outcomes = run_rounds(
        brokers=brokers,
        variants=variants,
        rounds=arguments.rounds,
        messages=messages,
        threads=arguments.threads,
        report=_print_progress,
        round_done=write_partial,
    )
    summary = summarize(outcomes)
    checks = check_targets(summary)
    memory = _memory_check(arguments)
    store = _store_bench(arguments)

    print_tables(summary, messages, arguments.rounds)
    extra = extra_markdown(summary, messages, arguments.rounds)
    print("\n" + extra)
    print(format_checks(checks))
    if memory and "samples" in memory:
        print("\nMemory check (" + memory["spec"]["variant"] + ", redis)\n" + format_memory(memory))
    if store is not None:
        print("\n" + format_store_bench(store))
    elapsed = time.perf_counter() - started
    print(f"\nTotal {elapsed / 60:.1f} min.")

    arguments.output.mkdir(parents=True, exist_ok=True)
    settings = {
        "brokers": brokers,
        "variants": variants,
        "rounds": arguments.rounds,
        "messages": messages,
        "threads": arguments.threads,
        "memory_messages": arguments.memory_messages,
        "elapsed_seconds": round(elapsed, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(
        arguments.output / "latest.json",
        summary=summary,
        outcomes=outcomes,
        checks=checks,
        settings=settings,
        memory=memory,
    )
    markdown = markdown_tables(summary, messages, arguments.rounds) + "\n" + extra
    if store is not None:
        (arguments.output / "store.json").write_text(json.dumps(store, indent=2))
        markdown += "\n```\n" + format_store_bench(store) + "\n```\n"
    (arguments.output / "latest.md").write_text(markdown)
    (arguments.output / "partial.md").unlink(missing_ok=True)
    write_chart(arguments.output / "ratios.png", summary)
    print(f"Wrote {arguments.output}/latest.json, latest.md, ratios.png")
    return 0 if all(o.result is not None for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
