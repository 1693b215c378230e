"""Scheduled scans inside a running proxy, the admin API for findings and reports, the scan
and findings config sections, and the plans the scheduler makes from the routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apps import Served

from wafproxy.config.load import parse_service_config
from wafproxy.config.source import parse
from wafproxy.errors import ConfigError, ConfigErrors
from wafproxy.scan.config import CHECK_NAMES, parse_duration, parse_scan
from wafproxy.scan.registry import CHECKS
from wafproxy.scan.scheduler import plans_for

TOKEN = "s3cret-token"


def scan_changes(upstream: str, tmp_path: Path, **scan: Any) -> dict[str, Any]:
    (tmp_path / "open.yaml").write_text("web_acl: open\ndefault_action: allow\nrules: []\n")
    return {
        "upstreams": {"app": {"targets": [upstream]}},
        "rules": [str(tmp_path / "open.yaml")],
        "routes": [{"host": "*", "path_prefix": "/", "upstream": "app", "web_acl": "open"}],
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "findings": {"store": str(tmp_path / "findings.db")},
        "scan": {
            "enabled": True,
            "initial_delay": 0,
            "jitter": 0,
            "interval": 3600,
            "rate": 1000,
            "ports": [],
            "advisory_db": str(tmp_path / "osv"),
            **scan,
        },
    }


async def wait_round(proxy: Any, timeout: float = 20.0) -> None:
    scanner = proxy.server.sidecars.scanner
    deadline = asyncio.get_running_loop().time() + timeout
    while scanner.rounds < 1:
        assert asyncio.get_running_loop().time() < deadline, "no scan round finished"
        await asyncio.sleep(0.05)


async def test_a_running_proxy_scans_its_upstream_and_serves_findings_to_the_admin(
    weak: Served, tmp_path: Path, start_proxy: Any
) -> None:
    proxy = await start_proxy(scan_changes(weak.url, tmp_path))
    await wait_round(proxy)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.admin_url + "/findings") as response:
            assert response.status == 401
        query = "/findings?severity=high&type=EXPOSED_SENSITIVE_PATH"
        async with session.get(proxy.admin_url + query, headers=auth) as response:
            data = await response.json()
        subjects = {f["subject"] for f in data["findings"]}
        assert subjects == {"path:/.git/HEAD", "path:/.env"} and data["total"] == 2
        git = next(f for f in data["findings"] if f["subject"] == "path:/.git/HEAD")
        assert git["details"]["seen_direct"] and git["details"]["seen_via_proxy"]
        assert git["details"]["mitigated_by_proxy"] is False
        async with session.post(
            f"{proxy.admin_url}/findings/{git['id']}/archive", headers=auth
        ) as response:
            assert (await response.json())["status"] == "archived"
        async with session.get(
            proxy.admin_url + "/findings?status=archived", headers=auth
        ) as response:
            assert [f["id"] for f in (await response.json())["findings"]] == [git["id"]]
        async with session.post(
            f"{proxy.admin_url}/findings/{git['id']}/unarchive", headers=auth
        ) as response:
            assert (await response.json())["status"] == "active"
        async with session.get(f"{proxy.admin_url}/findings/nope", headers=auth) as response:
            assert response.status == 404
        async with session.get(proxy.admin_url + "/findings?limit=0", headers=auth) as response:
            assert response.status == 400
        for fmt, kind in (
            ("json", "application/json"),
            ("sarif", "application/sarif+json"),
            ("html", "text/html"),
        ):
            async with session.get(
                f"{proxy.admin_url}/scan/report?format={fmt}", headers=auth
            ) as response:
                assert response.status == 200 and response.content_type == kind
        async with session.get(proxy.admin_url + "/metrics", headers=auth) as response:
            metrics = await response.text()
    assert 'wafproxy_findings_active{check="sensitive_paths",severity="critical"} 1.0' in metrics
    assert 'wafproxy_scan_runs_total{result="ok"} 1.0' in metrics
    # the round ran direct and through the proxy's own listener, with the WAF canaries
    report = proxy.server.sidecars.scanner.last_report
    (result,) = report.results
    assert result.plan.proxy is not None and result.plan.proxy.port == proxy.port
    assert "waf_canaries" in result.completed


async def test_scan_run_endpoint_and_disabled_scans(
    good: Served, tmp_path: Path, start_proxy: Any
) -> None:
    proxy = await start_proxy(scan_changes(good.url, tmp_path, initial_delay=3600))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.admin_url + "/scan/report", headers=auth) as response:
            assert response.status == 404
        async with session.post(proxy.admin_url + "/scan/run", headers=auth) as response:
            data = await response.json()
    assert data["scans"][0]["resource"] == good.url
    assert all(
        f["severity"]["label"] == "informational"
        for f in data["findings"]
        if f["type"] != "WAF_EFFICACY"
    )
    plain = await start_proxy({"upstreams": {"app": {"targets": [good.url]}}})
    assert plain.server.sidecars.scanner is None and plain.server.sidecars.findings is None


def test_plans_one_per_target_with_the_routes_host_and_prefix(tmp_path: Path) -> None:
    (tmp_path / "open.yaml").write_text("web_acl: open\ndefault_action: allow\nrules: []\n")
    config = parse_service_config(
        """\
