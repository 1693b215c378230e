"""FindingStore: findings persisted in an embedded SQLite database, with bounded retention.

Synchronous and thread-safe (one connection behind a lock); the async side calls it through
``asyncio.to_thread``. WAL mode lets the CLI and every worker process read while one writes.
The whole finding is kept as JSON; the columns beside it exist for filtering and ordering.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from wafproxy.findings.model import Finding, Severity, Status
from wafproxy.findings.suppress import SuppressionRule, suppressed_by

MEMORY = ":memory:"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    check_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity REAL NOT NULL,
    status TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_status ON findings (status, severity);
CREATE INDEX IF NOT EXISTS findings_last_seen ON findings (last_seen);
CREATE INDEX IF NOT EXISTS findings_scope ON findings (source, resource, check_name);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Retention:
    max_findings: int = 10_000
    max_age_days: float = 90.0
    """Findings not seen for this long are deleted, whatever their status."""


@dataclass(frozen=True)
class FindingQuery:
    statuses: frozenset[Status] = frozenset()
    """Empty: every status."""
    type: str | None = None
    source: str | None = None
    check: str | None = None
    resource: str | None = None
    min_severity: Severity | None = None
    since: float | None = None
    """Last seen at or after (epoch seconds)."""
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class Recorded:
    """What one ``record`` call did: the stored findings and which of them are new."""

    findings: tuple[Finding, ...]
    new_ids: frozenset[str] = field(default_factory=frozenset)
    notable_ids: frozenset[str] = field(default_factory=frozenset)
    """New, reopened, newly suppressed or unsuppressed, or moved to another severity band."""

    @property
    def notable(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.id in self.notable_ids)


def _notable(previous: Finding | None, current: Finding) -> bool:
    if previous is None:
        return True
    return previous.status is not current.status or previous.band is not current.band


def apply_suppressions(finding: Finding, rules: Sequence[SuppressionRule], now: float) -> Finding:
    """Active or suppressed, as the rules say now (archived and closed stay as they are)."""
    if finding.status not in (Status.ACTIVE, Status.SUPPRESSED):
        return finding
    rule = suppressed_by(finding, rules, now)
    details = {k: v for k, v in finding.details.items() if k != "suppressed_by"}
    if rule is None:
        status = Status.ACTIVE
    else:
        status = Status.SUPPRESSED
        details["suppressed_by"] = rule.name
    return replace(finding, status=status, details=details)


def fold_batch(
    findings: Iterable[Finding],
    load: Callable[[str], Finding | None],
    rules: Sequence[SuppressionRule],
    now: float,
) -> Recorded:
    """Fold a batch into what ``load`` finds stored (the semantics every store shares); the
    caller writes ``findings`` of the result back."""
    stored: dict[str, Finding] = {}
    new_ids: set[str] = set()
    notable: set[str] = set()
    for finding in findings:
        previous = stored.get(finding.id) or load(finding.id)
        merged = previous.folded(finding) if previous is not None else finding
        merged = apply_suppressions(merged, rules, now)
        if previous is None:
            new_ids.add(finding.id)
        if _notable(previous, merged):
            notable.add(finding.id)
        stored[merged.id] = merged
    return Recorded(tuple(stored.values()), frozenset(new_ids), frozenset(notable))


class Store(Protocol):
    """What the findings service, the CLI and the admin API use: FindingStore (SQLite, one host)
    and RedisFindingStore (redis_store.py, the fleet)."""

    retention: Retention
    suppressions: tuple[SuppressionRule, ...]

    def close(self) -> None: ...

    def record(self, findings: Iterable[Finding], now: float | None = None) -> Recorded: ...

    def set_status(self, finding_id: str, status: Status, now: float | None = None) -> Finding: ...

    def close_missing(
        self, source: str, resource: str, checks: Iterable[str], seen: Iterable[str]
    ) -> list[Finding]: ...

    def get(self, finding_id: str) -> Finding | None: ...

    def find_prefix(self, prefix: str) -> list[Finding]: ...

    def query(self, q: FindingQuery = ...) -> list[Finding]: ...

    def count(self, q: FindingQuery = ...) -> int: ...

    def active_counts(self) -> dict[tuple[str, Severity], int]: ...


class FindingStore:
    def __init__(
        self,
        path: Path | str = MEMORY,
        *,
        retention: Retention | None = None,
        suppressions: Sequence[SuppressionRule] = (),
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self.suppressions = tuple(suppressions)
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        with self._lock:
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------------
    def record(self, findings: Iterable[Finding], now: float | None = None) -> Recorded:
        """Fold each finding into what is stored (repeats count up), apply suppression rules,
        then enforce retention."""
        moment = time.time() if now is None else now
        with self._lock, self._db:
            recorded = fold_batch(findings, self._get, self.suppressions, moment)
            for merged in recorded.findings:
                self._put(merged)
            self._prune(moment)
        return recorded

    def _suppress(self, finding: Finding, now: float) -> Finding:
        return apply_suppressions(finding, self.suppressions, now)

    def set_status(self, finding_id: str, status: Status, now: float | None = None) -> Finding:
        """Archive (``ARCHIVED``) or unarchive (``ACTIVE``, then suppression rules apply).
        Raises KeyError for an unknown id."""
        moment = time.time() if now is None else now
        with self._lock, self._db:
            found = self._get(finding_id)
            if found is None:
                raise KeyError(finding_id)
            changed = self._suppress(found.with_status(status), moment)
            self._put(changed)
        return changed

    def close_missing(
        self, source: str, resource: str, checks: Iterable[str], seen: Iterable[str]
    ) -> list[Finding]:
        """Close the active (or suppressed) findings of these checks on this resource that a
        completed run did not see again: what a scan no longer sees has been fixed."""
        names = sorted(set(checks))
        seen_ids = set(seen)
        closed: list[Finding] = []
        if not names:
            return closed
        marks = ",".join("?" * len(names))
        query = (
            f"SELECT data FROM findings WHERE source = ? AND resource = ? "
            f"AND check_name IN ({marks}) AND status IN ('active', 'suppressed')"
        )
        with self._lock, self._db:
            rows = self._db.execute(query, (source, resource, *names)).fetchall()
            for (data,) in rows:
                finding = Finding.from_dict(json.loads(data))
                if finding.id in seen_ids:
                    continue
                finding = finding.with_status(Status.CLOSED)
                self._put(finding)
                closed.append(finding)
        return closed

    def _put(self, f: Finding) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO findings (id, type, source, check_name, resource, subject, "
            "severity, status, first_seen, last_seen, count, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f.id, f.type, f.source, f.check, f.resource, f.subject, f.severity,
                f.status.value, f.first_seen, f.last_seen, f.count, json.dumps(f.to_dict()),
            ),
        )  # fmt: skip

    def _prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age_days * 86400
        self._db.execute("DELETE FROM findings WHERE last_seen < ?", (cutoff,))
        (total,) = self._db.execute("SELECT COUNT(*) FROM findings").fetchone()
        excess = int(total) - self.retention.max_findings
        if excess > 0:  # the least recently seen go first, active ones last
            self._db.execute(
                "DELETE FROM findings WHERE id IN (SELECT id FROM findings ORDER BY "
                "status = 'active', last_seen LIMIT ?)",
                (excess,),
            )

    # -- reading ---------------------------------------------------------------------------------
    def get(self, finding_id: str) -> Finding | None:
        with self._lock:
            return self._get(finding_id)

    def _get(self, finding_id: str) -> Finding | None:
        row = self._db.execute("SELECT data FROM findings WHERE id = ?", (finding_id,)).fetchone()
        return Finding.from_dict(json.loads(row[0])) if row else None

    def find_prefix(self, prefix: str) -> list[Finding]:
        """Findings whose id starts with ``prefix`` (the CLI accepts short ids)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM findings WHERE id LIKE ? ESCAPE '\\' LIMIT 10",
                (escaped + "%",),
            ).fetchall()
        return [Finding.from_dict(json.loads(data)) for (data,) in rows]

    def query(self, q: FindingQuery = FindingQuery()) -> list[Finding]:
        where, params = _where(q)
        sql = (
            f"SELECT data FROM findings {where} "
            "ORDER BY severity DESC, last_seen DESC, id LIMIT ? OFFSET ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, q.limit, q.offset)).fetchall()
        return [Finding.from_dict(json.loads(data)) for (data,) in rows]

    def count(self, q: FindingQuery = FindingQuery()) -> int:
        where, params = _where(q)
        with self._lock:
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM findings {where}", params).fetchone()
        return int(total)

    def active_counts(self) -> dict[tuple[str, Severity], int]:
        """Active findings by (check, severity band): what the gauges export."""
        with self._lock:
            rows = self._db.execute(
                "SELECT check_name, severity FROM findings WHERE status = 'active'"
            ).fetchall()
        counts: dict[tuple[str, Severity], int] = {}
        for check, score in rows:
            key = (str(check), Severity.of(float(score)))
            counts[key] = counts.get(key, 0) + 1
        return counts


def _where(q: FindingQuery) -> tuple[str, tuple[object, ...]]:
    clauses: list[str] = []
    params: list[object] = []
    if q.statuses:
        statuses = sorted(s.value for s in q.statuses)
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    for column, value in (
        ("type", q.type),
        ("source", q.source),
        ("check_name", q.check),
        ("resource", q.resource),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if q.min_severity is not None:
        clauses.append("severity >= ?")
        params.append(q.min_severity.floor)
    if q.since is not None:
        clauses.append("last_seen >= ?")
        params.append(q.since)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
