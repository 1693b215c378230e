"""Virtual patches and response-header hardening, end to end through a real wafproxy in front
of the weak app; and the WAF canaries through a proxy with the shipped default rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml
from apps import Served
from yarl import URL

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.testcases import load_test_file, run_test
from wafproxy.findings.model import Finding
from wafproxy.scan.cli import patch_tests_path
from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.patches import GROUP, propose_rules, render_rule_group, render_tests
from wafproxy.scan.report import Report
from wafproxy.scan.runner import ScanPlan, ScanResult, ScanSettings, run_scan
from wafproxy.scan.target import Endpoint

ACL_WITH_PATCHES = f"""\
web_acl: vp
default_action: allow
rules:
  - name: {GROUP}
    priority: 5
    override_action: none
    statement: {{rule_group: {{ref: {GROUP}}}}}
"""
ALLOW_ALL = "web_acl: open\ndefault_action: allow\nrules: []\n"


async def scan(
    url: str, advisories: AdvisoryDB, proxy: str | None = None, checks: set[str] | None = None
) -> ScanResult:
    endpoint = Endpoint(proxy) if proxy else None
    plan = ScanPlan(url, Endpoint(url), endpoint)
    settings = ScanSettings(rate=0, ports=(), checks=frozenset(checks) if checks else None)
    return await run_scan(plan, settings, advisories)


def write_patches(findings: tuple[Finding, ...], folder: Path, db: AdvisoryDB) -> Path:
    rules = propose_rules(findings, db.virtual_patches())
    path = folder / "patches.yaml"
    path.write_text(render_rule_group(rules))
    patch_tests_path(path).write_text(render_tests(rules, path.name))
    (folder / "acl.yaml").write_text(ACL_WITH_PATCHES)
    return path


def proxy_changes(
    upstream: str, rules: list[Path], acl: str | None, **route: Any
) -> dict[str, Any]:
    return {
        "upstreams": {"app": {"targets": [upstream]}},
        "rules": [str(p) for p in rules],
        "routes": [
            {
                "host": "*",
                "path_prefix": "/",
                "upstream": "app",
                **({"web_acl": acl} if acl else {}),
                **route,
            }
        ],
    }


async def status(session: aiohttp.ClientSession, url: str, method: str = "GET") -> int:
    async with session.request(method, URL(url, encoded=True), allow_redirects=False) as response:
        await response.read()
        return response.status


async def test_proposed_rules_compile_and_pass_their_own_rule_tests(
    weak: Served, advisories: AdvisoryDB, tmp_path: Path
) -> None:
    findings = (await scan(weak.url, advisories)).findings
    path = write_patches(findings, tmp_path, advisories)
    text = path.read_text()
    rule_set = load_rule_files([tmp_path / "acl.yaml", path])
    group = rule_set.acls["vp"]
    assert group is not None
    assert text.count("\n        action: count") == len(
        propose_rules(findings, advisories.virtual_patches())
    )
    for finding_kind in ("path:/.git/HEAD", "path:/.env", "method:TRACE", "CVE-2021-42013"):
        owner = next(f for f in findings if f.subject.startswith(finding_kind))
        assert f"# finding {owner.id}" in text, finding_kind
    tests = load_test_file(patch_tests_path(path))
    assert len(tests.tests) >= 6
    assert [run_test(tests, t) for t in tests.tests] == [[] for _ in tests.tests]


async def test_count_mode_lets_through_and_promoted_patches_block_end_to_end(
    weak: Served, advisories: AdvisoryDB, tmp_path: Path, start_proxy: Any
) -> None:
    findings = (await scan(weak.url, advisories)).findings
    path = write_patches(findings, tmp_path, advisories)
    acl = tmp_path / "acl.yaml"
    counting = await start_proxy(proxy_changes(weak.url, [acl, path], "vp"))
    promoted_file = tmp_path / "promoted.yaml"
    promoted_file.write_text(path.read_text().replace("action: count", "action: block"))
    blocking = await start_proxy(proxy_changes(weak.url, [acl, promoted_file], "vp"))
    probes = [
        ("GET", "/.git/HEAD"),
        ("GET", "/.git/config"),
        ("GET", "/.env"),
        ("TRACE", "/"),
        ("GET", "/static/"),
        ("GET", "/cgi-bin/.%2e/.%2e/etc/passwd"),
    ]
    async with aiohttp.ClientSession() as session:
        for method, target in [p for p in probes[:5] if p[1] != "/.git/config"]:
            assert await status(session, weak.url + target, method) == 200, target
            assert await status(session, counting.url + target, method) == 200, target
        for method, target in probes:
            assert await status(session, blocking.url + target, method) == 403, target
        assert await status(session, blocking.url + "/") == 200
        assert await status(session, blocking.url + "/static/logo.txt") == 200
    # the scan through the blocking proxy now reports those weaknesses as mitigated
    result = await scan(weak.url, advisories, proxy=blocking.url)
    by_subject = {f.subject: f for f in result.findings}
    for subject in ("path:/.git/HEAD", "path:/.env", "method:TRACE", "listing:/static/"):
        assert by_subject[subject].details["mitigated_by_proxy"] is True, subject
    assert by_subject["header:content-security-policy"].details["mitigated_by_proxy"] is False
    assert propose_rules(result.findings) == [] or all(
        r.finding.subject not in ("path:/.git/HEAD", "method:TRACE")
        for r in propose_rules(result.findings)
    )


async def test_the_response_headers_route_option_fixes_the_header_findings(
    weak: Served, advisories: AdvisoryDB, tmp_path: Path, start_proxy: Any
) -> None:
    direct = await scan(weak.url, advisories, checks={"security_headers", "version_banners"})
    option = Report((direct,)).hardening()[weak.url].as_route_option()
    option["add"]["Content-Type"] = "application/x-never"  # the app's own value must win
    allow = tmp_path / "open.yaml"
    allow.write_text(ALLOW_ALL)
    proxy = await start_proxy(proxy_changes(weak.url, [allow], "open", response_headers=option))
    async with aiohttp.ClientSession() as session, session.get(proxy.url + "/") as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors" in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Server"] == "wafproxy"  # the Apache banner is gone
    via = await scan(
        weak.url, advisories, proxy=proxy.url, checks={"security_headers", "version_banners"}
    )
    header_findings = [
        f
        for f in via.findings
        if f.subject.startswith(("header:", "banner:")) and f.band.value not in ("informational",)
    ]
    unmitigated = [f.subject for f in header_findings if not f.details["mitigated_by_proxy"]]
    assert header_findings and unmitigated == []
    grade = via.grade
    assert grade is not None and grade["grade"] == "F"
    through_proxy = grade["via_proxy"]["details"]
    assert through_proxy["grade"] == "B-" and through_proxy["score"] == 65  # cookies remain


def lets_through(acl: Any) -> list[str]:
    """The canaries ``acl`` does not block, asked of the engine."""
    from wafproxy.acl.engine import evaluate
    from wafproxy.rawhttp import build_request
    from wafproxy.scan.checks.network import CANARIES
    from wafproxy.scan.client import DEFAULT_HEADERS

    through = []
    for name, path, headers, _ in CANARIES:
        given = {n.lower() for n, _ in headers}
        sent = [("Host", "app"), *[(n, v) for n, v in DEFAULT_HEADERS if n.lower() not in given]]
        if not evaluate(acl, build_request("GET", path, [*sent, *headers])).blocked:
            through.append(f"canary:{name}")
    return sorted(through)


async def test_waf_canaries_through_the_default_rules(
    weak: Served, advisories: AdvisoryDB, start_proxy: Any
) -> None:
    """End to end, the scan reports exactly the canaries the default ACL lets through; the
    core injection classes are always blocked."""
    proxy = await start_proxy(proxy_changes(weak.url, [], None))
    result = await scan(weak.url, advisories, proxy=proxy.url, checks={"waf_canaries"})
    assert "waf_canaries" in result.completed
    reported = sorted(f.subject for f in result.findings)
    (route,) = proxy.server.ref.current.runtime.routes
    assert route.acl.name == "default"
    assert reported == lets_through(route.acl)
    assert not {"canary:sqli", "canary:xss", "canary:path_traversal"} & set(reported)


async def test_waf_canaries_through_an_open_acl_are_findings_with_patches_that_block(
    weak: Served, advisories: AdvisoryDB, start_proxy: Any, tmp_path: Path
) -> None:
    allow = tmp_path / "open.yaml"
    allow.write_text(ALLOW_ALL)
    proxy = await start_proxy(proxy_changes(weak.url, [allow], "open"))
    result = await scan(weak.url, advisories, proxy=proxy.url, checks={"waf_canaries"})
    subjects = sorted(f.subject for f in result.findings)
    assert subjects == [
        "canary:lfi",
        "canary:path_traversal",
        "canary:scanner_user_agent",
        "canary:sqli",
        "canary:xss",
    ]
    assert all(f.type == "WAF_EFFICACY" and f.band.value == "medium" for f in result.findings)
    path = write_patches(result.findings, tmp_path, advisories)
    promoted = tmp_path / "promoted.yaml"
    promoted.write_text(path.read_text().replace("action: count", "action: block"))
    patched = await start_proxy(proxy_changes(weak.url, [tmp_path / "acl.yaml", promoted], "vp"))
    again = await scan(weak.url, advisories, proxy=patched.url, checks={"waf_canaries"})
    assert again.findings == ()
    data = yaml.safe_load(path.read_text())
    assert len(data["rule_groups"][GROUP]["rules"]) == 5
