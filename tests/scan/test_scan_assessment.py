"""The scanner against real apps on loopback: every weakness planted in the weak app is found
with the right severity, the well-configured app yields nothing above informational, and the
precision and recall of the whole run are computed and printed."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from apps import PLANTED, Served, same_body_app, serve

from wafproxy.findings.model import Finding, Severity, Status
from wafproxy.findings.service import FindingsService
from wafproxy.findings.store import FindingStore
from wafproxy.scan.client import NotAllowed, ScanClient
from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.ports import port_spec
from wafproxy.scan.runner import ScanPlan, ScanResult, ScanSettings, run_scan
from wafproxy.scan.target import Endpoint

# true findings the planted Apache/2.4.49 banner and the CORS reflection also imply
ALSO_TRUE = {
    ("PACKAGE_VULNERABILITY", "CVE-2021-44790:apache-httpd"),
    ("PACKAGE_VULNERABILITY", "CVE-2023-25690:apache-httpd"),
    ("PACKAGE_VULNERABILITY", "CVE-2024-38476:apache-httpd"),
    ("CORS_MISCONFIGURATION", "cors:null-origin"),
}


async def scan(served: Served, advisories: AdvisoryDB, *ports: int, **kw: object) -> ScanResult:
    settings = ScanSettings(rate=0, ports=tuple(port_spec(p) for p in ports))
    plan = ScanPlan(served.url, Endpoint(served.url))
    return await run_scan(plan, settings, advisories, **kw)  # type: ignore[arg-type]


def above_informational(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.band is not Severity.INFORMATIONAL]


async def test_weak_app_every_planted_weakness_found_with_its_severity_and_good_app_clean(
    weak: Served, good: Served, extra_port: int, closed_port: int, advisories: AdvisoryDB
) -> None:
    weak_result = await scan(weak, advisories, extra_port, closed_port)
    good_result = await scan(good, advisories, closed_port)
    planted = {(t, s.format(port=extra_port)): band for t, s, band in PLANTED}
    found = {(f.type, f.subject): f for f in weak_result.findings}

    missing = sorted(set(planted) - set(found))
    wrong = {
        k: (found[k].band.value, b)
        for k, b in planted.items()
        if k in found and found[k].band.value != b
    }
    assert not missing, f"planted weaknesses not found: {missing}"
    assert not wrong, f"found with the wrong severity (got, want): {wrong}"

    weak_reported = above_informational(weak_result.findings)
    false_weak = [f for f in weak_reported if (f.type, f.subject) not in set(planted) | ALSO_TRUE]
    false_good = above_informational(good_result.findings)
    true_positives = len(weak_reported) - len(false_weak)
    precision = true_positives / (len(weak_reported) + len(false_good))
    recall = len(set(planted) & set(found)) / len(planted)
    print(
        f"\nscanner precision {precision:.2f} recall {recall:.2f} "
        f"({true_positives} true, {len(false_weak) + len(false_good)} false, "
        f"{len(missing)} missed)"
    )
    assert false_good == [], [f"{f.band.value} {f.type} {f.subject}" for f in false_good]
    assert false_weak == []
    assert precision == 1.0 and recall == 1.0
    assert weak_result.errors == {} and good_result.errors == {}


async def test_good_app_gets_an_a_plus_and_the_weak_app_an_f(
    weak: Served, good: Served, advisories: AdvisoryDB
) -> None:
    weak_grade = (await scan(weak, advisories)).grade
    good_grade = (await scan(good, advisories)).grade
    assert weak_grade is not None and good_grade is not None
    assert weak_grade["grade"] == "F" and weak_grade["score"] < 25
    assert good_grade["grade"] == "A+" and good_grade["score"] >= 100


async def test_soft_404_with_a_config_looking_page_everywhere_yields_no_exposed_path(
    advisories: AdvisoryDB,
) -> None:
    """The page matches the /.env signature on every path: only the baseline comparison can
    tell it is not a real .env file."""
    body = "APP_ENV=production\nDB_HOST=db\nLOG_LEVEL=info\n"
    async with serve(same_body_app(body)) as served:
        result = await scan(served, advisories)
    assert [f for f in result.findings if f.type == "EXPOSED_SENSITIVE_PATH"] == []


async def test_the_budget_stops_the_scan_and_leaves_unfinished_checks_open(
    weak: Served, advisories: AdvisoryDB
) -> None:
    plan = ScanPlan(weak.url, Endpoint(weak.url))
    result = await run_scan(plan, ScanSettings(budget=5, rate=0, ports=()), advisories)
    assert result.budget_exhausted and result.requests == 5
    assert "request budget exhausted" in result.errors.values()
    assert "sensitive_paths" not in result.completed


async def test_the_client_sends_only_safe_methods_to_allowed_hosts() -> None:
    client = ScanClient(["127.0.0.1"], budget=10, rate=0)
    try:
        with pytest.raises(NotAllowed):
            await client.fetch("PUT", "http://127.0.0.1:1/")
        with pytest.raises(NotAllowed):
            await client.fetch("GET", "http://127.0.0.2:1/")
        with pytest.raises(NotAllowed):
            await client.tcp_connect("localhost", 22)
    finally:
        await client.close()
    assert client.budget.used == 0


async def test_the_rate_limit_spaces_requests(good: Served, advisories: AdvisoryDB) -> None:
    client = ScanClient(["127.0.0.1"], budget=10, rate=50)
    loop_time = __import__("asyncio").get_running_loop().time
    begin = loop_time()
    try:
        for _ in range(6):
            assert await client.fetch("GET", good.url + "/") is not None
    finally:
        await client.close()
    assert loop_time() - begin >= 5 / 50 * 0.9


async def test_findings_fold_across_scans_and_close_when_fixed(
    tmp_path: Path, advisories: AdvisoryDB
) -> None:
    """Seen twice: one finding with count 2. Gone from a completed scan: closed. Back: active."""
    state = {"exposed": True}

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        if request.path == "/.git/HEAD" and state["exposed"]:
            return aiohttp.web.Response(text="ref: refs/heads/main\n")
        return aiohttp.web.Response(status=404, text="not found")

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    service = FindingsService(FindingStore(tmp_path / "f.db"))
    async with serve(app) as served:
        for _ in range(2):
            await scan(served, advisories, service=service)
        git = next(f for f in service.store.query() if f.subject == "path:/.git/HEAD")
        assert git.count == 2 and git.status is Status.ACTIVE
        state["exposed"] = False
        result = await scan(served, advisories, service=service)
        assert git.id in {f.id for f in result.closed}
        assert service.store.get(git.id).status is Status.CLOSED  # type: ignore[union-attr]
        state["exposed"] = True
        await scan(served, advisories, service=service)
    reopened = service.store.get(git.id)
    assert reopened is not None and reopened.status is Status.ACTIVE and reopened.count == 3
    service.store.close()
