"""``wafproxy findings list|show|archive|unarchive|sample``: read and triage the findings store
(``sample`` writes one clearly marked sample finding of every detection type)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wafproxy.errors import WafProxyError

if TYPE_CHECKING:
    from wafproxy.findings.model import Finding
    from wafproxy.findings.store import Store

SEVERITIES = ("informational", "low", "medium", "high", "critical")
STATUSES = ("active", "suppressed", "archived", "closed")


def _store_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("-c", "--config", type=Path, help="service config (its findings store)")
    src.add_argument("--store", type=Path, metavar="PATH", help="the findings SQLite file")


def add_findings_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "findings",
        help="list, show, archive and unarchive findings (scan and detection)",
        description="Read the findings store of a service config (-c) or a store file (--store).",
    )
    p.set_defaults(func=lambda args: _usage(p))
    actions = p.add_subparsers(title="findings commands", metavar="COMMAND")
    ls = actions.add_parser("list", help="list findings, most severe first")
    _store_options(ls)
    ls.add_argument(
        "--status",
        default="active",
        metavar="LIST",
        help=f"comma-separated statuses ({', '.join(STATUSES)}) or 'all' (default: %(default)s)",
    )
    ls.add_argument("--severity", choices=SEVERITIES, help="this severity or worse")
    ls.add_argument("--type", help="finding type, e.g. EXPOSED_SENSITIVE_PATH")
    ls.add_argument("--source", choices=["scan", "detect"], help="which sidecar found it")
    ls.add_argument("--check", help="check or detector name")
    ls.add_argument("--resource", help="exact resource, e.g. http://127.0.0.1:9000")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ls.set_defaults(func=cmd_list)
    for name, helptext, func in (
        ("show", "show one finding in full (JSON)", cmd_show),
        ("archive", "archive a finding (no action needed; repeats fold in quietly)", cmd_archive),
        ("unarchive", "make an archived finding active again", cmd_unarchive),
    ):
        cmd = actions.add_parser(name, help=helptext)
        _store_options(cmd)
        cmd.add_argument("id", help="finding id (a unique prefix is enough)")
        cmd.set_defaults(func=func)
    sample = actions.add_parser(
        "sample",
        help="write one sample finding of every detection type (titles start with [SAMPLE])",
    )
    _store_options(sample)
    sample.set_defaults(func=cmd_sample)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def open_store(args: argparse.Namespace, create: bool = False) -> Store:
    from wafproxy.findings.store import FindingStore

    if args.store is not None:
        path = args.store
    elif args.config is not None:
        from wafproxy.config.load import load_service_config

        config = load_service_config(args.config)
        path = (
            Path(config.findings.store) if config.findings else args.config.parent / "findings.db"
        )
        if config.findings is not None:
            from wafproxy.findings.service import open_store as open_configured

            return open_configured(config.findings)
    else:
        raise WafProxyError("give -c CONFIG or --store PATH")
    if not create and not Path(path).exists():
        raise WafProxyError(f"no findings store at {path}")
    return FindingStore(path)


def cmd_list(args: argparse.Namespace) -> int:
    from wafproxy.findings.model import Severity, Status
    from wafproxy.findings.store import FindingQuery

    statuses: frozenset[Status] = frozenset()
    if args.status != "all":
        try:
            statuses = frozenset(Status(s.strip()) for s in args.status.split(",") if s.strip())
        except ValueError as exc:
            raise WafProxyError(f"--status: {exc}; expected {', '.join(STATUSES)} or all") from exc
    query = FindingQuery(
        statuses=statuses,
        type=args.type,
        source=args.source,
        check=args.check,
        resource=args.resource,
        min_severity=Severity(args.severity) if args.severity else None,
        limit=max(1, args.limit),
    )
    store = open_store(args)
    try:
        findings = store.query(query)
        total = store.count(query)
    finally:
        store.close()
    if args.json:
        for finding in findings:
            print(json.dumps(finding.to_dict(), sort_keys=True))
        return 0
    _table(findings, total)
    return 0


def _table(findings: list[Finding], total: int) -> None:
    from wafproxy.findings.model import iso_time

    print(f"{'ID':12}  {'SEVERITY':17}  {'STATUS':10}  {'COUNT':>5}  {'LAST SEEN':20}  TITLE")
    for f in findings:
        severity = f"{f.band.value} {f.severity:.1f}"
        print(
            f"{f.id[:12]:12}  {severity:17}  {f.status.value:10}  {f.count:5}  "
            f"{iso_time(f.last_seen)[:19]:20}  {f.title}  [{f.resource}]"
        )
    shown = f"{len(findings)} of {total}" if total > len(findings) else str(total)
    print(f"{shown} finding{'s' if total != 1 else ''}", file=sys.stderr)


def _resolve(store: Store, prefix: str) -> Finding:
    matches = store.find_prefix(prefix)
    exact = [f for f in matches if f.id == prefix]
    if exact:
        return exact[0]
    if not matches:
        raise WafProxyError(f"no finding with id {prefix!r}")
    if len(matches) > 1:
        raise WafProxyError(f"id prefix {prefix!r} is ambiguous ({len(matches)} findings)")
    return matches[0]


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        finding = _resolve(store, args.id)
    finally:
        store.close()
    print(json.dumps(finding.to_dict(), indent=2, sort_keys=False))
    return 0


def _set_status(args: argparse.Namespace, archived: bool) -> int:
    from wafproxy.findings.model import Status

    store = open_store(args)
    try:
        finding = _resolve(store, args.id)
        changed = store.set_status(finding.id, Status.ARCHIVED if archived else Status.ACTIVE)
    finally:
        store.close()
    print(f"{changed.id}: {changed.status.value} ({changed.title})")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import time

    from wafproxy.detect.sample import sample_findings

    findings = sample_findings(time.time())
    store = open_store(args, create=True)
    try:
        store.record(findings)
    finally:
        store.close()
    for finding in findings:
        print(f"{finding.id[:12]}  {finding.band.value:13}  {finding.title}")
    print(f"{len(findings)} sample findings written", file=sys.stderr)
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    return _set_status(args, archived=True)


def cmd_unarchive(args: argparse.Namespace) -> int:
    return _set_status(args, archived=False)
