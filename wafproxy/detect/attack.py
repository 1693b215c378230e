"""``wafproxy demo attack``: the traffic that raises every detect finding type, against a running
``wafproxy demo``, then the findings the proxy raised (from its admin API) and what is missing.

Each scenario speaks as its own client: the demo trusts X-Forwarded-For from loopback
(``client_ip.trusted_proxies``), so a scenario's requests carry a documentation address
(198.51.100.0/24, 203.0.113.0/24) and its findings, and its remediation decisions, stay its
own: blocking the path prober does not silence the brute forcer. The threat-list and Tor
callers are addresses the demo writes into its threat-list files (demo_config.py).

Bounded: at most MAX_REQUESTS requests and ``--duration`` seconds, a fixed number in flight,
loopback targets only unless ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wafproxy.errors import WafProxyError

if TYPE_CHECKING:
    import aiohttp

DEFAULT_TARGET = "http://127.0.0.1:8080"
DEFAULT_ADMIN = "http://127.0.0.1:9901"
DECISION_SETS = ("wafproxy-detect-block", "wafproxy-detect-count")
SETTLE_SECONDS = 5.0
BASELINE_SECONDS = 12.0
"""How long to wait for the findings of the last requests to be recorded."""


# -- the run ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    target: str = DEFAULT_TARGET
    admin: str = DEFAULT_ADMIN
    token: str | None = None
    duration: float = 50.0
    baseline_seconds: float = BASELINE_SECONDS
    """Ordinary traffic first, so the site-wide baseline is warm (the demo's is quick)."""
    allow_remote: bool = False
    settle_seconds: float = SETTLE_SECONDS


async def attack(options: Options) -> dict[str, list[dict[str, Any]]]:
    """Sends every scenario's traffic; returns the detect findings by type."""
    import aiohttp

    from wafproxy.detect import attack_traffic as traffic

    budget = traffic.Budget(traffic.MAX_REQUESTS, options.duration)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        base = options.target.rstrip("/")
        await traffic.send_all(session, base, budget, options.baseline_seconds)
        print(f"sent {budget.sent} requests to {base}", flush=True)
        found = await wait_for_findings(session, options)
        lines, _ = report(found)
        print("\n".join([*lines[:-1], *await decision_lines(session, options)]), flush=True)
        return found


async def wait_for_findings(
    session: aiohttp.ClientSession, options: Options
) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + options.settle_seconds
    while True:
        found = await fetch_findings(session, options)
        if set(expected_types()) <= set(found) or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.25)


async def admin_get(session: aiohttp.ClientSession, options: Options, path: str) -> Any:
    """The JSON answer, or None for a 404."""
    url = options.admin.rstrip("/") + path
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    async with session.get(url, headers=headers) as response:
        text = await response.text()
        if response.status == 404:
            return None
        if response.status != 200:
            raise WafProxyError(f"GET {url}: HTTP {response.status}: {text[:200]}")
    return json.loads(text)


async def decision_lines(session: aiohttp.ClientSession, options: Options) -> list[str]:
    """The remediation decisions now in the detect IP sets."""
    lines = ["remediation decisions (dynamic IP sets):"]
    now = time.time()
    for name in DECISION_SETS:
        answer = await admin_get(session, options, f"/api/ip-sets/{name}/entries")
        for entry in (answer or {}).get("entries", []):
            expires = entry.get("expires")
            left = "no expiry" if expires is None else f"{float(expires) - now:.0f} s left"
            lines.append(f"  {name:<22} {entry['address']:<20} {left:<12} {entry['reason']}")
    return lines if len(lines) > 1 else [*lines, "  none"]


async def fetch_findings(
    session: aiohttp.ClientSession, options: Options
) -> dict[str, list[dict[str, Any]]]:
    answer = await admin_get(session, options, "/findings?source=detect&limit=1000")
    if answer is None:
        raise WafProxyError(f"{options.admin} has no findings API (is detection configured?)")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for finding in answer["findings"]:
        by_type.setdefault(str(finding["type"]), []).append(finding)
    return by_type


def expected_types() -> list[str]:
    """Every finding type a registered detector can raise."""
    from wafproxy.detect import DETECTORS

    return [t for _, kind in DETECTORS.items() for t in kind.finding_types]


def report(found: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """(lines to print, the expected types that are missing)."""
    lines = ["findings raised:"]
    for type_ in expected_types():
        for f in found.get(type_, []):
            sev = f["severity"]
            lines.append(
                f"  {sev['label']:<8} {sev['score']:>4}  {type_:<50} {f['subject']:<24} "
                f"count {f['count']}"
            )
    missing = [t for t in expected_types() if t not in found]
    lines.append("missing: " + (", ".join(missing) if missing else "none"))
    return lines, missing


def check_loopback(url: str, allow_remote: bool) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise WafProxyError(f"{url} is not a loopback address; pass --allow-remote to attack it")


def run_attack(options: Options) -> int:
    for url in (options.target, options.admin):
        check_loopback(url, options.allow_remote)
    found = asyncio.run(attack(options))
    lines, missing = report(found)
    print(lines[-1], flush=True)
    return 1 if missing else 0


# -- the command -----------------------------------------------------------------------------------
def add_attack_parser(demo: argparse.ArgumentParser, token_default: str | None) -> None:
    sub = demo.add_subparsers(title="actions", metavar="ACTION")
    p = sub.add_parser(
        "attack",
        help="send the demo the traffic that raises every detect finding type",
        description="Against a running `wafproxy demo`: probes, scanners, brute force, "
        "credential stuffing, a flood, large downloads, WAF-block spikes, threat-list callers "
        "and a compromise sequence, each from its own client address (X-Forwarded-For); then "
        "print the findings the proxy raised and which types are missing (exit status 1).",
    )
    p.add_argument("url", nargs="?", default=DEFAULT_TARGET, help="the proxy (%(default)s)")
    p.add_argument("--admin", default=DEFAULT_ADMIN, metavar="URL", help="admin API (%(default)s)")
    p.add_argument("--token", default=token_default, help="admin token ($WAFPROXY_ADMIN_TOKEN)")
    p.add_argument(
        "--duration", type=float, default=50.0, metavar="SECONDS", help="at most (%(default)s)"
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target")
    p.set_defaults(func=cmd_attack)


def cmd_attack(args: argparse.Namespace) -> int:
    options = Options(
        target=args.url,
        admin=args.admin,
        token=args.token,
        duration=args.duration,
        allow_remote=args.allow_remote,
    )
    return run_attack(options)
