"""Shared mutable state behind one small Protocol: rate-based counters and dynamic IP sets.

The engine stays pure and synchronous: per request the edge asks ``rate_view(now)`` for an
object the rate-based statements call (``RateView.hit``) and ``ip_sets(now)`` for an immutable
snapshot of the dynamic IP sets. After evaluating, the edge awaits ``settle(view, now)``: the
memory backend has nothing to do; the Redis backend sends every hit of the request in one round
trip and says whether the shared counts changed an answer, in which case the edge evaluates
the request again with the same view (which then answers from those counts, counting nothing
twice). ``block_ip`` / ``unblock_ip`` / ``ip_entries`` are the dynamic IP sets' API (the admin
API, the CLI and automatic remediation use them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wafproxy.acl.ipset import IpSet
from wafproxy.acl.model import RateRule, RateView
from wafproxy.state.config import Backend, StateConfig
from wafproxy.state.dynamic import IpEntry
from wafproxy.state.metrics import StateMetrics

__all__ = [
    "IpEntry",
    "ManagedKey",
    "SharedState",
    "StateUnavailable",
    "create_state",
]


class StateUnavailable(Exception):
    """The shared state cannot be reached (Redis down); the operation did not happen."""


@dataclass(frozen=True)
class ManagedKey:
    """A key currently over a rate-based rule's limit (GetRateBasedStatementManagedKeys)."""

    key: str
    count: int


class SharedState(Protocol):
    backend: str
    """``memory`` or ``redis`` (metric label, admin output)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def rate_view(self, now: float) -> RateView:
        """The view one request's rate-based rules count through."""
        ...

    async def settle(self, view: RateView, now: float) -> bool:
        """Publish the view's hits; True when an answer changed (evaluate the request again)."""
        ...

    def unsettled(self, view: RateView) -> bool:
        """Whether ``settle`` has anything to publish: checked first, so that a request with no
        shared hits does not await."""
        ...

    def ip_sets(self, now: float) -> Mapping[str, IpSet]:
        """The live entries of every dynamic IP set (cheap: a cached immutable snapshot)."""
        ...

    async def block_ip(
        self,
        set_name: str,
        address: str,
        ttl: float | None,
        reason: str = "",
        *,
        now: float | None = None,
    ) -> IpEntry:
        """Add (or renew) an entry; ValueError for a bad address or TTL."""
        ...

    async def unblock_ip(self, set_name: str, address: str) -> bool:
        """Remove an entry; False when there was none. ValueError for a bad address."""
        ...

    async def ip_entries(self, set_name: str, *, now: float | None = None) -> list[IpEntry]: ...

    def enforced_limit(self, rule: RateRule) -> int:
        """The limit this process enforces (the memory backend splits it between workers)."""
        ...

    async def over_limit(self, rule: RateRule, now: float) -> list[ManagedKey]:
        """The keys over the rule's limit now, most requests first."""
        ...


def workers_notice(config: StateConfig, workers: int) -> str | None:
    """The one startup line that says how limits hold with several workers and no Redis."""
    if workers <= 1 or config.backend is not Backend.MEMORY:
        return None
    return (
        f"rate-based rules: state.backend is memory with {workers} workers: each worker counts "
        f"its own connections and enforces limit/{workers} (rounded up); set state.backend: "
        "redis for one exact limit across workers and hosts (docs/rate-limits.md)"
    )


def clock(now: float | None) -> float:
    return time.time() if now is None else now


def create_state(
    config: StateConfig,
    *,
    metrics: StateMetrics | None = None,
    workers: int = 1,
    config_path: Path | None = None,
) -> SharedState:
    """Not started yet: ``await state.start()``. ``workers``: processes sharing the memory
    backend's limits (each enforces limit / workers, rounded up)."""
    metrics = metrics or StateMetrics()
    if config.backend is Backend.REDIS:
        from wafproxy.state.redis import RedisState

        return RedisState(config, metrics)
    from wafproxy.state.memory import MemoryState

    return MemoryState(config, metrics, workers=workers, directory=config.state_dir(config_path))
