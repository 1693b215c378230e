"""BoundedTable: size-bounded LRU with idle expiry on the caller's clock."""

from __future__ import annotations

import pytest

from wafproxy.detect.bounded import EXPIRE_PER_CALL, BoundedTable, Entry


class Box(Entry):
    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        super().__init__()
        self.value = value


def test_get_or_put_creates_once_and_returns_the_same_entry() -> None:
    table: BoundedTable[Box] = BoundedTable(10)
    first = table.get_or_put("a", 1.0, Box)
    first.value = 7
    assert table.get_or_put("a", 2.0, Box) is first
    assert len(table) == 1 and "a" in table


def test_size_bound_evicts_the_least_recently_touched() -> None:
    table: BoundedTable[Box] = BoundedTable(3)
    for key in "abc":
        table.put(key, Box(), 0.0)
    assert table.get("a", 1.0) is not None  # a is now the most recent
    table.put("d", Box(), 2.0)
    assert list(table) == ["c", "a", "d"]
    assert "b" not in table
    assert table.evicted == 1


def test_many_distinct_keys_stay_within_max_keys() -> None:
    table: BoundedTable[Box] = BoundedTable(1000)
    for n in range(50_000):
        table.get_or_put(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", float(n), Box)
    assert len(table) == 1000
    assert table.evicted == 49_000


def test_idle_entries_are_gone_on_get() -> None:
    table: BoundedTable[Box] = BoundedTable(10, ttl=60.0)
    table.put("a", Box(1), 100.0)
    assert table.get("a", 160.0) is not None  # exactly ttl idle: still there, now touched
    assert table.get("a", 220.0) is not None
    assert table.get("a", 280.5) is None
    assert "a" not in table and table.expired == 1


def test_idle_entries_expire_a_few_per_insertion() -> None:
    table: BoundedTable[Box] = BoundedTable(100, ttl=10.0)
    for n in range(20):
        table.put(f"old{n}", Box(), 0.0)
    table.put("new", Box(), 100.0)
    assert len(table) == 21 - EXPIRE_PER_CALL
    for n in range(10):
        table.put(f"new{n}", Box(), 100.0)
    assert not any(key.startswith("old") for key in table)


def test_peek_does_not_touch() -> None:
    table: BoundedTable[Box] = BoundedTable(2)
    table.put("a", Box(), 0.0)
    table.put("b", Box(), 1.0)
    assert table.peek("a") is not None
    table.put("c", Box(), 2.0)
    assert "a" not in table


def test_pop_and_clear() -> None:
    table: BoundedTable[Box] = BoundedTable(2)
    table.put("a", Box(5), 0.0)
    popped = table.pop("a")
    assert popped is not None and popped.value == 5
    assert table.pop("a") is None
    table.put("b", Box(), 0.0)
    table.clear()
    assert len(table) == 0


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedTable[Box](0)
