"""Tally: per-thread counts that add up exactly, survive their threads, and reset in a forked child."""

from __future__ import annotations

import os
import threading

from tasklens.messaging.tally import Tally


def test_concurrent_adds_lose_nothing() -> None:
    tally = Tally("test")
    threads_count, adds = 8, 20_000
    start = threading.Barrier(threads_count)

    def work() -> None:
        start.wait()
        for n in range(adds):
            tally.add("even" if n % 2 == 0 else "odd", {"parity": "x"})

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally.totals() == {"even": threads_count * adds // 2, "odd": threads_count * adds // 2}
    # Finished threads were folded away; their counts stay.
    assert tally.totals() == {"even": threads_count * adds // 2, "odd": threads_count * adds // 2}


def test_observations_carry_the_attributes_given_with_the_key() -> None:
    tally = Tally("test")
    tally.add(("q", None), {"queue": "q"})
    tally.add(("q", "ValueError"), {"queue": "q", "error.type": "ValueError"}, 2)
    tally.add(("q", None), {"queue": "ignored, the first attributes stay"}, -1)
    observed = {(o.value, tuple(sorted(o.attributes.items()))) for o in tally.observe(None)}  # type: ignore[arg-type]
    assert observed == {(0, (("queue", "q"),)), (2, (("error.type", "ValueError"), ("queue", "q")))}


def test_a_forked_child_starts_from_zero() -> None:
    tally = Tally("test")
    tally.add("k", {})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        tally.add("k", {})
        os.write(write, str(tally.totals()).encode())
        os._exit(0)
    os.close(write)
    child_totals = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert child_totals == "{'k': 1}"
    assert tally.totals() == {"k": 1}


def test_keys_with_equal_attributes_are_reported_as_one_series() -> None:
    tally = Tally("test")
    tally.add("first", {"queue": "q"}, 2)
    tally.add("second", {"queue": "q"}, 3)
    [observation] = tally.observe(None)  # type: ignore[arg-type]
    assert observation.value == 5 and dict(observation.attributes) == {"queue": "q"}
