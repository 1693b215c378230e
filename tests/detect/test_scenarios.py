"""Every detector through a real proxy: the scenario's traffic goes from a client on 127.0.0.1
(speaking as a documentation address through X-Forwarded-For) through wafproxy to the demo
upstream; the finding is asserted by type, subject, severity band and evidence, the evidence
being request ids the proxy returned in X-Request-Id. Windows and baselines move on the
harness's fake clock. Then hours of ordinary traffic that must raise nothing, and an attack
sequence from reconnaissance to a successful login, to the block that follows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from wafproxy.detect.config import BLOCK_SET, COUNT_SET
from wafproxy.findings.model import Finding, Severity

from .harness import DetectHarness, detect_proxy

if TYPE_CHECKING:
    from conftest import UpstreamServer

pytestmark = pytest.mark.integration
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LOGIN = {"login_routes": [{"path": "/login", "username_field": "username"}]}
IN_FLIGHT = 24


@dataclass(frozen=True)
class Sent:
    status: int
    request_id: str


async def send(
    h: DetectHarness,
    path: str,
    client: str,
    *,
    method: str = "GET",
    agent: str = BROWSER,
    data: Any = None,
) -> Sent:
    headers = {"User-Agent": agent, "X-Forwarded-For": client}
    async with h.session.request(
        method, h.url + path, headers=headers, data=data, allow_redirects=False
    ) as response:
        await response.read()
        return Sent(response.status, response.headers["X-Request-Id"])


async def login(h: DetectHarness, client: str, username: str, password: str) -> Sent:
    form = {"username": username, "password": password}
    return await send(h, "/login", client, method="POST", data=form)


async def burst(h: DetectHarness, paths: Iterable[str], client: str, **kw: Any) -> list[Sent]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(path: str) -> Sent:
        async with gate:
            return await send(h, path, client, **kw)

    return list(await asyncio.gather(*(one(p) for p in paths)))


async def only(h: DetectHarness, type_: str) -> Finding:
    found = await h.findings(type=type_)
    assert len(found) == 1, [(f.type, f.subject) for f in found]
    return found[0]


def assert_finding(
    f: Finding, subject: str, band: Severity, sent: Sequence[Sent], check: str
) -> None:
    assert (f.subject, f.band, f.check, f.source) == (subject, band, check, "detect")
    assert f.resource == "app"  # the route
    assert f.evidence and set(f.evidence) <= {s.request_id for s in sent}
    assert f.remediation and f.title and f.description


async def detect_types(h: DetectHarness) -> set[str]:
    return {f.type for f in await h.findings()}


# -- one scenario per finding type -----------------------------------------------------------------
async def test_path_probe(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        below = await burst(h, [f"/old/{n}.php" for n in range(25)], "198.51.100.20")
        assert {s.status for s in below} == {404}
        assert await detect_types(h) == set()
        sent = await burst(h, [f"/wp/{n}.php" for n in range(26)], "198.51.100.21")
        f = await only(h, "Recon:HTTP/PathProbe")
        assert_finding(f, "198.51.100.21", Severity.MEDIUM, sent, "path_probe")
        assert f.details["distinct_paths"] == 26 and f.details["threshold"] == 25  # more than


async def test_sensitive_file_probe(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        await send(h, "/.env", "198.51.100.30")  # one is not a probe
        assert await detect_types(h) == set()
        sent = [await send(h, p, "198.51.100.31") for p in ("/.git/config", "/backup.sql")]
        f = await only(h, "Discovery:HTTP/SensitiveFileProbe")
        assert_finding(f, "198.51.100.31", Severity.MEDIUM, sent, "sensitive_file_probe")
        assert "/.git/config" in json.dumps(f.details)


async def test_scanner_user_agent(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        sent = [await send(h, "/", "198.51.100.40", agent="Mozilla/5.00 (Nikto/2.5.0)")]
        await send(h, "/", "198.51.100.41")
        f = await only(h, "Recon:HTTP/ScannerUserAgent")
        assert_finding(f, "198.51.100.40", Severity.MEDIUM, sent, "scanner_user_agent")
        assert f.details["tool"] == "nikto"


async def test_brute_force_per_account_and_per_client(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    async with detect_proxy(tmp_path, upstream.url, LOGIN) as h:
        spread = [await login(h, f"198.51.100.{100 + n}", "alice", f"pw{n}") for n in range(10)]
        assert {s.status for s in spread} == {401}
        f = await only(h, "UnauthorizedAccess:HTTP/BruteForce")
        assert_finding(f, "alice", Severity.HIGH, spread, "brute_force")
        assert (await h.decisions())[BLOCK_SET] == []  # a username is never an IP decision
        one = [await login(h, "198.51.100.50", f"user{n % 3}", f"pw{n}") for n in range(20)]
        found = {f.subject: f for f in await h.findings(type="UnauthorizedAccess:HTTP/BruteForce")}
        assert_finding(found["198.51.100.50"], "198.51.100.50", Severity.HIGH, one, "brute_force")
        (entry,) = (await h.decisions())[BLOCK_SET]
        assert entry.address == "198.51.100.50/32"


async def test_credential_stuffing(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url, LOGIN) as h:
        ten = [await login(h, "198.51.100.60", f"u{n}@example.com", "x") for n in range(10)]
        assert await detect_types(h) == set()  # more than ten distinct users
        last = await login(h, "198.51.100.60", "u10@example.com", "x")
        f = await only(h, "CredentialAccess:HTTP/CredentialStuffing")
        assert_finding(f, "198.51.100.60", Severity.HIGH, [*ten, last], "credential_stuffing")
        assert last.request_id in f.evidence
        assert (await send(h, "/", "198.51.100.60")).status == 403  # blocked by the decision


async def test_request_flood_against_the_clients_own_baseline(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        client = "198.51.100.70"
        h.clock.advance(10 - h.clock.now() % 10)  # the start of an interval
        for _ in range(6):  # warm-up: 6 intervals of 10 requests
            await burst(h, ["/products"] * 10, client)
            h.clock.advance(10)
        assert await detect_types(h) == set()
        sent = await burst(h, ["/products"] * 200, client)
        f = await only(h, "Impact:HTTP/RequestFlood")
        assert_finding(f, client, Severity.HIGH, sent, "request_flood")
        assert f.details["basis"] == "own" and f.details["requests"] >= 200


async def test_traffic_volume_of_the_whole_site(tmp_path: Path, upstream: UpstreamServer) -> None:
    quick = {"detectors": {"traffic_volume": {"warmup": 5, "min_requests": 60}}}
    async with detect_proxy(tmp_path, upstream.url, quick) as h:
        h.clock.advance(10 - h.clock.now() % 10)
        for interval in range(6):
            clients = [f"192.0.2.{n}" for n in range(interval, interval + 10)]
            await asyncio.gather(*(send(h, "/products", c) for c in clients))
            h.clock.advance(10)
        assert await detect_types(h) == set()
        sent = await asyncio.gather(*(send(h, "/", f"203.0.113.{n}") for n in range(70)))
        f = await only(h, "Behavior:HTTP/TrafficVolumeUnusual")
        assert f.band is Severity.MEDIUM and f.check == "traffic_volume"
        assert f.evidence and set(f.evidence) <= {s.request_id for s in sent}
        assert (await h.decisions()) == {BLOCK_SET: [], COUNT_SET: []}  # nobody to decide on


async def test_anomalous_response_volume(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        client = "198.51.100.80"
        h.clock.advance(60 - h.clock.now() % 60)
        for _ in range(5):  # warm-up: five minutes of small pages
            await send(h, "/stream?bytes=20000", client)
            h.clock.advance(60)
        assert await detect_types(h) == set()
        sent = [await send(h, f"/stream?bytes={21 * 10**6}", client)]
        f = await only(h, "Exfiltration:HTTP/AnomalousResponseVolume")
        assert_finding(f, client, Severity.HIGH, sent, "response_volume")
        (entry,) = (await h.decisions())[COUNT_SET]  # counted (labelled), not blocked
        assert entry.address == f"{client}/32"


async def test_waf_block_spike(tmp_path: Path, upstream: UpstreamServer) -> None:
    async with detect_proxy(tmp_path, upstream.url) as h:
        nineteen = await burst(h, [f"/blocked/{n}" for n in range(19)], "198.51.100.90")
        assert {s.status for s in nineteen} == {403}
        assert await detect_types(h) == set()
        sent = [*nineteen, await send(h, "/blocked/last", "198.51.100.90")]
        f = await only(h, "Behavior:HTTP/WafBlockSpike")
        assert_finding(f, "198.51.100.90", Severity.MEDIUM, sent, "waf_block_spike")
        assert sent[-1].request_id in f.evidence


STIX = {
    "type": "bundle",
    "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
    "objects": [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '203.0.113.66']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
        }
    ],
}


@pytest.mark.parametrize(
    ("detector", "type_", "filename", "content"),
    [
        (
            "malicious_ip",
            "UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom",
            "intel.json",
            json.dumps(STIX),
        ),
        (
            "tor_caller",
            "UnauthorizedAccess:HTTP/TorIPCaller",
            "exits.txt",
            "ExitNode ABCDEF\nExitAddress 203.0.113.66 2026-01-01 01:01:01\n",
        ),
    ],
)
async def test_threat_list_callers(
    tmp_path: Path, upstream: UpstreamServer, detector: str, type_: str, filename: str, content: str
) -> None:
    (tmp_path / filename).write_text(content)
    config = {"detectors": {detector: {"files": [filename]}}}
    async with detect_proxy(tmp_path, upstream.url, config) as h:
        await send(h, "/", "203.0.113.65")
        sent = [await send(h, "/", "203.0.113.66"), await send(h, "/products", "203.0.113.66")]
        f = await only(h, type_)
        assert_finding(f, "203.0.113.66", Severity.MEDIUM, sent, detector)
        assert f.count == 1  # one finding per client per cooldown


# -- an attack sequence, end to end ----------------------------------------------------------------
async def test_compromise_attempt_from_reconnaissance_to_login_to_block(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    attacker = "198.51.100.99"
    async with detect_proxy(tmp_path, upstream.url, LOGIN) as h:
        recon = [await send(h, "/.env", attacker)]
        h.clock.advance(30)
        attacks = [await send(h, f"/attack?q={n}", attacker) for n in range(3)]
        assert {s.status for s in attacks} == {403}
        h.clock.advance(30)
        failures = [await login(h, attacker, "demo", f"guess{n}") for n in range(5)]
        assert await h.findings(type="AttackSequence:HTTP/CompromiseAttempt") == []
        h.clock.advance(30)
        success = await login(h, attacker, "demo", "demo")
        assert success.status == 200
        f = await only(h, "AttackSequence:HTTP/CompromiseAttempt")
        assert_finding(
            f,
            attacker,
            Severity.CRITICAL,
            [*recon, *attacks, *failures, success],
            "compromise_attempt",
        )
        assert recon[0].request_id in f.evidence and success.request_id in f.evidence
        assert any(s.request_id in f.evidence for s in attacks + failures)
        stages = f.details["stages"]
        assert stages["success"]["requests"] == [success.request_id]
        assert (await send(h, "/", attacker)).status == 403  # the decision: blocked from now on
        assert (await send(h, "/", "198.51.100.98")).status == 200
        (entry,) = (await h.decisions())[BLOCK_SET]
        assert f.id in entry.reason and entry.expires == h.clock.now() + 3600


# -- ordinary traffic ----------------------------------------------------------------------------
PAGES = ("/", "/products", "/products/1", "/products/2", "/search?q=shoes", "/search?q=rain")


async def test_hours_of_ordinary_traffic_raise_nothing(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    """Six simulated hours: 120 users arriving in a daily ramp, browsing at their own pace, now
    and then a mistyped URL or a wrong password before the right one, a couple of downloads."""
    async with detect_proxy(tmp_path, upstream.url, LOGIN) as h:
        sent = 0
        for hour in range(6):
            users = [f"192.0.2.{n}" for n in range(1 + hour * 20, 21 + hour * 20)] + [
                f"198.18.{hour}.{n}" for n in range(hour * 3)
            ]
            for minute in range(0, 60, 5):
                batch = [(u, i) for i, u in enumerate(users) if (i + minute) % (hour + 2) == 0]
                sent += sum(await asyncio.gather(*(visit(h, u, i + minute) for u, i in batch)))
                h.clock.advance(300)
        assert sent > 1000
        assert await h.findings() == []
        assert await h.decisions() == {BLOCK_SET: [], COUNT_SET: []}


async def visit(h: DetectHarness, user: str, step: int) -> int:
    """A few pages; the requests sent."""
    sent = [await send(h, PAGES[(step + n) % len(PAGES)], user) for n in range(2)]
    if step % 7 == 0:
        sent.append(await send(h, f"/prodcts/{step}", user))  # a typo: 404
    if step % 11 == 0:
        sent.append(await login(h, user, f"user-{user}", "wrong"))
        sent.append(await login(h, user, "demo", "demo"))
    if step % 13 == 0:
        sent.append(await send(h, "/stream?bytes=300000", user))
    assert all(s.status in (200, 401, 404) for s in sent)
    return len(sent)
