"""The monitor's HTTP surface: the ASGI app (``create_app``), its routes and its guards.

``MonitorState`` (``state``) is what every route depends on; ``auth`` says who may read and who
may act. The routes call into the broker watch, the OTLP ingest, the store and the alerts; none of
those imports anything here.
"""
