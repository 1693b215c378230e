"""``wafproxy scan`` and ``wafproxy scan update-db``: the parser here imports only argparse;
the commands import the scanner when they run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wafproxy.errors import WafProxyError

if TYPE_CHECKING:
    from wafproxy.config.model import ServiceConfig
    from wafproxy.findings.service import FindingsService
    from wafproxy.scan.config import ScanConfig
    from wafproxy.scan.osv import AdvisoryDB
    from wafproxy.scan.report import Report
    from wafproxy.scan.runner import ScanPlan

SEVERITIES = ("informational", "low", "medium", "high", "critical")


def add_scan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="assess the upstream apps (headers, exposed paths, known vulnerabilities, …)",
        description="Scan --target URLs (or every upstream of -c CONFIG) with safe requests only "
        "(GET, HEAD, OPTIONS, TRACE), within a request budget and rate limit, and print a report. "
        "With --proxy (or --via-proxy and -c) each target is also scanned through the proxy, so "
        "findings tell what the WAF already mitigates and WAF canaries run.",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="URL",
        help="a URL to scan (repeatable); its host is allowed explicitly",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service config: scan its upstreams and use its scan: and findings: sections",
    )
    p.add_argument(
        "--proxy", metavar="URL", help="also scan through this proxy URL (with a single --target)"
    )
    p.add_argument(
        "--via-proxy",
        action="store_true",
        help="with -c: also scan through the config's first listener",
    )
    p.add_argument(
        "--format",
        choices=["json", "sarif", "html"],
        default="json",
        help="report format (default: %(default)s)",
    )
    p.add_argument("-o", "--output", type=Path, help="write the report here (default: stdout)")
    p.add_argument(
        "--propose-rules",
        type=Path,
        metavar="FILE",
        help="write virtual-patch rules (a rule group in count mode) to FILE and "
        "their tests to FILE's .tests.yaml",
    )
    p.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        help="record findings in this SQLite store (default with -c: the config's)",
    )
    p.add_argument("--budget", type=int, metavar="N", help="requests per target")
    p.add_argument("--rate", type=float, metavar="R", help="requests per second")
    p.add_argument(
        "--ports",
        metavar="LIST",
        help="comma-separated TCP ports to probe "
        "(default: the risky-ports list; 'none' for no probes)",
    )
    p.add_argument("--checks", metavar="LIST", help="comma-separated checks to run (default: all)")
    p.add_argument("--tls-ca-file", type=Path, metavar="PEM", help="extra CA for the tls check")
    p.add_argument(
        "--advisory-db",
        type=Path,
        metavar="DIR",
        help="local OSV database directory (default: the config's or ~/.local/share/wafproxy/osv)",
    )
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit with status 3 when an active finding is this severe or worse",
    )
    p.set_defaults(func=cmd_scan)
    actions = p.add_subparsers(title="scan commands", metavar="COMMAND")
    db = actions.add_parser(
        "update-db",
        help="add OSV advisories to the local advisory database",
        description="Validate OSV JSON documents (files, directories of *.json, or an OSV "
        "ecosystem export all.zip) and store them in the local database directory; a newer "
        "'modified' replaces an older copy of the same id.",
    )
    db.add_argument("files", nargs="+", type=Path, metavar="FILE")
    db.add_argument(
        "--db",
        type=Path,
        metavar="DIR",
        help="database directory (default: ~/.local/share/wafproxy/osv)",
    )
    db.set_defaults(func=cmd_update_db)


# -- update-db -------------------------------------------------------------------------------------
def cmd_update_db(args: argparse.Namespace) -> int:
    from wafproxy.scan.osv import default_db_dir, update_db

    directory = args.db or default_db_dir()
    result = update_db(args.files, directory)
    for problem in result.invalid:
        print(f"skipped {problem}", file=sys.stderr)
    print(
        f"{directory}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.invalid)} invalid"
    )
    return 1 if result.invalid and not (result.added or result.updated or result.unchanged) else 0


# -- scan ------------------------------------------------------------------------------------------
def cmd_scan(args: argparse.Namespace) -> int:
    if not args.target and args.config is None:
        raise WafProxyError("give --target URL (repeatable) or -c CONFIG")
    if args.proxy and len(args.target) != 1:
        raise WafProxyError("--proxy needs exactly one --target")
    return asyncio.run(_scan(args))


async def _scan(args: argparse.Namespace) -> int:
    from wafproxy.findings.model import Severity
    from wafproxy.scan.osv import AdvisoryDB, default_db_dir
    from wafproxy.scan.report import Report
    from wafproxy.scan.runner import ScanSettings, run_scan

    config = _load_config(args.config)
    scan_config = _scan_config(args, config)
    settings = ScanSettings.of(scan_config)
    if args.target:
        hosts = tuple(urlsplit(t).hostname or "" for t in args.target)
        settings = ScanSettings(**{**settings.__dict__, "extra_allowed_hosts": hosts})
    db_dir = args.advisory_db or scan_config.advisory_db or default_db_dir()
    db = await asyncio.to_thread(AdvisoryDB.load, [db_dir])
    service = await _service(args, config)
    try:
        results = [await run_scan(p, settings, db, service) for p in _plans(args, config)]
    finally:
        if service is not None:
            await asyncio.to_thread(service.store.close)
    report = Report(tuple(results))
    _write_report(args, report, db)
    if args.propose_rules is not None:
        _write_rules(args.propose_rules, report, db)
    if args.fail_on is not None:
        floor = Severity(args.fail_on)
        if any(f.band.rank >= floor.rank and f.status.value == "active" for f in report.findings):
            return 3
    return 0


def _load_config(path: Path | None) -> ServiceConfig | None:
    if path is None:
        return None
    from wafproxy.config.load import load_service_config

    return load_service_config(path)


def _scan_config(args: argparse.Namespace, config: ServiceConfig | None) -> ScanConfig:
    from dataclasses import replace

    from wafproxy.scan.config import CHECK_NAMES, ScanConfig
    from wafproxy.scan.ports import port_spec

    scan = config.scan if config is not None else ScanConfig()
    changes: dict[str, object] = {}
    if args.budget is not None:
        changes["budget"] = max(1, args.budget)
    if args.rate is not None:
        changes["rate"] = args.rate
    if args.tls_ca_file is not None:
        changes["tls_ca_file"] = args.tls_ca_file
    if args.ports is not None:
        text = args.ports.strip().lower()
        numbers = [] if text == "none" else [p for p in text.split(",") if p.strip()]
        if not all(n.strip().isdigit() and 0 < int(n) < 65536 for n in numbers):
            raise WafProxyError(f"--ports: expected port numbers or 'none', got {args.ports!r}")
        changes["ports"] = tuple(port_spec(int(n)) for n in numbers)
    if args.checks is not None:
        wanted = {c.strip() for c in args.checks.split(",") if c.strip()}
        unknown = sorted(wanted - set(CHECK_NAMES))
        if unknown:
            raise WafProxyError(
                f"--checks: unknown {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}"
            )
        changes["checks"] = {name: name in wanted for name in CHECK_NAMES}
    return replace(scan, **changes)  # type: ignore[arg-type]


def _plans(args: argparse.Namespace, config: ServiceConfig | None) -> list[ScanPlan]:
    from wafproxy.config.runtime import build_runtime
    from wafproxy.scan.scheduler import plans_for

    if args.target:
        return [_target_plan(url, args.proxy) for url in args.target]
    assert config is not None
    proxy = None
    if args.via_proxy:
        first = config.listeners[0]
        proxy = ("http", first.host, first.port)
    return plans_for(build_runtime(config), proxy)


def _target_plan(url: str, proxy: str | None) -> ScanPlan:
    from wafproxy.scan.runner import ScanPlan
    from wafproxy.scan.target import Endpoint

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WafProxyError(f"--target: expected an http(s) URL, got {url!r}")
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    proxy_endpoint = None
    if proxy:
        pp = urlsplit(proxy)
        if pp.scheme not in ("http", "https") or not pp.hostname:
            raise WafProxyError(f"--proxy: expected an http(s) URL, got {proxy!r}")
        proxy_endpoint = Endpoint(f"{pp.scheme}://{pp.netloc}", path, parts.netloc)
    return ScanPlan(resource=base, direct=Endpoint(base, path), proxy=proxy_endpoint)


async def _service(
    args: argparse.Namespace, config: ServiceConfig | None
) -> FindingsService | None:
    from wafproxy.findings.config import FindingsConfig
    from wafproxy.findings.service import build_service

    if args.store is not None:
        chosen = FindingsConfig(store=str(args.store))
    elif config is not None and config.findings is not None:
        chosen = config.findings
    elif config is not None and config.path is not None:
        chosen = FindingsConfig(store=str(config.path.parent / "findings.db"))
    else:
        return None
    return await asyncio.to_thread(build_service, chosen, None)


def _write_report(args: argparse.Namespace, report: Report, db: AdvisoryDB) -> None:
    from wafproxy.scan.html import render_html
    from wafproxy.scan.patches import propose_rules
    from wafproxy.scan.report import render_json, render_sarif

    if args.format == "sarif":
        text = render_sarif(report)
    elif args.format == "html":
        rules = tuple(propose_rules(report.findings, db.virtual_patches()))
        text = render_html(report, rules, report.hardening())
    else:
        text = render_json(report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(report.findings)} findings)", file=sys.stderr)


def patch_tests_path(rule_file: Path) -> Path:
    stem = rule_file.name.removesuffix(".yaml").removesuffix(".yml")
    return rule_file.with_name(f"{stem}.tests.yaml")


def _write_rules(path: Path, report: Report, db: AdvisoryDB) -> None:
    from wafproxy.scan.patches import propose_rules, render_rule_group, render_tests

    rules = propose_rules(report.findings, db.virtual_patches())
    path.write_text(render_rule_group(rules, hardening=report.hardening()), encoding="utf-8")
    written = [str(path)]
    if rules:
        tests = patch_tests_path(path)
        tests.write_text(render_tests(rules, path.name), encoding="utf-8")
        written.append(str(tests))
    print(
        f"wrote {' and '.join(written)}: {len(rules)} virtual patch rule(s) in count mode",
        file=sys.stderr,
    )
