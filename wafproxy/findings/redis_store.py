"""RedisFindingStore: the FindingStore API on a Redis shared by every worker and every host.

Folding, suppression and retention are the SQLite store's (``fold_batch``,
``apply_suppressions``, the same pruning order); only the storage differs. Folding is atomic
across processes with optimistic transactions: WATCH the findings' keys, read, fold in Python,
write in MULTI/EXEC, retry when another process wrote one of them in between. Pruning is one
Lua script.

Keys (``<prefix>`` defaults to the state section's ``key_prefix`` + ``findings:``):

- ``<prefix>f:<id>``: the finding as JSON (``Finding.to_dict``);
- ``<prefix>meta``: hash id -> JSON ``[status, severity, last_seen, type, source, check,
  resource]``, the columns queries filter and order on;
- ``<prefix>order``: sorted set id -> last_seen (plus ``ACTIVE_OFFSET`` for active findings),
  so retention drops the least recently seen first and active ones last;
- ``<prefix>active``: hash id -> ``check \\0 severity`` of the active findings (the gauges).

Queries read the whole ``meta`` hash (bounded by ``retention.max_findings``) and filter in
Python: they serve the CLI and the admin API, not the request path. Synchronous, like
FindingStore: the async side calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from wafproxy.findings.model import Finding, Severity, Status
from wafproxy.findings.store import (
    FindingQuery,
    Recorded,
    Retention,
    apply_suppressions,
    fold_batch,
)
from wafproxy.findings.suppress import SuppressionRule
from wafproxy.state.config import RedisConfig

T = TypeVar("T")
ACTIVE_OFFSET = float(2**40)
"""Added to an active finding's score in ``order``: every active one sorts after every other."""
TRANSACTION_ATTEMPTS = 100
MIN_TIMEOUT = 2.0
"""Seconds per command at least: the state section's timeout is tuned for the request path."""
PREFIX_MATCHES = 10
EVERYTHING = FindingQuery()

PRUNE_SCRIPT = """
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('DEL', ARGV[1] .. id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[2], id)
  end
  return #ids
end
local n = drop(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]))
n = n + drop(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[4]))
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  n = n + drop(redis.call('ZRANGE', KEYS[2], 0, excess - 1))
end
return n
"""


@dataclass(frozen=True, slots=True)
class Row:
    """The columns of one finding that queries filter and order on."""

    id: str
    status: Status
    severity: float
    last_seen: float
    type: str
    source: str
    check: str
    resource: str

    @classmethod
    def of(cls, f: Finding) -> Row:
        return cls(f.id, f.status, f.severity, f.last_seen, f.type, f.source, f.check, f.resource)

    def encode(self) -> str:
        return json.dumps(
            [
                self.status.value, self.severity, self.last_seen, self.type, self.source,
                self.check, self.resource,
            ]
        )  # fmt: skip

    @classmethod
    def decode(cls, finding_id: str, raw: bytes) -> Row:
        status, severity, last_seen, type_, source, check, resource = json.loads(raw)
        return cls(
            finding_id, Status(status), float(severity), float(last_seen), str(type_),
            str(source), str(check), str(resource),
        )  # fmt: skip

    def matches(self, q: FindingQuery) -> bool:
        wanted = (
            (q.type, self.type),
            (q.source, self.source),
            (q.check, self.check),
            (q.resource, self.resource),
        )
        if any(value is not None and value != mine for value, mine in wanted):
            return False
        if q.statuses and self.status not in q.statuses:
            return False
        if q.min_severity is not None and self.severity < q.min_severity.floor:
            return False
        return q.since is None or self.last_seen >= q.since

    @property
    def order(self) -> tuple[float, float, str]:
        """Most severe first, then most recently seen, then id (as the SQLite store)."""
        return (-self.severity, -self.last_seen, self.id)


