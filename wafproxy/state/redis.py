"""The fleet backend: rate counters and dynamic IP sets in one Redis, shared by every worker and
every host.

Counting: a request's rate-based rules answer from a local cache of the global counts (at most
one second old) and record their hits; ``settle`` then sends all of the request's hits in ONE
round trip (a Lua script: add the hits to per-second hash fields, drop fields that left the
window, return each key's window count). When a count changes an answer (a key just crossed
its limit) the edge evaluates the request again with the view answering from those counts, so
the request that crosses is already judged on the fleet-wide count and nothing is counted
twice. Keys: ``<prefix>rl:<acl>/<group>/<rule>:<key>`` (a hash, expiring after the window) and
``<prefix>rl-over:<rule id>`` (a sorted set of the keys seen over the limit, for the admin API).

Unreachable Redis: rate-based rules follow ``on_state_error`` (allow: they do not match; block:
they match), every affected request is counted in ``wafproxy_state_errors_total``, the incident
is logged once, and a background task reconnects with exponential backoff; requests do not
wait for Redis in the meantime. Dynamic IP sets keep their last known entries.

IP sets: ``<prefix>ipset:<name>`` hashes (address -> JSON entry), the set of names
``<prefix>ipsets`` and a version counter ``<prefix>ipsets:version`` bumped on every change;
each process polls the version every POLL_SECONDS and reloads when it moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from wafproxy.acl.ipset import IpSet
from wafproxy.acl.model import RateRule, RateView
from wafproxy.state import ManagedKey, StateUnavailable, clock
from wafproxy.state.config import OnStateError, StateConfig
from wafproxy.state.dynamic import DynamicSets, IpEntry, canonical_cidr, new_entry
from wafproxy.state.metrics import StateMetrics

log = logging.getLogger("wafproxy.state")
POLL_SECONDS = 0.25
CLOSE_SECONDS = 2.0
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
CACHE_MAX = 200_000
CACHE_SECONDS = 1
"""How old a cached count may be and still answer a request before its round trip."""
WARM_CONNECTIONS = 8
"""Connections opened at start, so the first burst of requests finds them ready."""
MANAGED_KEYS_MAX = 10_000
"""As GetRateBasedStatementManagedKeys: at most 10 000 keys per rule."""
FAILURES = (RedisError, OSError, StateUnavailable, asyncio.TimeoutError)

HIT_SCRIPT = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local key = KEYS[2 * i - 1]
  local over = KEYS[2 * i]
  local a = 2 + 3 * (i - 1)
  local window = tonumber(ARGV[a])
  local hits = tonumber(ARGV[a + 1])
  local limit = tonumber(ARGV[a + 2])
  if hits > 0 then
    redis.call('HINCRBY', key, now, hits)
  end
  local low = now - window
  local total = 0
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do
    if tonumber(flat[j]) <= low then
      redis.call('HDEL', key, flat[j])
    else
      total = total + tonumber(flat[j + 1])
    end
  end
  if hits > 0 then
    redis.call('EXPIRE', key, window + 2)
  end
  if total > limit then
    redis.call('ZADD', over, now, key)
    redis.call('EXPIRE', over, window + 2)
  end
  out[i] = total
end
return out
"""

Pending = tuple[RateRule, str, bool]
"""A hit waiting for the round trip: (rule, key, the answer given meanwhile)."""


