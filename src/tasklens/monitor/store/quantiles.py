"""Durations in log-scale bins, and percentiles estimated from bin counts.

A run's duration is counted in bin ``floor(log(duration) / log(BIN_GROWTH))``; a bin's
representative value is its geometric middle, so an estimated percentile is within about 4.5% of
the exact one, however many runs are counted and however they are merged across minutes, actors
and queues.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["BIN_GROWTH", "bin_value", "duration_bin", "quantile", "quantiles"]

#: Ratio between the upper and lower edges of a bin (an eighth of an octave).
BIN_GROWTH = 2 ** (1 / 8)
#: Shortest duration told apart from the next one up, in seconds.
MIN_DURATION = 1e-6

_LOG_GROWTH = math.log(BIN_GROWTH)


def duration_bin(duration: float) -> int:
    """The bin a duration falls in.

    Parameters:
      duration(float): A duration in seconds; anything below ``MIN_DURATION`` counts as it.
    """
    return math.floor(math.log(max(duration, MIN_DURATION)) / _LOG_GROWTH)


def bin_value(bin_: int) -> float:
    """The duration a bin stands for (its geometric middle), in seconds.

    Parameters:
      bin_(int): A bin, as returned by ``duration_bin``.
    """
    return float(BIN_GROWTH ** (bin_ + 0.5))


def quantile(counts: dict[int, int], q: float) -> float | None:
    """The ``q``-quantile of the durations counted in ``counts``, in seconds.

    Parameters:
      counts(dict[int, int]): How many durations fell in each bin.
      q(float): The quantile, between 0 and 1 (0.95 for the 95th percentile).
    """
    return quantiles(counts, (q,))[0]


def quantiles(counts: dict[int, int], qs: Iterable[float]) -> list[float | None]:
    """Several quantiles of the durations counted in ``counts`` at once, in seconds.

    ``None`` for each when nothing was counted.

    Parameters:
      counts(dict[int, int]): How many durations fell in each bin.
      qs(Iterable[float]): Quantiles between 0 and 1, in any order.
    """
    wanted = list(qs)
    total = sum(counts.values())
    if total <= 0:
        return [None] * len(wanted)
    bins = sorted(counts)
    results: list[float | None] = []
    for q in wanted:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bin_ in bins:
            seen += counts[bin_]
            if seen >= rank:
                results.append(bin_value(bin_))
                break
    return results
