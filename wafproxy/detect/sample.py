"""Sample findings (``wafproxy findings sample``) and the attack traffic that makes them.

A sample finding is what a detector really says: each registered detector, freshly built with
its default settings, is fed a short scripted attack from a documentation address
(192.0.2.0/24) on a route named ``sample``, and the first finding of each type it raises is
kept, marked ``[SAMPLE]`` in the title and ``sample: true`` in the details. The scripts are
here too (``attack_traffic``) so tests and demos can replay the same scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from wafproxy.acl.ipset import build_ip_set
from wafproxy.detect.detector import DETECTORS, Detector
from wafproxy.detect.detectors.malicious_ip import MaliciousIpCaller, MaliciousIpSettings
from wafproxy.detect.detectors.tor_caller import TorCaller, TorCallerSettings
from wafproxy.detect.observation import Observation
from wafproxy.detect.threatlist import ThreatList
from wafproxy.findings.model import Finding

SAMPLE_NET = "192.0.2.0/24"
SAMPLE_ROUTE = "sample"
TITLE_PREFIX = "[SAMPLE] "
SCANNER_AGENT = "sqlmap/1.8.2#stable (https://sqlmap.org)"
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
MB = 1_000_000

Script = Callable[[str, float], Iterator[Observation]]


def sample_findings(now: float) -> list[Finding]:
    """One sample finding of every type the registered detectors raise."""
    found: list[Finding] = []
    for index, name in enumerate(DETECTORS):
        client = f"192.0.2.{10 + index}"
        detector = sample_detector(name)
        findings = [f for o in attack_traffic(name, client, now) for f in detector.observe(o)]
        for type_ in DETECTORS[name].finding_types:
            of_type = [f for f in findings if f.type == type_]
            if of_type:
                mine = [f for f in of_type if f.subject == client]
                found.append(mark_sample((mine or of_type)[0]))
    return found


def mark_sample(finding: Finding) -> Finding:
    return replace(
        finding,
        title=TITLE_PREFIX + finding.title,
        details={**finding.details, "sample": True},
    )


def sample_detector(name: str) -> Detector:
    """The detector with default settings; the threat-list ones with a list of 192.0.2.0/24."""
    listed = ThreatList(
        "sample-list.txt", Path("sample-list.txt"), build_ip_set("s", [SAMPLE_NET]), 1
    )
    if name == "malicious_ip":
        return MaliciousIpCaller(MaliciousIpSettings(), lists=[listed])
    if name == "tor_caller":
        return TorCaller(TorCallerSettings(), lists=[listed])
    kind = DETECTORS[name]
    return kind.factory(kind.settings(), Path("."))


def attack_traffic(name: str, client: str, end: float) -> Iterator[Observation]:
    """The scripted attack for one detector, from ``client``, finishing before ``end``."""
    script = SCRIPTS.get(name, _single_request)
    return script(client, end)


def request(client: str, time: float, n: int, path: str = "/", **fields: object) -> Observation:
    """A plain successful GET from a browser; ``fields`` override any Observation field."""
    base: dict[str, object] = {
        "time": time,
        "request_id": f"sample-{client}-{n}",
        "client_ip": client,
        "method": "GET",
        "host": "shop.example",
        "route": SAMPLE_ROUTE,
        "path": path,
        "status": 200,
        "bytes_in": 0,
        "bytes_out": 2000,
        "latency": 0.01,
        "user_agent": BROWSER_AGENT,
        "action": "ALLOW",
        "terminating_rule": "Default_Action",
    }
    base.update(fields)
    return Observation(**base)  # type: ignore[arg-type]


def _interval_start(end: float, interval: float, back: int) -> float:
    return (math.floor(end / interval) - back) * interval


def _single_request(client: str, end: float) -> Iterator[Observation]:
    yield request(client, end - 1, 0)


def _scanner(client: str, end: float) -> Iterator[Observation]:
    yield request(client, end - 1, 0, "/", user_agent=SCANNER_AGENT)


def _path_probe(client: str, end: float) -> Iterator[Observation]:
    for n in range(40):
        yield request(client, end - 30 + n * 0.5, n, f"/old/page-{n}.php", status=404)


def _sensitive(client: str, end: float) -> Iterator[Observation]:
    for n, path in enumerate(("/.env", "/.git/config", "/backup.zip", "/wp-config.php.bak")):
        yield request(client, end - 10 + n, n, path, status=404)


def _login(client: str, time: float, n: int, user: str, failed: bool) -> Observation:
    status = 401 if failed else 200
    return request(client, time, n, "/login", method="POST", status=status, username=user,
                   login_failed=failed)  # fmt: skip


def _brute_force(client: str, end: float) -> Iterator[Observation]:
    for n in range(25):
        yield _login(client, end - 60 + 2 * n, n, "admin", True)


def _stuffing(client: str, end: float) -> Iterator[Observation]:
    for n in range(15):
        yield _login(client, end - 30 + n, n, f"user{n:03d}@example.com", True)


def _flood(client: str, end: float) -> Iterator[Observation]:
    start = _interval_start(end, 10.0, 1)
    for n in range(1200):
        yield request(client, start + n * 0.005, n, "/search")


def _volume(client: str, end: float) -> Iterator[Observation]:
    start = _interval_start(end, 60.0, 1)
    for n in range(3):
        yield request(client, start + 10 * n, n, "/export", bytes_out=100 * MB)


def _traffic(client: str, end: float) -> Iterator[Observation]:
    start = _interval_start(end, 10.0, 40)
    n = 0
    for interval in range(40):
        burst = 1000 if interval == 39 else 20
        for i in range(burst):
            source = client if interval == 39 else f"192.0.2.{100 + i % 50}"
            yield request(source, start + interval * 10 + i * (9.0 / burst), n)
            n += 1


def _blocks(client: str, end: float) -> Iterator[Observation]:
    for n in range(25):
        yield request(client, end - 30 + n, n, "/products", status=403, action="BLOCK",
                      terminating_rule="SQLi_QUERYARGUMENTS",
                      labels=("wafproxy:attack:sqli",))  # fmt: skip


def _compromise(client: str, end: float) -> Iterator[Observation]:
    t = end - 60
    yield request(
        client,
        t,
        0,
        "/",
        user_agent=SCANNER_AGENT,
        status=403,
        action="BLOCK",
        terminating_rule="ScannerUserAgent_HEADER",
        labels=("wafproxy:bot:scanner",),
    )
    yield request(client, t + 5, 1, "/admin/config.php", status=404)
    for n in range(2, 5):
        yield request(
            client,
            t + 5 * n,
            n,
            "/admin/config.php",
            status=403,
            action="BLOCK",
            terminating_rule="PathTraversal_URIPATH",
            labels=("wafproxy:attack:path-traversal",),
        )
    yield request(client, t + 40, 5, "/admin/config.php", status=200)  # fmt: skip


SCRIPTS: dict[str, Script] = {
    "scanner_user_agent": _scanner,
    "path_probe": _path_probe,
    "sensitive_file_probe": _sensitive,
    "brute_force": _brute_force,
    "credential_stuffing": _stuffing,
    "request_flood": _flood,
    "response_volume": _volume,
    "traffic_volume": _traffic,
    "waf_block_spike": _blocks,
    "compromise_attempt": _compromise,
}
