"""Online statistics for detectors: exponentially weighted mean and variance, interval buckets,
leaky buckets and exact event windows.

Every structure is an ``Entry`` subclass with ``__slots__`` so a detector's per-key state is one
small object in a ``BoundedTable``, and every update is O(1) (or O(capacity) for a handful of
floats). Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

import math
from array import array

from wafproxy.detect.bounded import Entry


def alpha_for_span(span: float) -> float:
    """The EWMA weight whose centre of mass is ``span`` samples back (pandas' ``span``)."""
    return 2.0 / (span + 1.0)


class Ewma(Entry):
    """Mean and variance of a stream, recent samples weighted more.

    The first samples use weight 1/(n+1) (an exact running mean and population variance) until
    that falls below ``alpha``: a fixed alpha from the start would pin the baseline on the first
    sample and make the warm-up count meaningless.
    """

    __slots__ = ("mean", "n", "var")

    def __init__(self) -> None:
        super().__init__()
        self.mean = 0.0
        self.var = 0.0
        self.n = 0

    def add(self, sample: float, alpha: float) -> None:
        weight = max(alpha, 1.0 / (self.n + 1))
        diff = sample - self.mean
        step = weight * diff
        self.mean += step
        self.var = (1.0 - weight) * (self.var + diff * step)
        self.n += 1

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var > 0.0 else 0.0

    def zscore(self, sample: float) -> float:
        """Standard deviations above the mean (inf when the baseline never varied)."""
        diff = sample - self.mean
        std = self.std
        if std > 0.0:
            return diff / std
        return math.inf if diff > 0 else 0.0

    def threshold(self, sigma: float, min_ratio: float, minimum: float) -> float:
        """The smallest sample judged anomalous: ``sigma`` deviations above the mean, at least
        ``min_ratio`` times the mean, and never under ``minimum`` (quiet keys stay quiet)."""
        return max(self.mean + sigma * self.std, self.mean * min_ratio, minimum)


class IntervalSeries(Ewma):
    """A sum per interval (``bucket`` = floor(time / interval)); each finished interval's sum is
    one sample of the baseline."""

    __slots__ = ("bucket", "count")

    def __init__(self, bucket: int = 0) -> None:
        super().__init__()
        self.bucket = bucket
        self.count = 0.0

    def advance(self, bucket: int, alpha: float, fill_gaps: int, cap: float = math.inf) -> int:
        """Close the current interval if ``bucket`` is a later one: its sum (at most ``cap``, so
        an attack does not teach the baseline that attacks are normal) becomes a sample, then up
        to ``fill_gaps`` empty intervals in between count as zeros. Returns how many samples
        were added (0: still the same interval, or a late observation)."""
        if bucket <= self.bucket:
            return 0
        self.add(min(self.count, cap), alpha)
        zeros = min(bucket - self.bucket - 1, fill_gaps)
        for _ in range(zeros):
            self.add(0.0, alpha)
        self.bucket = bucket
        self.count = 0.0
        return 1 + zeros


class LeakyBucket(Entry):
    """A level that rises by each event's weight and drains at ``rate`` per second: above
    ``capacity`` means more than capacity events in a burst, or a sustained rate above
    rate."""

    __slots__ = ("last", "level")

    def __init__(self) -> None:
        super().__init__()
        self.level = 0.0
        self.last = 0.0

    def drain(self, now: float, rate: float) -> float:
        if now > self.last:
            self.level = max(0.0, self.level - (now - self.last) * rate)
            self.last = now
        return self.level

    def fill(self, now: float, rate: float, amount: float = 1.0) -> float:
        self.drain(now, rate)
        self.level += amount
        return self.level


class DistinctBucket(LeakyBucket):
    """A leaky bucket that only rises for items it has not seen recently (the last ``memory``
    distinct item hashes): ten requests for one missing favicon are one path, not ten."""

    __slots__ = ("recent",)

    def __init__(self) -> None:
        super().__init__()
        self.recent = array("q")

    def offer(self, now: float, item: str, rate: float, memory: int) -> bool:
        """True when the item is new (the level rose)."""
        key = hash(item)
        self.drain(now, rate)
        if key in self.recent:
            return False
        if len(self.recent) >= memory:
            del self.recent[0]
        self.recent.append(key)
        self.level += 1.0
        return True


class EventWindow(Entry):
    """Exact "at least N events within W seconds": the times of the last N events."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        super().__init__()
        self.times = array("d")

    def add(self, now: float, window: float, keep: int) -> int:
        """Record an event; the number of recorded events within ``window`` (at most ``keep``)."""
        times = self.times
        if len(times) >= keep:
            del times[: len(times) - keep + 1]
        times.append(now)
        cutoff = now - window
        drop = 0
        while drop < len(times) and times[drop] < cutoff:
            drop += 1
        if drop:
            del times[:drop]
        return len(times)
