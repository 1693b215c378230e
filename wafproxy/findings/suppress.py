"""Suppression rules: findings someone has decided to live with, matched by glob patterns.

A suppressed finding is still recorded and still folds repeats (so un-suppressing shows its
real history); it only leaves the active views, the alerting sinks and the active gauges.
Like Inspector's suppression rules, a rule applies to findings as they are recorded, new and
old alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wafproxy.findings.model import Finding, Severity, glob_match


@dataclass(frozen=True)
class SuppressionRule:
    name: str
    reason: str = ""
    type: str = "*"
    resource: str = "*"
    subject: str = "*"
    check: str = "*"
    max_severity: Severity | None = None
    """Suppress only findings in this band or below (a worse one still alerts)."""
    until: float | None = None
    """Epoch seconds after which the rule no longer applies (a temporary exception)."""

    def matches(self, finding: Finding, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.max_severity is not None and finding.band.rank > self.max_severity.rank:
            return False
        return (
            glob_match(self.type, finding.type)
            and glob_match(self.resource, finding.resource)
            and glob_match(self.subject, finding.subject)
            and glob_match(self.check, finding.check)
        )


def suppressed_by(
    finding: Finding, rules: Sequence[SuppressionRule], now: float
) -> SuppressionRule | None:
    return next((rule for rule in rules if rule.matches(finding, now)), None)
