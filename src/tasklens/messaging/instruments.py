"""The instruments every task library's instrumentation records into, set up one way.

``create_instruments`` gives the tracer, the meter, the sent and consumed counters (per-thread
tallies, ``tasklens.messaging.tally``), the in-flight count derived from them, and the three
per-thread histograms (send duration, process duration, queue wait;
``tasklens.messaging.histogram``). Each library adds its own counters on ``meter``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tasklens import semconv
from tasklens.messaging.histogram import HistogramRecorder, create_histogram
from tasklens.messaging.tally import Tally, in_flight_counter, observed_counter
from tasklens.semconv import MetricSpec
from tasklens.version import __version__

__all__ = ["Instruments", "create_instruments"]


@dataclass(frozen=True)
class Instruments:
    """What an instrumentation records into.

    Parameters:
      tracer(trace.Tracer): Its tracer.
      meter(metrics.Meter): Its meter, for the library's own counters.
      sent(Tally): Messages sent.
      consumed(Tally): Messages consumed (processed, whatever the outcome).
      started(Tally): Messages whose processing started; in flight is started minus consumed.
      send_duration(HistogramRecorder): Send (publish) durations, in seconds.
      process_duration(HistogramRecorder): Processing durations, in seconds.
      queue_wait(HistogramRecorder): Time from ready to processing, in seconds.
    """

    tracer: trace.Tracer
    meter: metrics.Meter
    sent: Tally
    consumed: Tally
    started: Tally
    send_duration: HistogramRecorder
    process_duration: HistogramRecorder
    queue_wait: HistogramRecorder


def create_instruments(
    scope_name: str,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
    *,
    in_flight: MetricSpec,
    queue_wait: MetricSpec,
) -> Instruments:
    """The instruments of the instrumentation scope ``scope_name``.

    Parameters:
      scope_name(str): The instrumentation scope's name.
      tracer_provider(TracerProvider|None): Where spans go; the global provider when ``None``.
      meter_provider(MeterProvider|None): Where metrics go; the global provider when ``None``.
      in_flight(MetricSpec): The library's in-flight metric.
      queue_wait(MetricSpec): The library's queue-wait histogram.
    """
    tracer = trace.get_tracer(scope_name, __version__, tracer_provider, schema_url=semconv.SCHEMA_URL)
    meter = metrics.get_meter(scope_name, __version__, meter_provider, schema_url=semconv.SCHEMA_URL)
    sent = observed_counter(meter, semconv.SENT_MESSAGES)
    consumed = observed_counter(meter, semconv.CONSUMED_MESSAGES)
    scope = InstrumentationScope(scope_name, __version__, semconv.SCHEMA_URL)
    return Instruments(
        tracer=tracer,
        meter=meter,
        sent=sent,
        consumed=consumed,
        started=in_flight_counter(meter, in_flight, consumed),
        send_duration=create_histogram(meter, semconv.CLIENT_OPERATION_DURATION, scope, meter_provider),
        process_duration=create_histogram(meter, semconv.PROCESS_DURATION, scope, meter_provider),
        queue_wait=create_histogram(meter, queue_wait, scope, meter_provider),
    )
