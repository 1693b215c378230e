"""``wafproxy detect decisions`` and ``wafproxy detect remove``: the detection's decisions on a
running proxy, read and lifted through the admin API's dynamic IP set endpoints (the same ones
``wafproxy ip-sets`` uses; these two commands only know which sets are the detection's)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from wafproxy.detect.config import BLOCK_SET, COUNT_SET

TOKEN_ENV = "WAFPROXY_ADMIN_TOKEN"
DEFAULT_ADMIN = "http://127.0.0.1:9901"
if TYPE_CHECKING:
    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_detect_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "detect",
        help="the threat detection's decisions on a running proxy: list or remove them",
        description="Addresses the threat detection blocked or flagged (the dynamic IP sets "
        "of detect.remediation, enforced by the wafproxy-detect rule group), read and removed "
        "through a running proxy's admin API.",
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "decisions", help="blocked and flagged addresses with reason and expiry"
    )
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    _common(listing)
    listing.set_defaults(func=cmd_decisions)
    remove = actions.add_parser("remove", help="lift every decision for these addresses")
    remove.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IP addresses or CIDRs")
    _common(remove)
    remove.set_defaults(func=cmd_remove)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service config: its admin address, token and detection set names",
    )
    p.add_argument(
        "--admin", metavar="URL", help=f"the proxy's admin URL (default: {DEFAULT_ADMIN})"
    )
    p.add_argument("--token", help=f"the admin token (default: ${TOKEN_ENV})")


@dataclass(frozen=True)
class Target:
    admin: str
    token: str | None
    sets: tuple[tuple[str, str], ...]
    """(action, IP set name) for block and count."""


def target(args: argparse.Namespace) -> Target:
    admin, token = args.admin, args.token or os.environ.get(TOKEN_ENV)
    block, count = BLOCK_SET, COUNT_SET
    if args.config is not None:
        from wafproxy.config.load import load_service_config

        config = load_service_config(args.config)
        if config.detect is not None:
            block = config.detect.remediation.block_set
            count = config.detect.remediation.count_set
        listen = config.admin.listen
        if admin is None and listen is not None:
            admin = f"http://{listen}"
        token = token or config.admin.token
    return Target(admin or DEFAULT_ADMIN, token, (("block", block), ("count", count)))


def _client(t: Target) -> argparse.Namespace:
    """The arguments ``wafproxy.state.cli.request`` reads."""
    return argparse.Namespace(admin=t.admin, token=t.token)


def cmd_decisions(args: argparse.Namespace) -> int:
    from wafproxy.state.cli import request

    t = target(args)
    rows: list[dict[str, Any]] = []
    for action, name in t.sets:
        path = f"/api/ip-sets/{urllib.parse.quote(name, safe='')}/entries"
        for entry in request(_client(t), "GET", path)["entries"]:
            rows.append({"action": action, "ip_set": name, **entry})
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    print_table(rows, time.time())
    return 0


def print_table(rows: list[dict[str, Any]], now: float) -> None:
    from wafproxy.findings.model import iso_time

    print(f"{'ACTION':6}  {'ADDRESS':20}  {'EXPIRES':20}  {'LEFT':>7}  REASON")
    for row in rows:
        expires = row["expires"]
        when = "never" if expires is None else iso_time(expires)[:19]
        left = "-" if expires is None else _left(expires - now)
        print(f"{row['action']:6}  {row['address']:20}  {when:20}  {left:>7}  {row['reason']}")
    print(f"{len(rows)} decision{'s' if len(rows) != 1 else ''}", file=sys.stderr)


def _left(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))}s"
    if seconds < 5400:
        return f"{round(seconds / 60)}m"
    if seconds < 172_800:
        return f"{round(seconds / 3600)}h"
    return f"{round(seconds / 86400)}d"


def cmd_remove(args: argparse.Namespace) -> int:
    from wafproxy.errors import WafProxyError
    from wafproxy.state.cli import request

    t = target(args)
    missing = 0
    for address in args.addresses:
        removed = []
        for _, name in t.sets:
            query = urllib.parse.urlencode({"address": address})
            path = f"/api/ip-sets/{urllib.parse.quote(name, safe='')}/entries?{query}"
            try:
                request(_client(t), "DELETE", path)
                removed.append(name)
            except WafProxyError as exc:
                if " 404 " not in str(exc):
                    raise
        if removed:
            print(f"removed {address} from {', '.join(removed)}")
        else:
            print(f"error: no decision for {address}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0
