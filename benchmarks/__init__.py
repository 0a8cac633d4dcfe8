"""What tasklens costs a Dramatiq worker, side by side with the peers.

``python -m benchmarks`` (or ``make bench``) runs every variant against Redis and RabbitMQ, each
trial in a fresh process, interleaved for several rounds, and prints one table per broker with
the median throughput, CPU and memory of each variant and its ratio to the uninstrumented
baseline of the same round. See ``benchmarks/NOTES.md`` for the method and the findings.
"""
