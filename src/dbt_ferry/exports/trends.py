"""The rules that read a history, each in one place: median and p95, a model slower than usual, a flaky test.

The history report and the regression check both use them, so a model flagged in one is flagged in the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbt_ferry.core.results import FAILED_STATUSES, WARN_STATUSES

#: Resource types whose durations are compared with their own past: what takes time to build.
TIMED_TYPES = frozenset({"model", "snapshot"})
TEST_TYPES = frozenset({"test", "unit_test"})
#: A duration is compared with a median only when that many earlier durations exist.
MIN_EARLIER_RUNS = 3


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, interpolated linearly between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Slowdown:
    """A duration far above the median of the earlier ones."""

    seconds: float
    median: float
    runs: int  # how many earlier durations the median is over

    @property
    def factor(self) -> float:
        return self.seconds / self.median if self.median > 0 else math.inf


def slowdown(durations: Sequence[float], *, factor: float, runs: int, min_seconds: float) -> Slowdown | None:
    """The last of ``durations`` (oldest first) against the median of up to ``runs`` before it.

    A slowdown when it is more than ``factor`` times that median, at least ``min_seconds`` long, and at least
    :data:`MIN_EARLIER_RUNS` earlier durations exist.
    """
    if len(durations) < MIN_EARLIER_RUNS + 1:
        return None
    last, earlier = durations[-1], durations[-1 - runs : -1]
    usual = median(earlier)
    if last < min_seconds or last <= factor * usual:
        return None
    return Slowdown(seconds=last, median=usual, runs=len(earlier))


def passed(status: str | None) -> bool | None:
    """True for a pass, False for a failure (``warn`` included: the test found rows), None for anything else."""
    if status in ("pass", "success"):
        return True
    if status in FAILED_STATUSES or status in WARN_STATUSES:
        return False
    return None


def flips(statuses: Iterable[str | None]) -> int:
    """How often a test went from passing to failing or back, over its results oldest first (skips ignored)."""
    count, previous = 0, None
    for status in statuses:
        outcome = passed(status)
        if outcome is None:
            continue
        if previous is not None and outcome != previous:
            count += 1
        previous = outcome
    return count


#: A test is flaky when it changed between pass and fail at least this often (fail, pass, fail or the reverse):
#: one change is a test that broke, or was fixed.
FLAKY_FLIPS = 2


def is_flaky(statuses: Iterable[str | None]) -> bool:
    return flips(statuses) >= FLAKY_FLIPS
