"""What the Dramatiq and Celery instrumentations share, written once.

- :mod:`tasklens.messaging.tally`: per-thread counters summed when metrics are read.
- :mod:`tasklens.messaging.propagation`: the trace context into and out of a message's carrier.
- :mod:`tasklens.messaging.arguments`: ``capture_args``, redacted and bounded.
- :mod:`tasklens.messaging.errors`: how a failure is named and recorded on a span.
- :mod:`tasklens.messaging.log_fields`: the task being run, on every log record made inside it.

Nothing here imports a task library; ``tasklens.dramatiq`` and ``tasklens.celery`` import it.
"""