rules: [RULES]
listeners: ["127.0.0.1:8080"]
routes:
  - {host: shop.example, path_prefix: /shop/, upstream: shop}
  - {host: "*", upstream: api}
  - {host: "*", upstream: shop}
upstreams:
  shop: {targets: ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]}
  api: {targets: ["https://127.0.0.1:9443"]}
""".replace("RULES", str(tmp_path / "open.yaml"))
    )
    from wafproxy.config.runtime import build_runtime

    plans = plans_for(build_runtime(config), ("http", "0.0.0.0", 8080), [8080])
    assert [p.resource for p in plans] == [
        "http://127.0.0.1:9001",
        "http://127.0.0.1:9002",
        "https://127.0.0.1:9443",
    ]
    shop = plans[0].proxy
    assert shop is not None and shop.base_url == "http://127.0.0.1:8080"
    assert (shop.base_path, shop.host_header) == ("/shop/", "shop.example")
    assert plans[2].proxy is not None and plans[2].proxy.host_header is None
    assert plans_for(build_runtime(config), None)[0].proxy is None


def test_scan_section_parses_with_defaults_and_durations(tmp_path: Path) -> None:
    node = parse(
        """\
enabled: true
interval: 6h
jitter: 15m
budget: 50
ports: [22, {port: 8081, service: admin console, severity: 7.5}]
checks: {tls: false}
tls_ca_file: ca.pem
""",
        "wafproxy.yaml",
    )
    config = parse_scan(node, tmp_path)
    assert (config.interval, config.jitter, config.budget) == (21600, 900, 50)
    assert [(p.port, p.service, p.severity) for p in config.ports] == [
        (22, "SSH", 4.0),
        (8081, "admin console", 7.5),
    ]
    assert "tls" not in config.enabled_checks() and "cors" in config.enabled_checks()
    assert config.tls_ca_file == tmp_path / "ca.pem"
    assert parse_duration(parse("90")) == 90 and parse_duration(parse("1d")) == 86400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interval: 10", "at least 60 seconds"),
        ("interval: soon", "a duration like"),
        ("checks: {tsl: false}", "unknown check 'tsl'; did you mean 'tls'?"),
        ("ports: [70000]", "an integer from 1 to 65535"),
        ("rate: 0", "a number >= 0.1"),
        ("budgt: 3", "did you mean 'budget'?"),
    ],
)
def test_scan_section_errors_say_where(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_scan(parse(text, "wafproxy.yaml"), tmp_path)
    assert str(info.value).startswith("wafproxy.yaml:1:")


def test_service_config_reports_scan_and_route_option_errors_with_positions() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_service_config(
            """\
listeners: ["127.0.0.1:8080"]
routes:
  - upstream: app
    response_headers: {add: {"Bad Name": x}, remove: [Server]}
upstreams: {app: {targets: ["http://127.0.0.1:9000"]}}
scan: {enabled: maybe}
""",
            "svc.yaml",
        )
    text = str(info.value)
    assert "svc.yaml:4:" in text and "expected a header name" in text
    assert "svc.yaml:6:17: scan.enabled: expected true or false" in text


def test_route_response_headers_parse() -> None:
    config = parse_service_config("""\
listeners: ["127.0.0.1:8080"]
routes:
  - upstream: app
    response_headers: {add: {X-Content-Type-Options: nosniff}, remove: [Server, X-Powered-By]}
upstreams: {app: {targets: ["http://127.0.0.1:9000"]}}
""")
    option = config.routes[0].response_headers
    assert option.add == (("X-Content-Type-Options", "nosniff"),)
    assert option.remove == ("Server", "X-Powered-By")


def test_the_config_knows_every_registered_check() -> None:
    assert set(CHECK_NAMES) == set(CHECKS.names())
