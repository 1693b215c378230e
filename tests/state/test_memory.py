"""The embedded backend: dynamic IP sets (TTL on a fake clock, SQLite persistence, other
workers' changes within a second), managed keys, the key cap and its metric."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from wafproxy.acl.model import RateRule
from wafproxy.state import create_state, workers_notice
from wafproxy.state.config import Backend, StateConfig
from wafproxy.state.memory import POLL_SECONDS, MemoryState
from wafproxy.state.metrics import StateMetrics


async def wait_until(predicate: object, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


NOW = 1_700_000_000.0
RULE = RateRule(id="a//r", name="r", limit=3, window=60, acl="a")


def memory(directory: Path, **kwargs: object) -> MemoryState:
    return MemoryState(StateConfig(), StateMetrics(), directory=directory, **kwargs)  # type: ignore[arg-type]


async def test_entries_match_until_their_ttl_passes(tmp_path: Path) -> None:
    state = memory(tmp_path)
    await state.block_ip("deny", "192.0.2.7", ttl=60, reason="scanner", now=NOW)
    await state.block_ip("deny", "2001:db8::/32", ttl=None, now=NOW)
    sets = state.ip_sets(NOW + 59.9)
    assert "192.0.2.7" in sets["deny"] and "2001:db8::1" in sets["deny"]
    assert "192.0.2.8" not in sets["deny"]
    entries = await state.ip_entries("deny", now=NOW + 1)
    assert [(e.address, e.expires, e.reason) for e in entries] == [
        ("192.0.2.7/32", NOW + 60, "scanner"),
        ("2001:db8::/32", None, ""),
    ]
    later = state.ip_sets(NOW + 60)
    assert "192.0.2.7" not in later["deny"] and "2001:db8::1" in later["deny"]
    assert [e.address for e in await state.ip_entries("deny", now=NOW + 60)] == ["2001:db8::/32"]


async def test_the_snapshot_is_reused_until_something_changes(tmp_path: Path) -> None:
    state = memory(tmp_path)
    await state.block_ip("deny", "192.0.2.7", ttl=60, now=NOW)
    first = state.ip_sets(NOW)
    assert state.ip_sets(NOW + 1) is first
    await state.block_ip("deny", "192.0.2.8", ttl=60, now=NOW)
    assert state.ip_sets(NOW + 1) is not first


async def test_renewing_and_removing(tmp_path: Path) -> None:
    state = memory(tmp_path)
    await state.block_ip("deny", "192.0.2.0/24", ttl=10, now=NOW)
    await state.block_ip("deny", "192.0.2.99/24", ttl=100, now=NOW)  # same network: renewed
    assert "192.0.2.1" in state.ip_sets(NOW + 50)["deny"]
    assert await state.unblock_ip("deny", "192.0.2.0/24")
    assert not await state.unblock_ip("deny", "192.0.2.0/24")
    assert "192.0.2.1" not in state.ip_sets(NOW + 50)["deny"]


async def test_bad_addresses_and_ttls_are_refused(tmp_path: Path) -> None:
    state = memory(tmp_path)
    with pytest.raises(ValueError, match="not an IP address"):
        await state.block_ip("deny", "300.1.1.1", ttl=10)
    with pytest.raises(ValueError, match="ttl"):
        await state.block_ip("deny", "192.0.2.1", ttl=0)
    with pytest.raises(ValueError):
        await state.unblock_ip("deny", "nonsense")


async def test_entries_survive_a_restart_and_expired_ones_do_not(tmp_path: Path) -> None:
    first = memory(tmp_path)
    await first.start()
    await first.block_ip("deny", "192.0.2.7", ttl=3600)
    await first.block_ip("deny", "192.0.2.8", ttl=3600)
    await first.block_ip("deny", "192.0.2.9", ttl=0.001)
    await first.unblock_ip("deny", "192.0.2.8")
    await first.close()
    await asyncio.sleep(0.01)
    second = memory(tmp_path)
    await second.start()
    try:
        entries = await second.ip_entries("deny")
        assert [e.address for e in entries] == ["192.0.2.7/32"]
    finally:
        await second.close()


async def test_a_change_by_another_worker_is_seen_within_a_second(tmp_path: Path) -> None:
    one, two = memory(tmp_path, workers=2), memory(tmp_path, workers=2)
    await one.start()
    await two.start()  # no store file yet: it appears when the first entry is written
    try:
        await one.block_ip("deny", "192.0.2.7", ttl=3600)
        assert await wait_until(lambda: "192.0.2.7" in two.ip_sets(NOW).get("deny", ()), 1.0)
        await one.unblock_ip("deny", "192.0.2.7")
        assert await wait_until(lambda: "192.0.2.7" not in two.ip_sets(NOW).get("deny", ()), 1.0)
    finally:
        await one.close()
        await two.close()
    assert POLL_SECONDS <= 0.5


async def test_over_limit_lists_the_keys_being_limited(tmp_path: Path) -> None:
    state = memory(tmp_path)
    for _ in range(5):
        state.hit(RULE, "192.0.2.1", NOW)
    for _ in range(4):
        state.hit(RULE, "192.0.2.2", NOW + 1)
    state.hit(RULE, "192.0.2.3", NOW + 1)
    keys = await state.over_limit(RULE, NOW + 2)
    assert [(k.key, k.count) for k in keys] == [("192.0.2.1", 5), ("192.0.2.2", 4)]
    assert [k.key for k in await state.over_limit(RULE, NOW + 60)] == ["192.0.2.2"]
    assert await state.over_limit(RULE, NOW + 61) == []


def test_the_key_cap_evicts_and_counts(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    config = StateConfig(max_keys=1000)
    state = MemoryState(config, StateMetrics(registry), directory=tmp_path)
    for i in range(1500):
        state.hit(RULE, f"10.0.{i // 256}.{i % 256}", NOW)
    assert state.counters.size == 1000
    assert registry.get_sample_value("wafproxy_rate_keys_evicted_total") == 500


def test_create_state_and_the_workers_notice(tmp_path: Path) -> None:
    state = create_state(StateConfig(), workers=3, config_path=tmp_path / "wafproxy.yaml")
    assert isinstance(state, MemoryState)
    assert state.enforced_limit(RULE) == 1
    assert state.store.path == tmp_path / "wafproxy-state" / "ip-sets.sqlite3"
    notice = workers_notice(StateConfig(), 3)
    assert notice is not None and "limit/3" in notice and "redis" in notice
    assert workers_notice(StateConfig(), 1) is None
    assert workers_notice(StateConfig(backend=Backend.REDIS), 3) is None
