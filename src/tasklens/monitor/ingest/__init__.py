"""OTLP ingest: what workers export to the monitor, and where it goes.

- ``receiver``: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs``.
- ``attribute_limits``: what is dropped from oversized attributes.
- ``received_metrics``: task metrics summed across processes, for ``/metrics``.
- ``forwarder``: sends what is received upstream.
- ``service``: the store, the received metrics, the receiver and the forwarder, opened and
  closed together (``TelemetryService``).

It imports the store and the broker watch at most, never the HTTP surface.
"""
