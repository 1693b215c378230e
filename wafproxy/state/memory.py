"""The embedded backend: counters in this process, dynamic IP sets in a SQLite file.

The rate view is the state itself: ``hit`` counts and answers at once, so ``settle`` has nothing
to do. With ``--workers N`` every worker counts its own share of the traffic and enforces
``ceil(limit / N)`` (the kernel spreads connections evenly, so a client's total is ~limit);
use the Redis backend for one exact limit. Dynamic IP set entries live in
``<state dir>/ip-sets.sqlite3``: they survive restarts, and every worker sees another's change
within ``POLL_SECONDS`` (it watches SQLite's data_version).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from wafproxy.acl.ipset import IpSet
from wafproxy.acl.model import RateRule, RateView
from wafproxy.state import ManagedKey, clock
from wafproxy.state.config import StateConfig
from wafproxy.state.dynamic import DynamicSets, IpEntry, canonical_cidr, new_entry
from wafproxy.state.ipstore import SqliteIpStore
from wafproxy.state.metrics import StateMetrics
from wafproxy.state.window import RateCounters

log = logging.getLogger("wafproxy.state")
POLL_SECONDS = 0.25
SWEEP_BUDGET = 20_000


class MemoryState:
    backend = "memory"

    def __init__(
        self,
        config: StateConfig,
        metrics: StateMetrics,
        *,
        workers: int = 1,
        directory: Path,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.workers = max(1, workers)
        self.counters = RateCounters(config.max_keys, on_evict=metrics.evicted.inc)
        self.dynamic = DynamicSets()
        self.store = SqliteIpStore(directory)
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._store_failed = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.metrics.up.labels(self.backend).set(1)
        if self.store.exists():
            await self._open_and_load()
        self._task = asyncio.ensure_future(self._maintain())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.store.close)

    async def _maintain(self) -> None:
        """Every POLL_SECONDS: pick up other workers' IP set changes; sweep idle rate keys."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            self.counters.sweep(int(clock(None)), SWEEP_BUDGET)
            self.metrics.keys.set(self.counters.size)
            try:
                await self._poll_store()
            except (OSError, sqlite3.Error) as exc:
                self._store_error(exc)

    async def _poll_store(self) -> None:
        if not self.store.is_open:
            if self.store.exists():
                await self._open_and_load()
            return
        version = await asyncio.to_thread(self.store.data_version)
        if version != self._version:
            await self._load()

    async def _open_and_load(self) -> None:
        await asyncio.to_thread(self.store.open)
        await self._load()

    async def _load(self) -> None:
        self._version = await asyncio.to_thread(self.store.data_version)
        entries = await asyncio.to_thread(self.store.load, clock(None))
        self.dynamic.replace(entries)
        self._export_counts()
        self._store_failed = False

    def _store_error(self, exc: Exception) -> None:
        self.metrics.errors.labels(self.backend, "ip_sets").inc()
        if not self._store_failed:
            log.error("state: the IP set store %s failed: %s", self.store.path, exc)
            self._store_failed = True

    def _export_counts(self) -> None:
        for name, count in self.dynamic.counts(clock(None)).items():
            self.metrics.ip_set_entries.labels(name).set(count)

    # -- rate-based rules --------------------------------------------------------------------------
    def rate_view(self, now: float) -> RateView:
        return self

    def enforced_limit(self, rule: RateRule) -> int:
        """This process's share of the rule's limit."""
        return math.ceil(rule.limit / self.workers)

    def hit(self, rule: RateRule, key: str, now: float) -> bool:
        second = int(now)
        count = self.counters.hit(rule.id, rule.window, key, second)
        if count > self.enforced_limit(rule):
            self.counters.tables[rule.id].over[key] = second
            return True
        return False

    async def settle(self, view: RateView, now: float) -> bool:
        return False

    def unsettled(self, view: RateView) -> bool:
        return False  # counted in this process as they happen

    async def over_limit(self, rule: RateRule, now: float) -> list[ManagedKey]:
        table = self.counters.tables.get(rule.id)
        if table is None:
            return []
        found = [ManagedKey(k, c) for k, c in table.over_limit(int(now), self.enforced_limit(rule))]
        return sorted(found, key=lambda m: (-m.count, m.key))

    # -- dynamic IP sets ---------------------------------------------------------------------------
    def ip_sets(self, now: float) -> Mapping[str, IpSet]:
        return self.dynamic.snapshot(now)

    async def block_ip(
        self,
        set_name: str,
        address: str,
        ttl: float | None,
        reason: str = "",
        *,
        now: float | None = None,
    ) -> IpEntry:
        entry = new_entry(set_name, address, ttl, reason, clock(now))
        await asyncio.to_thread(self._write, entry)
        self.dynamic.put(entry)
        self._export_counts()
        return entry

    def _write(self, entry: IpEntry) -> None:
        self.store.open()
        self.store.put(entry)

    async def unblock_ip(self, set_name: str, address: str) -> bool:
        canonical = canonical_cidr(address)
        stored = False
        if self.store.exists():
            await asyncio.to_thread(self.store.open)
            stored = await asyncio.to_thread(self.store.delete, set_name, canonical)
        found = self.dynamic.remove(set_name, canonical)
        self._export_counts()
        return stored or found

    async def ip_entries(self, set_name: str, *, now: float | None = None) -> list[IpEntry]:
        return self.dynamic.entries(set_name, clock(now))