class RedisView:
    """One request's view: answers from the cache (or, once settled, from Redis's counts)."""

    __slots__ = ("answers", "pending", "state")

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.pending: list[Pending] = []
        self.answers: dict[tuple[str, str], bool] = {}

    def hit(self, rule: RateRule, key: str, now: float) -> bool:
        answered = self.answers.get((rule.id, key))
        if answered is not None:
            return answered
        over = self.state.estimate(rule, key, int(now))
        self.pending.append((rule, key, over))
        return over


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisState:
    backend = "redis"

    def __init__(self, config: StateConfig, metrics: StateMetrics) -> None:
        self.config = config
        self.metrics = metrics
        rc = config.redis
        self.prefix = rc.key_prefix
        self.url = _redacted(rc.url)
        pool = BlockingConnectionPool.from_url(
            rc.url,
            max_connections=rc.pool_size,
            timeout=rc.timeout,
            socket_timeout=rc.timeout,
            socket_connect_timeout=rc.connect_timeout,
            retry=Retry(NoBackoff(), 0),
            encoding_errors="surrogateescape",  # keys carry request bytes as surrogates
            **_lean_handshake(),
        )
        self.client: Redis = Redis(connection_pool=pool)
        self._hit = self.client.register_script(HIT_SCRIPT)
        self.cache: dict[tuple[str, str], tuple[int, int]] = {}
        self.dynamic = DynamicSets()
        self._version: bytes | None = None
        self._down_since: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._closing = False
        """Set by close(): the background loops stop at their next turn even if the client
        turned their cancellation into a timeout (which they catch and retry)."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._closing = False
        self.metrics.up.labels(self.backend).set(1)
        try:
            await asyncio.gather(*(self.client.ping() for _ in range(WARM_CONNECTIONS)))
            await self._load_ip_sets()
        except FAILURES as exc:
            self._failed(exc, "ip_sets")
        self._poller = asyncio.ensure_future(self._poll())

    async def close(self) -> None:
        """Bounded: a command cancelled inside the Redis client can leave it waiting on its
        own connection, and a proxy's shutdown must not wait for that."""
        self._closing = True
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=0.5)
            if stuck:  # closing every connection, in use or not, ends what they wait on
                await self._bounded(self.client.connection_pool.disconnect)
                await asyncio.wait(stuck, timeout=CLOSE_SECONDS)
        await self._bounded(self.client.aclose)
        await self._bounded(self.client.connection_pool.disconnect)

    @staticmethod
    async def _bounded(closing: Callable[[], Awaitable[object]]) -> None:
        try:
            await asyncio.wait_for(closing(), CLOSE_SECONDS)
        except (TimeoutError, *FAILURES):
            log.warning("state: closing the Redis connection did not finish cleanly")

    @property
    def available(self) -> bool:
        return self._down_since is None

    def _failed(self, exc: BaseException, operation: str) -> None:
        self.metrics.errors.labels(self.backend, operation).inc()
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self.cache.clear()  # whatever Redis holds when it is back, these counts are stale
        self.metrics.up.labels(self.backend).set(0)
        mode = self.config.on_state_error
        effect = (
            "do not match (on_state_error: allow)"
            if mode is OnStateError.ALLOW
            else "match every request they see (on_state_error: block)"
        )
        log.error(
            "state: redis at %s is unreachable (%s: %s); rate-based rules %s until it is back",
            self.url,
            type(exc).__name__,
            exc,
            effect,
        )
        self._spawn(self._reconnect())

    def _spawn(self, coro: Any) -> None:
        if self._closing:  # close() has already collected the tasks it waits for
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self.client.ping()
                break
            except FAILURES:
                delay = min(delay * 2, BACKOFF_MAX)
        if self._closing:
            return
        assert self._down_since is not None
        seconds = time.monotonic() - self._down_since
        self._down_since = None
        self.metrics.up.labels(self.backend).set(1)
        log.warning("state: redis at %s is back after %.1f s", self.url, seconds)
        with contextlib.suppress(*FAILURES):
            await self._load_ip_sets()

    # -- rate-based rules --------------------------------------------------------------------------
    def rate_view(self, now: float) -> RateView:
        return RedisView(self)

    def enforced_limit(self, rule: RateRule) -> int:
        return rule.limit

    def estimate(self, rule: RateRule, key: str, second: int) -> bool:
        if self._down_since is not None:
            return self.config.on_state_error is OnStateError.BLOCK
        cached = self.cache.get((rule.id, key))
        if cached is None:
            return False
        count, at = cached
        return second - at <= CACHE_SECONDS and count + 1 > rule.limit

    def _counter_key(self, rule: RateRule, key: str) -> str:
        return f"{self.prefix}rl:{rule.id}:{key}"

    def _over_key(self, rule: RateRule) -> str:
        return f"{self.prefix}rl-over:{rule.id}"

    async def _counts(self, items: Sequence[tuple[RateRule, str, int]], second: int) -> list[int]:
        """One script call: add the hits, return each key's count in its window."""
        if not self.available:
            raise StateUnavailable("redis is down")
        keys: list[str] = []
        args: list[int] = [second]
        for rule, key, hits in items:
            keys += [self._counter_key(rule, key), self._over_key(rule)]
            args += [rule.window, hits, rule.limit]
        result = await self._hit(keys=keys, args=args)
        return [int(n) for n in result]

    def unsettled(self, view: RateView) -> bool:
        return isinstance(view, RedisView) and bool(view.pending)

    async def settle(self, view: RateView, now: float) -> bool:
        if not self.unsettled(view):
            return False
        assert isinstance(view, RedisView)
        pending, view.pending = view.pending, []
        second = int(now)
        begin = time.perf_counter()
        try:
            counts = await self._counts([(r, k, 1) for r, k, _ in pending], second)
        except FAILURES as exc:
            self._failed(exc, "rate")
            return self._fallback(view, pending)
        self.metrics.round_trip.observe(time.perf_counter() - begin)
        if len(self.cache) > CACHE_MAX:
            self.cache.clear()
        changed = False
        for (rule, key, given), count in zip(pending, counts, strict=True):
            self.cache[(rule.id, key)] = (count, second)
            over = count > rule.limit
            view.answers[(rule.id, key)] = over
            changed = changed or over != given
        if changed:
            self.metrics.reevaluations.inc()
        return changed

    def _fallback(self, view: RedisView, pending: Sequence[Pending]) -> bool:
        """No counts: every rate-based rule the request reached answers per on_state_error."""
        block = self.config.on_state_error is OnStateError.BLOCK
        changed = False
        for rule, key, given in pending:
            view.answers[(rule.id, key)] = block
            changed = changed or given != block
        return changed

    async def over_limit(self, rule: RateRule, now: float) -> list[ManagedKey]:
        second = int(now)
        over = self._over_key(rule)
        try:
            if not self.available:
                raise StateUnavailable("redis is down")
            await self.client.zremrangebyscore(over, "-inf", second - rule.window)
            members = await self.client.zrange(over, 0, MANAGED_KEYS_MAX - 1)
            head = self._counter_key(rule, "")
            keys = [_text(m)[len(head) :] for m in members]
            counts = await self._counts([(rule, k, 0) for k in keys], second) if keys else []
        except FAILURES as exc:
            self._failed(exc, "rate")
            raise StateUnavailable(str(exc)) from exc
        found = [ManagedKey(k, c) for k, c in zip(keys, counts, strict=True) if c > rule.limit]
        return sorted(found, key=lambda m: (-m.count, m.key))

    # -- dynamic IP sets ---------------------------------------------------------------------------
    def _set_key(self, name: str) -> str:
        return f"{self.prefix}ipset:{name}"

    @property
    def _names_key(self) -> str:
        return f"{self.prefix}ipsets"

    @property
    def _version_key(self) -> str:
        return f"{self.prefix}ipsets:version"

    def ip_sets(self, now: float) -> Mapping[str, IpSet]:
        return self.dynamic.snapshot(now)

    async def _poll(self) -> None:
        while not self._closing:
            await asyncio.sleep(POLL_SECONDS)
            if not self.available:
                continue
            try:
                version = await self.client.get(self._version_key)
                if version != self._version:
                    await self._load_ip_sets()
            except FAILURES as exc:
                self._failed(exc, "ip_sets")
            except Exception:  # the poller must outlive any one bad read
                log.exception("state: reloading the dynamic IP sets failed")

    async def _load_ip_sets(self) -> None:
        version = await self.client.get(self._version_key)
        names = sorted(_text(n) for n in await self.client.smembers(self._names_key))
        async with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._set_key(name))
            tables = await pipe.execute()
        entries: list[IpEntry] = []
        for name, table in zip(names, tables, strict=True):
            for address, raw in table.items():
                entry = _entry(name, _text(address), raw)
                if entry is not None:  # expiry is judged by ip_sets(now), on the caller's clock
                    entries.append(entry)
        self.dynamic.replace(entries)
        self._version = None if version is None else _text(version).encode()
        for name, count in self.dynamic.counts(clock(None)).items():
            self.metrics.ip_set_entries.labels(name).set(count)

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
        value = json.dumps({"expires": entry.expires, "reason": entry.reason, "added": entry.added})
        await self._change(
            lambda pipe: [
                pipe.hset(self._set_key(set_name), entry.address, value),
                pipe.sadd(self._names_key, set_name),
            ]
        )
        self.dynamic.put(entry)
        return entry

    async def unblock_ip(self, set_name: str, address: str) -> bool:
        canonical = canonical_cidr(address)
        results = await self._change(lambda pipe: [pipe.hdel(self._set_key(set_name), canonical)])
        found = self.dynamic.remove(set_name, canonical)
        return bool(results[0]) or found

    async def _change(self, commands: Any) -> list[Any]:
        """Run the commands and bump the version, atomically (MULTI/EXEC)."""
        try:
            if not self.available:
                raise StateUnavailable("redis is down")
            async with self.client.pipeline(transaction=True) as pipe:
                commands(pipe)
                pipe.incr(self._version_key)
                results: list[Any] = await pipe.execute()
        except FAILURES as exc:
            self._failed(exc, "ip_sets")
            raise StateUnavailable(str(exc)) from exc
        return results

    async def ip_entries(self, set_name: str, *, now: float | None = None) -> list[IpEntry]:
        if self.available:
            try:
                await self._load_ip_sets()
            except FAILURES as exc:
                self._failed(exc, "ip_sets")
        return self.dynamic.entries(set_name, clock(now))


def _lean_handshake() -> dict[str, Any]:
    """Skip the optional round trips redis-py makes on each new connection (CLIENT SETINFO;
    maintenance notifications, which Redis OSS answers with an error): a burst of new
    connections under load must not wait for them."""
    import inspect

    from redis.asyncio.connection import AbstractConnection

    accepted = inspect.signature(AbstractConnection.__init__).parameters
    options: dict[str, Any] = (
        {"driver_info": None}  # redis-py 8: explicit None disables CLIENT SETINFO
        if "driver_info" in accepted
        else {"lib_name": None, "lib_version": None}
    )
    if "maint_notifications_config" in accepted:
        from redis.maint_notifications import MaintNotificationsConfig

        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    return {k: v for k, v in options.items() if k in accepted}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _entry(set_name: str, address: str, raw: bytes) -> IpEntry | None:
    try:
        data = json.loads(raw)
        expires = data.get("expires")
        return IpEntry(
            set_name=set_name,
            address=address,
            expires=None if expires is None else float(expires),
            reason=str(data.get("reason", "")),
            added=float(data.get("added", 0.0)),
        )
    except (ValueError, TypeError, AttributeError):
        log.warning("state: ignoring a malformed entry %r of IP set %r", address, set_name)
        return None