class RedisFindingStore:
    def __init__(
        self,
        redis: RedisConfig,
        *,
        key_prefix: str | None = None,
        retention: Retention | None = None,
        suppressions: Sequence[SuppressionRule] = (),
    ) -> None:
        self.prefix = redis.key_prefix + "findings:" if key_prefix is None else key_prefix
        self.retention = retention or Retention()
        self.suppressions = tuple(suppressions)
        self.client: Redis = Redis.from_url(
            redis.url,
            max_connections=redis.pool_size,
            socket_timeout=max(redis.timeout, MIN_TIMEOUT),
            socket_connect_timeout=redis.connect_timeout,
        )
        self._prune_script = self.client.register_script(PRUNE_SCRIPT)
        self._meta = self.prefix + "meta"
        self._order = self.prefix + "order"
        self._active = self.prefix + "active"

    def close(self) -> None:
        self.client.close()

    def key(self, finding_id: str) -> str:
        return f"{self.prefix}f:{finding_id}"

    # -- writing ---------------------------------------------------------------------------------
    def record(self, findings: Iterable[Finding], now: float | None = None) -> Recorded:
        """Fold each finding into what is stored (repeats count up, also when other processes
        record the same finding at the same moment), apply suppression rules, then enforce
        retention."""
        moment = time.time() if now is None else now
        batch = list(findings)
        ids = sorted({f.id for f in batch})

        def fold(pipe: Pipeline) -> Recorded:
            stored = self._load(pipe, ids)
            recorded = fold_batch(batch, stored.get, self.suppressions, moment)
            pipe.multi()
            for merged in recorded.findings:
                self._put(pipe, merged)
            return recorded

        recorded = self._transaction(ids, fold)
        self._prune(moment)
        return recorded

    def set_status(self, finding_id: str, status: Status, now: float | None = None) -> Finding:
        """Archive (``ARCHIVED``) or unarchive (``ACTIVE``, then suppression rules apply).
        Raises KeyError for an unknown id."""
        moment = time.time() if now is None else now

        def change(pipe: Pipeline) -> Finding:
            found = self._load(pipe, [finding_id]).get(finding_id)
            if found is None:
                raise KeyError(finding_id)
            changed = apply_suppressions(found.with_status(status), self.suppressions, moment)
            pipe.multi()
            self._put(pipe, changed)
            return changed

        return self._transaction([finding_id], change)

    def close_missing(
        self, source: str, resource: str, checks: Iterable[str], seen: Iterable[str]
    ) -> list[Finding]:
        """Close the active (or suppressed) findings of these checks on this resource that a
        completed run did not see again: what a scan no longer sees has been fixed."""
        names = set(checks)
        seen_ids = set(seen)
        open_ = {Status.ACTIVE, Status.SUPPRESSED}

        def closing(f: Finding) -> bool:
            return (
                f.source == source
                and f.resource == resource
                and f.check in names
                and f.status in open_
                and f.id not in seen_ids
            )

        ids = sorted(
            row.id
            for row in self._rows()
            if row.source == source and row.check in names and row.resource == resource
        )

        def close(pipe: Pipeline) -> list[Finding]:
            stored = self._load(pipe, ids)
            found = (stored[i] for i in ids if i in stored)
            closed = [f.with_status(Status.CLOSED) for f in found if closing(f)]
            pipe.multi()
            for finding in closed:
                self._put(pipe, finding)
            return closed

        return self._transaction(ids, close) if ids else []

    def _transaction(self, ids: Sequence[str], body: Callable[[Pipeline], T]) -> T:
        """Run ``body`` with the findings' keys watched, until no other process wrote one of
        them between our read and our write."""
        for _ in range(TRANSACTION_ATTEMPTS - 1):
            try:
                return self._attempt(ids, body)
            except WatchError:
                continue
        return self._attempt(ids, body)

    def _attempt(self, ids: Sequence[str], body: Callable[[Pipeline], T]) -> T:
        with self.client.pipeline() as pipe:
            if ids:
                pipe.watch(*(self.key(i) for i in ids))  # type: ignore[no-untyped-call]
            result = body(pipe)
            pipe.execute()
            return result

    def _put(self, pipe: Pipeline, f: Finding) -> None:
        active = f.status is Status.ACTIVE
        pipe.set(self.key(f.id), json.dumps(f.to_dict()))
        pipe.hset(self._meta, f.id, Row.of(f).encode())
        pipe.zadd(self._order, {f.id: f.last_seen + (ACTIVE_OFFSET if active else 0.0)})
        if active:
            pipe.hset(self._active, f.id, f"{f.check}\x00{f.severity!r}")
        else:
            pipe.hdel(self._active, f.id)

    def _prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age_days * 86400
        half = ACTIVE_OFFSET / 2
        self._prune_script(
            keys=[self._meta, self._order, self._active],
            args=[
                self.prefix + "f:",
                f"({min(cutoff, half)!r}",
                repr(half),
                f"({cutoff + ACTIVE_OFFSET!r}",
                self.retention.max_findings,
            ],
        )

    # -- reading ---------------------------------------------------------------------------------
    def _load(self, client: Redis | Pipeline, ids: Sequence[str]) -> dict[str, Finding]:
        if not ids:
            return {}
        raws = client.mget([self.key(i) for i in ids])
        return {
            finding_id: Finding.from_dict(json.loads(raw))
            for finding_id, raw in zip(ids, raws, strict=True)
            if raw is not None
        }

    def _rows(self) -> list[Row]:
        flat = self.client.hgetall(self._meta)
        return [Row.decode(_text(key), _bytes(raw)) for key, raw in flat.items()]

    def get(self, finding_id: str) -> Finding | None:
        return self._load(self.client, [finding_id]).get(finding_id)

    def find_prefix(self, prefix: str) -> list[Finding]:
        """Findings whose id starts with ``prefix`` (the CLI accepts short ids)."""
        ids = sorted(i for i in map(_text, self.client.hkeys(self._meta)) if i.startswith(prefix))
        found = self._load(self.client, ids[:PREFIX_MATCHES])
        return [found[i] for i in ids[:PREFIX_MATCHES] if i in found]

    def query(self, q: FindingQuery = EVERYTHING) -> list[Finding]:
        rows = sorted((r for r in self._rows() if r.matches(q)), key=lambda r: r.order)
        page = [r.id for r in rows[q.offset : q.offset + q.limit]]
        found = self._load(self.client, page)
        return [found[i] for i in page if i in found]

    def count(self, q: FindingQuery = EVERYTHING) -> int:
        return sum(1 for r in self._rows() if r.matches(q))

    def active_counts(self) -> dict[tuple[str, Severity], int]:
        """Active findings by (check, severity band): what the gauges export."""
        counts: dict[tuple[str, Severity], int] = {}
        for value in self.client.hvals(self._active):
            check, _, score = _text(value).partition("\x00")
            key = (check, Severity.of(float(score)))
            counts[key] = counts.get(key, 0) + 1
        return counts


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
