"""The Finding value shared by the scanner (scan/) and the detectors (detect/).

A finding is identified by what it is about, not by when it was seen: ``finding_id(type,
resource, subject)`` is a stable hash, so a repeat of the same weakness or the same behaviour
folds into the existing finding (count and last_seen move on) instead of adding a row.

Severity is a score from 1.0 to 10.0, banded like CVSS v3 / GuardDuty / Inspector, with the
bottom of the scale kept for informational findings (CVSS's "none" has no place in a scale
that starts at 1.0):

    informational 1.0-1.9 | low 2.0-3.9 | medium 4.0-6.9 | high 7.0-8.9 | critical 9.0-10.0
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

MIN_SCORE = 1.0
MAX_SCORE = 10.0
MAX_EVIDENCE = 20
"""Evidence items kept per finding (the most recent ones): request ids, URLs, excerpts."""
MAX_TEXT = 4000


class Severity(enum.Enum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def of(cls, score: float) -> Severity:
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        if score >= 2.0:
            return cls.LOW
        return cls.INFORMATIONAL

    @property
    def floor(self) -> float:
        """The lowest score of the band (a ``min_severity`` filter compares scores to it)."""
        return _FLOORS[self]

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


_FLOORS = {
    Severity.INFORMATIONAL: 1.0,
    Severity.LOW: 2.0,
    Severity.MEDIUM: 4.0,
    Severity.HIGH: 7.0,
    Severity.CRITICAL: 9.0,
}


class Status(enum.Enum):
    ACTIVE = "active"
    SUPPRESSED = "suppressed"
    """A suppression rule matched: kept and updated, but out of alerts and active gauges."""
    ARCHIVED = "archived"
    """A person decided it needs no action; repeats keep folding into it without reopening it."""
    CLOSED = "closed"
    """A later scan no longer saw it (fixed). Seeing it again reopens it as active."""


def clamp_score(score: float) -> float:
    return round(min(MAX_SCORE, max(MIN_SCORE, float(score))), 1)


def finding_id(type_: str, resource: str, subject: str) -> str:
    """32 hex characters, like the tail of an Inspector finding ARN."""
    key = "\x00".join((type_, resource, subject)).encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class Finding:
    id: str
    type: str
    """Inspector style for scan findings (``EXPOSED_SENSITIVE_PATH``, ``PACKAGE_VULNERABILITY``,
    …); GuardDuty style for detections (``Recon:HTTP/PathProbe``)."""
    title: str
    description: str
    severity: float
    resource: str
    """What is affected: an upstream URL for scans, a route for detections."""
    subject: str
    """What about it: a path, a header, an advisory id, a client address."""
    source: str = "scan"
    """``scan`` or ``detect``: which sidecar produced it (scans close what they no longer see)."""
    check: str = ""
    """The registered check or detector name: a bounded set, used as a metric label."""
    count: int = 1
    first_seen: float = 0.0
    last_seen: float = 0.0
    evidence: tuple[str, ...] = ()
    remediation: str = ""
    status: Status = Status.ACTIVE
    details: Mapping[str, Any] = field(default_factory=dict)
    """Type-specific, JSON-serialisable (advisory id and versions, port, grade, …)."""

    @classmethod
    def new(
        cls,
        *,
        type: str,
        title: str,
        description: str,
        severity: float,
        resource: str,
        subject: str,
        source: str = "scan",
        check: str = "",
        evidence: Sequence[str] = (),
        remediation: str = "",
        details: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> Finding:
        moment = time.time() if now is None else now
        return cls(
            id=finding_id(type, resource, subject),
            type=type,
            title=title[:MAX_TEXT],
            description=description[:MAX_TEXT],
            severity=clamp_score(severity),
            resource=resource,
            subject=subject,
            source=source,
            check=check,
            first_seen=moment,
            last_seen=moment,
            evidence=_bounded(evidence),
            remediation=remediation[:MAX_TEXT],
            details=dict(details or {}),
        )

    @property
    def band(self) -> Severity:
        return Severity.of(self.severity)

    def folded(self, newer: Finding) -> Finding:
        """This finding with a newer observation of the same thing folded in.

        The newer observation's text, score and details win (a check may have learnt more);
        counts add up; a closed finding reopens; archived and suppressed stay as they are."""
        status = Status.ACTIVE if self.status is Status.CLOSED else self.status
        return replace(
            newer,
            count=self.count + newer.count,
            first_seen=min(self.first_seen, newer.first_seen),
            last_seen=max(self.last_seen, newer.last_seen),
            evidence=_bounded([*self.evidence, *newer.evidence]),
            status=status,
        )

    def with_status(self, status: Status) -> Finding:
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "severity": {"score": self.severity, "label": self.band.value},
            "resource": self.resource,
            "subject": self.subject,
            "source": self.source,
            "check": self.check,
            "count": self.count,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "evidence": list(self.evidence),
            "remediation": self.remediation,
            "status": self.status.value,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        severity = data["severity"]
        score = severity["score"] if isinstance(severity, Mapping) else severity
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            title=str(data["title"]),
            description=str(data.get("description", "")),
            severity=clamp_score(float(score)),
            resource=str(data["resource"]),
            subject=str(data.get("subject", "")),
            source=str(data.get("source", "scan")),
            check=str(data.get("check", "")),
            count=int(data.get("count", 1)),
            first_seen=parse_time(data.get("first_seen")),
            last_seen=parse_time(data.get("last_seen")),
            evidence=tuple(str(e) for e in data.get("evidence", ())),
            remediation=str(data.get("remediation", "")),
            status=Status(data.get("status", Status.ACTIVE.value)),
            details=dict(data.get("details", {})),
        )


def _bounded(evidence: Iterable[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(str(e)[:MAX_TEXT] for e in evidence))
    return tuple(unique[-MAX_EVIDENCE:])


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as AWS prints finding times."""
    seconds = int(epoch)
    millis = round((epoch - seconds) * 1000)
    if millis == 1000:
        seconds, millis = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_time(value: object) -> float:
    """Epoch seconds from an ``iso_time`` string or a number (0.0 for nothing)."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    import calendar

    text = str(value).rstrip("Z")
    whole, _, fraction = text.partition(".")
    base = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return base + (float(f"0.{fraction}") if fraction else 0.0)


def glob_match(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters; nothing else is special. Linear time (no regex on
    data that may come from requests)."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == text
    head, *middle, tail = parts
    if not text.startswith(head) or not text[len(head) :].endswith(tail):
        return False
    if len(head) + len(tail) > len(text):
        return False
    position = len(head)
    end = len(text) - len(tail)
    for piece in middle:
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True
