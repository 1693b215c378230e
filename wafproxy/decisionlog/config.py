"""The ``decision_log:`` settings and the filter deciding which verdicts are logged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from wafproxy.acl.model import ActionKind, Verdict


@dataclass(frozen=True)
class DecisionLogConfig:
    destination: str = "stdout"
    """``stdout``, ``off``, or a file path (size-rotated)."""
    max_bytes: int = 100 * 1024 * 1024
    """Rotate a file before it grows past this; 0 or less never rotates."""
    backup_count: int = 5
    """Rotated files kept (path.1 … path.N); 0 truncates the file instead of keeping one."""
    redact_headers: tuple[str, ...] = ("authorization", "cookie")
    redact_cookies: tuple[str, ...] = ()
    redact_query_args: tuple[str, ...] = ()
    actions: frozenset[str] = frozenset({"ALLOW", "BLOCK", "COUNT"})
    queue_size: int = 10_000

    @cached_property
    def redaction(self) -> Redaction:
        """The name lists lower-cased into sets once, not on every request."""
        return Redaction.of(self)

    @cached_property
    def wants_all(self) -> bool:
        return self.actions >= {kind.name for kind in ActionKind}

    def wants(self, verdict: Verdict) -> bool:
        """The action filter: the final action is listed, or COUNT is and a count rule matched."""
        if self.wants_all or verdict.action.name in self.actions:
            return True
        return "COUNT" in self.actions and any(
            m.action is ActionKind.COUNT for m in verdict.matches
        )


@dataclass(frozen=True)
class Redaction:
    headers: frozenset[str]
    cookies: frozenset[str]
    args: frozenset[str]
    header_json: dict[tuple[str, str], bytes] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    """Encoded ``{"name":…,"value":…}`` per header seen, for the line (http_request.py): kept
    with the redaction it was judged under, so a reload that redacts more starts afresh."""
    redacted_json: dict[str, bytes] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    """The same for redacted headers, by name as sent (their values are never kept)."""

    @classmethod
    def of(cls, config: DecisionLogConfig) -> Redaction:
        def lower(names: Sequence[str]) -> frozenset[str]:
            return frozenset(n.lower() for n in names)

        return cls(
            lower(config.redact_headers),
            lower(config.redact_cookies),
            lower(config.redact_query_args),
        )
