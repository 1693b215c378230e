"""Network reachability of risky ports on the upstream host, and WAF canaries via the proxy."""

from __future__ import annotations

import asyncio

from wafproxy.findings.model import Finding
from wafproxy.scan.client import Probe
from wafproxy.scan.ports import PortSpec
from wafproxy.scan.registry import Scope, check
from wafproxy.scan.target import ScanTarget

REACHABILITY = "NETWORK_REACHABILITY"
WAF = "WAF_EFFICACY"

PROBE_CONCURRENCY = 8


@check("open_ports", scope=Scope.HOST)
async def open_ports(target: ScanTarget) -> list[Finding]:
    """Risky TCP ports reachable on the upstream host.

    Looks for: TCP connect() success on the configured list of risky ports on the upstream's
    host (by default remote shells and desktops: Telnet, SSH, RDP, VNC, WinRM; databases and
    caches: MySQL, PostgreSQL, SQL Server, Oracle, MongoDB, Elasticsearch, Redis, Memcached;
    admin consoles: Docker API, etcd, Kubelet, Consul, …). Only a connection is opened and
    closed: nothing is sent. The upstream's own HTTP port and the proxy's ports are skipped.
    Why it matters: every service reachable beside the web app is attack surface the WAF does
    not cover; databases, caches and container APIs reachable from the network are a common
    cause of full compromise.
    How to fix: bind internal services to localhost or a private interface, and allow the
    ports only from the hosts that need them (security groups, firewall rules).
    """
    host = target.endpoint.host
    skip = target.skip_ports | {target.endpoint.port}
    specs = [p for p in target.ports if p.port not in skip]
    limit = asyncio.Semaphore(PROBE_CONCURRENCY)

    async def probe(spec: PortSpec) -> PortSpec | None:
        async with limit:
            return spec if await target.client.tcp_connect(host, spec.port) else None

    results = await asyncio.gather(*(probe(s) for s in specs))
    return [_reachable(target, spec) for spec in results if spec is not None]


def _reachable(target: ScanTarget, spec: PortSpec) -> Finding:
    host = target.endpoint.host
    return target.finding(
        check="open_ports",
        type=REACHABILITY,
        subject=f"tcp:{spec.port}",
        title=f"Port {spec.port} ({spec.service}) reachable on {host}",
        description=f"A TCP connection to {host}:{spec.port} ({spec.service}, {spec.category}) "
        "succeeded from the scanner's network position.",
        severity=spec.severity,
        remediation=f"Close port {spec.port} to the network: bind {spec.service} to a private "
        "interface or allow it only from the hosts that need it.",
        evidence=[f"tcp connect {host}:{spec.port} succeeded"],
        details={"protocol": "TCP", "openPortRange": {"begin": spec.port, "end": spec.port},
                 "service": spec.service, "category": spec.category},
    )  # fmt: skip


# -- WAF canaries ----------------------------------------------------------------------------------
# (name, path-and-query, extra headers, what it stands for); harmless strings, no payload runs
CANARIES = (
    ("sqli", "/?id=1%27%20OR%20%271%27%3D%271", (), "a SQL injection"),
    ("xss", "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", (), "a cross-site scripting"),
    ("path_traversal", "/?file=..%2F..%2F..%2Fetc%2Fhosts", (), "a path traversal"),
    ("lfi", "/?page=%2Fetc%2Fpasswd", (), "a local file inclusion"),
    ("scanner_user_agent", "/", (("User-Agent", "sqlmap/1.7 (https://sqlmap.org)"),),
     "an attack tool's User-Agent"),
)  # fmt: skip
BLOCK_STATUSES = frozenset({403, 406, 429, 451})


@check("waf_canaries", scope=Scope.PROXY)
async def waf_canaries(target: ScanTarget) -> list[Finding]:
    """WAF efficacy: harmless attack canaries sent through the proxy.

    Looks for: whether the proxy blocks a handful of harmless strings shaped like attacks
    (a SQL injection tautology, a script tag, ../ traversal, /etc/passwd inclusion, an attack
    tool's User-Agent) on the base path. A canary counts as blocked when it gets 403 (or 406,
    429, 451) while a benign request gets something else. Runs only through the proxy.
    Why it matters: a WAF in count mode, a rule group left out of the web ACL or a route bound
    to the wrong ACL leaves the app unprotected while everything looks green.
    How to fix: include the managed rule groups (wafproxy-core, wafproxy-sqli) in the route's
    web ACL with ``override_action: none``, or promote the proposed rules to block.
    """
    baseline = await target.fetch("/?wafproxy_canary=hello")
    if baseline is None or baseline.status in BLOCK_STATUSES:
        return []
    found: list[Finding] = []
    for name, path, headers, meaning in CANARIES:
        probe = await target.fetch(path, headers=headers)
        if probe is None or _blocked(probe):
            continue
        found.append(_let_through(target, name, meaning, probe))
    return found


def _blocked(probe: Probe) -> bool:
    return probe.status in BLOCK_STATUSES


def _let_through(target: ScanTarget, name: str, meaning: str, probe: Probe) -> Finding:
    return target.finding(
        check="waf_canaries",
        type=WAF,
        subject=f"canary:{name}",
        title=f"WAF lets {meaning} canary through",
        description=f"The proxy forwarded a harmless canary, {meaning} ({probe.url}), to the "
        f"upstream, which answered {probe.status}.",
        severity=6.0,
        remediation="Put the managed rule groups in this route's web ACL (override_action: "
        "none) or promote the proposed rule to block.",
        evidence=[probe.evidence],
        details={"canary": name},
    )
