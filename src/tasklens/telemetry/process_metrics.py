"""Health metrics of the current process: CPU, memory, threads, file descriptors and GC.

They come from opentelemetry-instrumentation-system-metrics, limited to the process-level
metrics: host-wide ``system.*`` metrics would be reported once per worker process, N times over
for one host, and belong to a host agent. ``OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS``
(comma-separated glob patterns) removes metrics from the list, as it does for the upstream
instrumentation.
"""

from __future__ import annotations

import fnmatch
import logging
import os

from opentelemetry.metrics import MeterProvider

__all__ = ["PROCESS_METRICS", "follow_forks", "start_process_metrics"]

logger = logging.getLogger(__name__)

#: The metrics reported, in the instrumentation's config format (metric name -> label values).
PROCESS_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
}

#: The environment variable the upstream instrumentation reads for exclusions.
EXCLUDED_METRICS_ENV = "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS"

_fork_hook_registered = False


def start_process_metrics(meter_provider: MeterProvider) -> bool:
    """Report this process's health metrics through ``meter_provider``.

    Returns False, doing nothing, when the process metrics are already being reported (by an
    earlier call, or by ``opentelemetry-instrument``).

    Parameters:
      meter_provider(MeterProvider): where the measurements go.
    """
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    # The instrumentor is a singleton whose constructor resets its state: look before building.
    existing = SystemMetricsInstrumentor._instance
    if existing is not None and existing.is_instrumented_by_opentelemetry:
        return False
    instrumentor = SystemMetricsInstrumentor(config=_config(os.environ.get(EXCLUDED_METRICS_ENV, "")))
    instrumentor.instrument(meter_provider=meter_provider)
    follow_forks()
    return True


def _config(excluded: str) -> dict[str, list[str] | None]:
    patterns = [pattern.strip() for pattern in excluded.split(",") if pattern.strip()]
    return {
        name: labels
        for name, labels in PROCESS_METRICS.items()
        if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
    }


def follow_forks() -> None:
    """Make a forked child measure itself, not its parent, whoever started the process metrics.

    The upstream instrumentation keeps a handle on the process that started it, so under
    ``opentelemetry-instrument`` (which starts it in the ``dramatiq`` CLI's main process) every
    worker process would report its parent's CPU and memory. Calling this once, before the fork,
    fixes that. Calling it again does nothing.
    """
    global _fork_hook_registered
    if _fork_hook_registered or not hasattr(os, "register_at_fork"):
        return
    _fork_hook_registered = True
    os.register_at_fork(after_in_child=_measure_this_process)


def _measure_this_process() -> None:
    import psutil
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    instrumentor = SystemMetricsInstrumentor._instance
    # The instrumentation keeps the psutil handle of the process that started it.
    if instrumentor is not None and hasattr(instrumentor, "_proc"):
        instrumentor._proc = psutil.Process(os.getpid())
