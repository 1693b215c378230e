"""Sliding-window counters: per-second buckets, expiry of idle keys, the LRU cap."""

from __future__ import annotations

from array import array

from wafproxy.state.window import RateCounters, RateTable, add_hit, window_total


def test_a_key_counts_the_seconds_inside_its_window() -> None:
    buckets = array("I", (1, 100, 1))
    assert add_hit(buckets, 100, 60) == 2
    assert add_hit(buckets, 130, 60) == 3
    assert add_hit(buckets, 159, 60) == 4
    assert window_total(buckets, 159, 60) == 4
    assert window_total(buckets, 160, 60) == 2  # second 100 left the window (101..160)
    assert window_total(buckets, 189, 60) == 2
    assert window_total(buckets, 190, 60) == 1
    assert window_total(buckets, 219, 60) == 0
    assert list(buckets) == [0]


def test_a_clock_step_back_counts_in_the_newest_bucket() -> None:
    buckets = array("I", (1, 100, 1))
    assert add_hit(buckets, 99, 60) == 2
    assert list(buckets) == [2, 100, 2]


def test_idle_keys_are_dropped_as_new_ones_arrive() -> None:
    counters = RateCounters(max_keys=1000)
    for i in range(10):
        counters.hit("r", 60, f"k{i}", 100)
    assert counters.size == 10
    for i in range(10):  # 60 s later every old key is idle: each new key drops two
        counters.hit("r", 60, f"n{i}", 160)
    assert counters.size == 10
    assert set(counters.tables["r"].keys) == {f"n{i}" for i in range(10)}


def test_the_sweep_drops_idle_keys_of_quiet_rules() -> None:
    counters = RateCounters(max_keys=1000)
    for i in range(5):
        counters.hit("quiet", 120, f"k{i}", 10)
    counters.hit("busy", 60, "x", 100)
    assert counters.sweep(129) == 0  # still inside the 120 s window
    assert counters.sweep(130) == 5
    assert counters.size == 1
    assert "quiet" not in counters.tables


def test_the_cap_evicts_the_least_recently_used_key_and_counts_it() -> None:
    evicted: list[int] = []
    counters = RateCounters(max_keys=3, on_evict=evicted.append)
    counters.hit("a", 300, "old", 1)
    counters.hit("b", 300, "mid", 2)
    counters.hit("a", 300, "new", 3)
    counters.hit("a", 300, "old", 4)  # touched: now the most recent
    counters.hit("b", 300, "fresh", 5)
    assert counters.size == 3
    assert sum(evicted) == 1
    assert set(counters.tables["a"].keys) == {"old", "new"}
    assert set(counters.tables["b"].keys) == {"fresh"}
    assert counters.tables["a"].count("old", 5) == 2


def test_over_limit_lists_keys_still_over_and_forgets_stale_ones() -> None:
    table = RateTable(window=60)
    for _ in range(5):
        table.hit("hot", 100)
    table.hit("cool", 100)
    table.over["hot"] = 100
    table.over["cool"] = 100
    assert list(table.over_limit(100, 3)) == [("hot", 5)]
    assert list(table.over_limit(160, 3)) == []
    assert table.over == {}


def test_bucket_memory_stays_small() -> None:
    """The per-key structure: one array of 3 uint32 for a key seen in one second."""
    table = RateTable(window=300)
    table.hit("198.51.100.7", 1_700_000_000)
    buckets = table.keys["198.51.100.7"]
    assert buckets.itemsize == 4
    assert list(buckets) == [1, 1_700_000_000, 1]
