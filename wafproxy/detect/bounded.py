"""A key -> entry table bounded by size (least recently used out first) and, optionally, by idle
time, both judged on the caller's clock (``Observation.time``).

The benchmark feeds a million distinct clients: every per-key table a detector holds must stay
at ``max_keys`` whatever the traffic, so eviction is part of every insertion, not a periodic
sweep. Entries are ``__slots__`` objects that carry their own ``touched`` time, which keeps
an entry to one small object (no wrapper tuple per key) and lets the idle check look only at
the oldest entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

EXPIRE_PER_CALL = 4
"""Idle entries dropped per insertion at most: expiry is amortised, never a stall."""


class Entry:
    __slots__ = ("touched",)

    def __init__(self) -> None:
        self.touched = 0.0


E = TypeVar("E", bound=Entry)


class BoundedTable(Generic[E]):
    """LRU by touch; ``ttl`` (seconds, or None) forgets entries not touched for that long."""

    __slots__ = ("_items", "evicted", "expired", "max_keys", "ttl")

    def __init__(self, max_keys: int, ttl: float | None = None) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._items: OrderedDict[str, E] = OrderedDict()
        self.max_keys = max_keys
        self.ttl = ttl
        self.evicted = 0
        """Entries pushed out by size (a busy table: raise max_keys or accept forgetting)."""
        self.expired = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def get(self, key: str, now: float) -> E | None:
        """The live entry, touched (now the most recent); None if absent or idle too long."""
        entry = self._items.get(key)
        if entry is None:
            return None
        if self.ttl is not None and now - entry.touched > self.ttl:
            del self._items[key]
            self.expired += 1
            return None
        entry.touched = now
        self._items.move_to_end(key)
        return entry

    def peek(self, key: str) -> E | None:
        """The entry without touching it (tests, reports)."""
        return self._items.get(key)

    def put(self, key: str, entry: E, now: float) -> E:
        entry.touched = now
        self._items[key] = entry
        self._items.move_to_end(key)
        self._trim(now)
        return entry

    def get_or_put(self, key: str, now: float, make: Callable[[], E]) -> E:
        entry = self.get(key, now)
        return entry if entry is not None else self.put(key, make(), now)

    def pop(self, key: str) -> E | None:
        return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def _trim(self, now: float) -> None:
        items = self._items
        while len(items) > self.max_keys:
            items.popitem(last=False)
            self.evicted += 1
        if self.ttl is None:
            return
        for _ in range(EXPIRE_PER_CALL):
            if not items:
                return
            oldest = next(iter(items.values()))
            if now - oldest.touched <= self.ttl:
                return
            items.popitem(last=False)
            self.expired += 1
