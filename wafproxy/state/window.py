"""Sliding-window counters for rate-based rules: per key, per-second buckets over the window.

A key's counts are one ``array('I')``: ``[total, second, count, second, count, ...]`` with only
the seconds that saw requests, oldest first. The window at second ``s`` is the buckets of
seconds ``s - window + 1 .. s``, so the count is exact to within one second (AWS WAF looks
only about every 10 s). A key costs one array object in an OrderedDict kept in last-use order:
idle keys sit at the front and are dropped once their last bucket has left the window, and a
global cap evicts the least recently used key. See docs/rate-limits.md for measured sizes.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Buckets: TypeAlias = array[int]
    """array('I'): [total, second, count, second, count, ...]"""
else:
    Buckets = array
EXPIRE_PER_HIT = 2
"""Idle keys dropped from the front on each hit: keeps memory flat without a sweeper."""


def window_total(buckets: Buckets, second: int, window: int) -> int:
    """Drop the buckets that left the window ending at ``second``; the count that remains."""
    low = second - window
    if len(buckets) > 1 and buckets[1] <= low:
        total = buckets[0]
        end = 1
        size = len(buckets)
        while end < size and buckets[end] <= low:
            total -= buckets[end + 1]
            end += 2
        del buckets[1:end]
        buckets[0] = total
    return int(buckets[0])


def add_hit(buckets: Buckets, second: int, window: int, hits: int = 1) -> int:
    total = window_total(buckets, second, window)
    if len(buckets) > 1 and buckets[-2] >= second:  # same second (or a clock step back)
        buckets[-1] += hits
    else:
        buckets.append(second)
        buckets.append(hits)
    buckets[0] = total + hits
    return total + hits


def last_second(buckets: Buckets) -> int:
    return int(buckets[-2]) if len(buckets) > 1 else -(2**62)


@dataclass
class RateTable:
    """The keys of one rate-based rule."""

    window: int
    keys: OrderedDict[str, Buckets] = field(default_factory=OrderedDict)
    over: dict[str, int] = field(default_factory=dict)
    """Keys seen over the limit, with the second they last were (the managed-keys listing)."""

    def hit(self, key: str, second: int, hits: int = 1) -> tuple[int, bool]:
        """(count in the window including these hits, whether the key is new)."""
        keys = self.keys
        buckets = keys.get(key)
        if buckets is None:
            keys[key] = array("I", (hits, second, hits))
            return hits, True
        keys.move_to_end(key)
        return add_hit(buckets, second, self.window, hits), False

    def count(self, key: str, second: int) -> int:
        buckets = self.keys.get(key)
        return 0 if buckets is None else window_total(buckets, second, self.window)

    def expire(self, second: int, budget: int) -> int:
        """Drop up to ``budget`` idle keys (no request within the window); how many went."""
        keys = self.keys
        low = second - self.window
        dropped = 0
        while keys and dropped < budget:
            key, buckets = next(iter(keys.items()))
            if last_second(buckets) > low:
                break
            del keys[key]
            self.over.pop(key, None)
            dropped += 1
        return dropped

    def oldest_use(self) -> int | None:
        if not self.keys:
            return None
        return last_second(next(iter(self.keys.values())))

    def evict_oldest(self) -> None:
        key, _ = self.keys.popitem(last=False)
        self.over.pop(key, None)

    def over_limit(self, second: int, limit: int) -> Iterator[tuple[str, int]]:
        """The keys over ``limit`` now, with their counts (stale entries are forgotten)."""
        for key in list(self.over):
            count = self.count(key, second)
            if count > limit:
                yield key, count
            elif second - self.over[key] >= self.window:
                del self.over[key]


class RateCounters:
    """Every rule's table, with one cap on the number of keys across all of them."""

    def __init__(self, max_keys: int, on_evict: Callable[[int], None] | None = None) -> None:
        self.max_keys = max_keys
        self.tables: dict[str, RateTable] = {}
        self.size = 0
        self._on_evict = on_evict

    def table(self, rule_id: str, window: int) -> RateTable:
        table = self.tables.get(rule_id)
        if table is None:
            table = self.tables[rule_id] = RateTable(window)
        elif table.window != window:  # a reload changed the window: keep the counts
            table.window = window
        return table

    def hit(self, rule_id: str, window: int, key: str, second: int, hits: int = 1) -> int:
        table = self.table(rule_id, window)
        count, new = table.hit(key, second, hits)
        if new:
            self.size += 1
            self.size -= table.expire(second, EXPIRE_PER_HIT)
            if self.size > self.max_keys:
                self._evict()
        return count

    def _evict(self) -> None:
        """The least recently used key of all tables goes (counted: it is a lost count)."""
        evicted = 0
        while self.size > self.max_keys:
            candidates = [(t.oldest_use(), rid) for rid, t in self.tables.items() if t.keys]
            _, rule_id = min(candidates, key=lambda c: c[0] if c[0] is not None else 0)
            self.tables[rule_id].evict_oldest()
            self.size -= 1
            evicted += 1
        if self._on_evict is not None:
            self._on_evict(evicted)

    def sweep(self, second: int, budget: int = 10_000) -> int:
        """Drop idle keys of every table (the periodic sweeper, for rules gone quiet)."""
        dropped = 0
        for rule_id, table in list(self.tables.items()):
            dropped += table.expire(second, budget - dropped)
            if not table.keys and not table.over:
                del self.tables[rule_id]
            if dropped >= budget:
                break
        self.size -= dropped
        return dropped
