"""Bounded memo tables for pure per-value work that repeats from request to request.

Header values (Accept, User-Agent), a session's cookies and a form's fields come back request
after request, and a transformation chain or a group scan of the same value always gives the
same answer, so the answer is remembered. Only short values are kept (long ones are rarely
repeated and would hold memory); all tables share one byte budget and are all cleared when it
is spent, so a stream of unique values (hostile or not) costs the uncached work plus a dict
insert, and memory stays bounded whatever the traffic.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Generic, TypeVar

V = TypeVar("V")
MAX_VALUE = 256
"""Characters: longer values are computed every time."""
BUDGET = 16 * 1024 * 1024
"""Approximate bytes held by all tables together (keys counted twice for the answers)."""
ENTRY_OVERHEAD = 160

_tables: weakref.WeakSet[Memo[object]] = weakref.WeakSet()
_spent = 0


class Memo(Generic[V]):
    __slots__ = ("__weakref__", "limit", "table")

    def __init__(self, limit: int = MAX_VALUE) -> None:
        self.table: dict[str, V] = {}
        self.limit = limit
        """Characters: longer keys are not remembered."""
        _tables.add(self)  # type: ignore[arg-type]

    def get(self, key: str) -> V | None:
        return self.table.get(key)

    def put(self, key: str, value: V) -> None:
        """Remember one pair (not when the key is over ``limit``)."""
        if len(key) <= self.limit:
            _spend(len(key), 1)
            self.table[key] = value

    def put_all(self, keys: Sequence[str], values: Sequence[V]) -> None:
        """Remember each pair (keys over ``limit`` are skipped); when the budget would be
        passed, every table is forgotten first."""
        if len(keys) == 1:  # most often one new value of a field: no lists for it
            self.put(keys[0], values[0])
            return
        sizes = list(map(len, keys))
        if not sizes:
            return
        limit = self.limit
        if max(sizes) <= limit:  # every key short: without a Python step per pair
            _spend(sum(sizes), len(sizes))
            self.table.update(zip(keys, values, strict=True))
            return
        kept = [
            pair
            for pair, size in zip(zip(keys, values, strict=True), sizes, strict=True)
            if size <= limit
        ]
        _spend(sum(len(key) for key, _ in kept), len(kept))
        self.table.update(kept)


def _spend(characters: int, entries: int) -> None:
    """``entries`` more pairs whose keys hold ``characters`` in the tables (each key counted
    twice, for its answer): every table is forgotten first if that would pass the budget."""
    global _spent
    added = 2 * characters + ENTRY_OVERHEAD * entries
    if _spent + added > BUDGET:
        clear_all()
    _spent += added


def clear_all() -> None:
    """Forget every remembered answer (the benchmark's cold runs; the budget's reset)."""
    global _spent
    for memo in list(_tables):
        memo.table.clear()
    _spent = 0


_chains: dict[tuple[str, ...], Memo[str]] = {}


def chain_memo(names: tuple[str, ...]) -> Memo[str]:
    """The table of one transformation chain (transformations are pure functions of a value,
    so one table serves every web ACL that uses the chain)."""
    memo = _chains.get(names)
    if memo is None:
        memo = _chains[names] = Memo()
    return memo
