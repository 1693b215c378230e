"""CHECKS: name -> ``async def check(target) -> list[Finding]``.

Every check's docstring has a one-line summary and three paragraphs, ``Looks for:``,
``Why it matters:`` and ``How to fix:``; docs/scan.md is generated from them and a test keeps
it current.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wafproxy.findings.model import Finding
from wafproxy.registry import Registry
from wafproxy.scan.target import ScanTarget

Check = Callable[[ScanTarget], Awaitable[list[Finding]]]
CHECKS: Registry[Check] = Registry("check")
SECTIONS = ("Looks for:", "Why it matters:", "How to fix:")


class Scope(enum.Enum):
    HTTP = "http"
    """Run directly against the upstream and again through the proxy."""
    HOST = "host"
    """About the upstream host itself (ports, TLS): direct only."""
    PROXY = "proxy"
    """About the proxy in front (WAF canaries): through the proxy only."""


SCOPES: dict[str, Scope] = {}


def check(name: str, scope: Scope = Scope.HTTP) -> Callable[[Check], Check]:
    def add(fn: Check) -> Check:
        CHECKS.add(name, fn)
        SCOPES[name] = scope
        return fn

    return add


@dataclass(frozen=True)
class CheckDoc:
    name: str
    summary: str
    looks_for: str
    why: str
    fix: str
    scope: Scope


def check_doc(name: str) -> CheckDoc:
    doc = inspect.getdoc(CHECKS[name]) or ""
    summary, _, rest = doc.partition("\n")
    parts: dict[str, list[str]] = {s: [] for s in SECTIONS}
    current: str | None = None
    for line in rest.splitlines():
        stripped = line.strip()
        head = next((s for s in SECTIONS if stripped.startswith(s)), None)
        if head is not None:
            current = head
            stripped = stripped[len(head) :].strip()
        if current is not None and stripped:
            parts[current].append(stripped)
    looks, why, fix = (" ".join(parts[s]) for s in SECTIONS)
    return CheckDoc(name, summary.strip(), looks, why, fix, SCOPES[name])
