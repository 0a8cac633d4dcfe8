"""The Celery part of ``make bench``: the same method as the Dramatiq tables, on Celery workers.

``python -m benchmarks.celery`` runs it alone; ``python -m benchmarks`` runs it after the
Dramatiq tables (``--library`` picks one of the two). :mod:`benchmarks.celery.suite` says what a
run measures.
"""
