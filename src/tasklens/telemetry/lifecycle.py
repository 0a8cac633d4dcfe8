"""The SDK's providers over the life of worker processes: through forks, and flushed at exit.

Dramatiq's CLI forks its worker processes and ends each one with ``os._exit()``, after its
multiprocessing finalizers but without ``atexit`` handlers. Three things go wrong with providers
built before such a fork, as ``opentelemetry-instrument`` builds them in the CLI's main process
(or ``tasklens.setup()`` in any process that forks later):

- A periodic metric reader keeps the lock it holds while exporting, and the provider the one
  it holds while collecting. Fork while the parent exports (every ``OTEL_METRIC_EXPORT_INTERVAL``)
  and the child inherits them held by a thread it does not have: its metric exports, and its
  flush at shutdown, then wait forever. Here a fork first waits for the export under way and
  holds those locks across it, releasing them on both sides afterwards.
- The exporters' pooled HTTP connections to the collector are shared with the parent: the
  child closes its copies and opens its own.
- Nothing shuts the providers down when the worker process ends: the buffered logs are lost,
  and an export under way is cut off. Here every process shuts them down on its way out,
  spans first and metrics last, once, whether it exits through ``atexit`` or through
  multiprocessing.

:func:`prepare_worker_processes` does all this, and makes the process health metrics measure each
child rather than its parent (:func:`~tasklens.telemetry.process_metrics.follow_forks`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from tasklens.telemetry.process_metrics import follow_forks

__all__ = ["prepare_worker_processes", "shutdown", "shutdown_prepared"]

logger = logging.getLogger(__name__)

#: How long a fork may wait for a metric export under way to finish, in seconds. Past it the
#: fork goes on without that lock: the parent never hangs, though that child may not export.
FORK_WAIT_S = 15.0
#: Priority of the exit shutdown among multiprocessing's finalizers (higher runs earlier).
EXIT_FINALIZER_PRIORITY = 10
#: Shutdown order: spans first, metrics last, so that the final collection counts everything.
SHUTDOWN_ORDER = (TracerProvider, LoggerProvider, MeterProvider)

_lock = threading.Lock()
#: Providers to shut down when the process exits, and those already shut down, by identity.
_registered: list[Any] = []
_shut_down: set[int] = set()
#: Meter providers whose locks a fork holds, and the locks held by the fork under way.
_guarded: list[MeterProvider] = []
_held: list[Any] = []
_hooks_installed = False


class _ProcessExit:
    """What multiprocessing calls back in each child it forks (it needs an object to refer to)."""

    def register_finalizer(self) -> None:
        # multiprocessing forgets the parent's finalizers in each child: register again there.
        multiprocessing.util.Finalize(None, _shutdown_registered, exitpriority=EXIT_FINALIZER_PRIORITY)


_process_exit = _ProcessExit()


def prepare_worker_processes(
    tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None
) -> None:
    """Make these providers survive forks and shut down when any process using them exits.

    Each argument left None means the global provider; providers that are not the SDK's are
    ignored. Calling it again with the same providers does nothing.

    Parameters:
      tracer_provider(TracerProvider): flushed when a process exits.
      meter_provider(MeterProvider): made fork safe, and flushed when a process exits.
      logger_provider(LoggerProvider): flushed when a process exits.
    """
    candidates = (
        tracer_provider if tracer_provider is not None else trace.get_tracer_provider(),
        meter_provider if meter_provider is not None else metrics.get_meter_provider(),
        logger_provider if logger_provider is not None else get_logger_provider(),
    )
    providers = [provider for provider in candidates if isinstance(provider, SHUTDOWN_ORDER)]
    with _lock:
        for provider in providers:
            if any(provider is known for known in _registered):
                continue
            _registered.append(provider)
            if isinstance(provider, MeterProvider):
                _guarded.append(provider)
    if any(isinstance(provider, MeterProvider) for provider in providers):
        follow_forks()
    _install_hooks()


def shutdown(providers: Iterable[Any]) -> None:
    """Shut each provider down, spans first and metrics last, at most once per process."""
    for provider in sorted(providers, key=_rank):
        with _lock:
            if id(provider) in _shut_down:
                continue
            _shut_down.add(id(provider))
        try:
            provider.shutdown()
        except Exception:
            logger.exception("Could not shut %s down.", type(provider).__name__)


def shutdown_prepared() -> None:
    """Shut down every provider :func:`prepare_worker_processes` was given, now.

    For worker processes that end through a path that runs neither ``atexit`` handlers nor
    multiprocessing's finalizers: the task library's own exit hook calls this just before the
    process ends. Providers already shut down are skipped.
    """
    _shutdown_registered()


def _rank(provider: Any) -> int:
    for rank, kind in enumerate(SHUTDOWN_ORDER):
        if isinstance(provider, kind):
            return rank
    return len(SHUTDOWN_ORDER)


def _shutdown_registered() -> None:
    with _lock:
        providers = list(_registered)
    shutdown(providers)


def _install_hooks() -> None:
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_shutdown_registered)
    _process_exit.register_finalizer()
    multiprocessing.util.register_after_fork(_process_exit, _ProcessExit.register_finalizer)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork_in_child
        )


def _fork_locks() -> Iterator[Any]:
    """The locks a fork must not split, in the order the SDK takes them: collection, export."""
    for provider in list(_guarded):
        # Private attributes of the SDK: the locks it does not renew in a forked child.
        lock = getattr(getattr(provider, "_measurement_consumer", None), "_lock", None)
        if lock is not None:
            yield lock
        for reader in getattr(provider, "_metric_readers", ()):
            lock = getattr(reader, "_export_lock", None)
            if lock is not None:
                yield lock


def _before_fork() -> None:
    for lock in _fork_locks():
        try:
            acquired = lock.acquire(timeout=FORK_WAIT_S)
        except Exception:  # never stop a fork
            acquired = False
        if acquired:
            _held.append(lock)
        else:
            logger.warning("Forking while metrics are being exported; the child may not export metrics.")


def _after_fork() -> None:
    while _held:
        lock = _held.pop()
        with contextlib.suppress(RuntimeError):  # released already: nothing to do
            lock.release()


def _after_fork_in_child() -> None:
    global _lock
    # A fork while another thread held this module's lock would leave it held in the child.
    _lock = threading.Lock()
    _after_fork()
    for exporter in _exporters():
        _drop_inherited_connections(exporter)


def _exporters() -> Iterator[Any]:
    """The exporters behind the registered providers (private attributes of the SDK)."""
    for provider in list(_registered):
        for reader in getattr(provider, "_metric_readers", ()):
            yield getattr(reader, "_exporter", None)
        multi = getattr(provider, "_active_span_processor", None) or getattr(
            provider, "_multi_log_record_processor", None
        )
        processors = getattr(multi, "_span_processors", None) or getattr(
            multi, "_log_record_processors", None
        )
        for processor in processors or ():
            batch = getattr(processor, "_batch_processor", processor)
            yield getattr(batch, "_exporter", None) or getattr(processor, "span_exporter", None)


def _drop_inherited_connections(exporter: Any) -> None:
    """Forget the HTTP connections an exporter inherited from the parent.

    Parent and child would otherwise send on the same pooled keep-alive connection and read
    each other's responses. Closing them here only closes the child's copies of the sockets.
    """
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    target = transport if transport is not None else getattr(exporter, "_session", None)
    close = getattr(target, "close", None)
    if not callable(close):
        return
    try:
        close()
    except Exception:
        logger.debug("Could not drop the connections %r inherited.", exporter, exc_info=True)
