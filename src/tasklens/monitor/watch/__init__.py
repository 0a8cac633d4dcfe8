"""Broker watch: what the monitor reads from the broker, and what it makes of it.

- ``inspectors``: one broker inspector shared by the monitor's threads.
- ``snapshots``: bounded, cached broker reads (``SnapshotReader``).
- ``health``: the healthy, degraded or unhealthy verdict on a snapshot.
- ``gauges``: the broker gauges, and the OpenTelemetry-to-Prometheus name translation.
- ``otlp_export``: the same gauges over OTLP.

It imports the store at most, never the HTTP surface nor the OTLP ingest.
"""
