"""One scan of one resource: run the checks directly and through the proxy, merge, record.

A finding seen directly but not through the proxy (by a check that completed both ways) is
marked ``mitigated_by_proxy``: the WAF or a response-header option already hides it. Checks
that failed or ran out of budget do not close earlier findings: only a completed check's
silence means "fixed".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wafproxy.findings.model import Finding
from wafproxy.findings.service import FindingsService
from wafproxy.scan import checks as _checks  # noqa: F401 - fills CHECKS
from wafproxy.scan.client import BudgetExhausted, ScanClient
from wafproxy.scan.config import ScanConfig
from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.ports import RISKY_PORTS, PortSpec
from wafproxy.scan.registry import CHECKS, SCOPES, Scope
from wafproxy.scan.target import Endpoint, ScanTarget, Via

log = logging.getLogger("wafproxy.scan")
CHECK_TIMEOUT = 120.0


@dataclass(frozen=True)
class ScanSettings:
    budget: int = 500
    """Requests (HTTP requests, TCP connects, TLS handshakes) per scan of one resource."""
    rate: float = 10.0
    """Requests per second."""
    timeout: float = 10.0
    checks: frozenset[str] | None = None
    """None: every registered check."""
    ports: tuple[PortSpec, ...] = RISKY_PORTS
    tls_ca_file: Path | None = None
    extra_allowed_hosts: tuple[str, ...] = ()

    def enabled(self) -> list[str]:
        return [n for n in CHECKS.names() if self.checks is None or n in self.checks]

    @classmethod
    def of(cls, config: ScanConfig) -> ScanSettings:
        return cls(
            budget=config.budget,
            rate=config.rate,
            timeout=config.timeout,
            checks=config.enabled_checks(),
            ports=config.ports,
            tls_ca_file=config.tls_ca_file,
        )


@dataclass(frozen=True)
class ScanPlan:
    resource: str
    direct: Endpoint | None
    proxy: Endpoint | None = None
    skip_ports: frozenset[int] = frozenset()

    def hosts(self) -> list[str]:
        return [e.host for e in (self.direct, self.proxy) if e is not None]


@dataclass(frozen=True)
class ScanResult:
    plan: ScanPlan
    findings: tuple[Finding, ...]
    started: float
    finished: float
    requests: int
    budget: int
    budget_exhausted: bool
    completed: frozenset[str]
    errors: dict[str, str] = field(default_factory=dict)
    closed: tuple[Finding, ...] = ()

    @property
    def grade(self) -> dict[str, Any] | None:
        for finding in self.findings:
            if finding.check == "security_headers" and finding.subject == "grade":
                return dict(finding.details)
        return None


async def run_scan(
    plan: ScanPlan,
    settings: ScanSettings,
    advisories: AdvisoryDB,
    service: FindingsService | None = None,
) -> ScanResult:
    started = time.time()
    client = ScanClient(
        [*plan.hosts(), *settings.extra_allowed_hosts],
        budget=settings.budget,
        rate=settings.rate,
        timeout=settings.timeout,
    )
    options: dict[str, Any] = {"advisories": advisories, "tls_ca_file": settings.tls_ca_file}
    runs: dict[Via, tuple[list[Finding], set[str], dict[str, str]]] = {}
    try:
        for via, endpoint in ((Via.DIRECT, plan.direct), (Via.PROXY, plan.proxy)):
            if endpoint is None:
                continue
            target = ScanTarget(plan.resource, endpoint, client, via, settings.ports,
                                plan.skip_ports, options)  # fmt: skip
            runs[via] = await _run_checks(target, _for_via(settings.enabled(), via))
    finally:
        await client.close()
    findings, completed, errors = _merge(runs)
    closed: tuple[Finding, ...] = ()
    if service is not None:
        recorded = await service.publish(findings)
        findings = list(recorded.findings)
        closed = tuple(await service.close_missing("scan", plan.resource, completed,
                                                   [f.id for f in findings]))  # fmt: skip
    return ScanResult(
        plan=plan,
        findings=tuple(sorted(findings, key=lambda f: (-f.severity, f.type, f.subject))),
        started=started,
        finished=time.time(),
        requests=client.budget.used,
        budget=settings.budget,
        budget_exhausted=client.budget.exhausted,
        completed=frozenset(completed),
        errors=errors,
        closed=closed,
    )


def _for_via(names: Sequence[str], via: Via) -> list[str]:
    wanted = {Via.DIRECT: (Scope.HTTP, Scope.HOST), Via.PROXY: (Scope.HTTP, Scope.PROXY)}[via]
    return [n for n in names if SCOPES[n] in wanted]


async def _run_checks(
    target: ScanTarget, names: Sequence[str]
) -> tuple[list[Finding], set[str], dict[str, str]]:
    found: list[Finding] = []
    completed: set[str] = set()
    errors: dict[str, str] = {}
    for name in names:
        try:
            found.extend(await asyncio.wait_for(CHECKS[name](target), CHECK_TIMEOUT))
        except BudgetExhausted:
            errors[name] = "request budget exhausted"
            continue
        except TimeoutError:
            errors[name] = f"timed out after {CHECK_TIMEOUT:.0f}s"
            continue
        except Exception as exc:  # one broken check must not end the scan
            log.exception("check %s failed on %s", name, target.endpoint.base_url)
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        completed.add(name)
    return found, completed, errors


def _mitigated(direct: Finding | None, proxied: Finding | None, proxy_ran: bool) -> bool:
    """Seen directly, and through the proxy not at all or in a lower severity band."""
    if direct is None or not proxy_ran:
        return False
    return proxied is None or proxied.band.rank < direct.band.rank


def _merge(
    runs: dict[Via, tuple[list[Finding], set[str], dict[str, str]]],
) -> tuple[list[Finding], set[str], dict[str, str]]:
    direct, direct_done, direct_errors = runs.get(Via.DIRECT, ([], set(), {}))
    proxied, proxy_done, proxy_errors = runs.get(Via.PROXY, ([], set(), {}))
    by_direct = {f.id: f for f in direct}
    by_proxy = {f.id: f for f in proxied}
    merged: list[Finding] = []
    for fid in dict.fromkeys([*by_direct, *by_proxy]):
        d, p = by_direct.get(fid), by_proxy.get(fid)
        base = d or p
        assert base is not None
        details = dict(base.details)
        details["seen_direct"] = d is not None
        details["seen_via_proxy"] = p is not None
        details["mitigated_by_proxy"] = _mitigated(d, p, base.check in proxy_done)
        if d is not None and p is not None and d.details != p.details:
            details["via_proxy"] = {"title": p.title, "severity": p.severity,
                                    "details": dict(p.details)}  # fmt: skip
        evidence = [*base.evidence, *(p.evidence if d is not None and p is not None else ())]
        merged.append(replace(base, details=details, evidence=tuple(dict.fromkeys(evidence))))
    failed = set(direct_errors) | set(proxy_errors)
    completed = (direct_done | proxy_done) - failed
    errors = {**{f"{k} (via proxy)": v for k, v in proxy_errors.items()}, **direct_errors}
    return merged, completed, errors
