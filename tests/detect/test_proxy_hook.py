"""The proxy hook end to end: real upstream, real proxy, real detectors, real state on 127.0.0.1.

A finding becomes a decision that the very next request from that address meets; observations
carry what the request did (status, verdict, login judgement); detection off costs nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wafproxy.detect.config import BLOCK_SET
from wafproxy.detect.observation import Observation

from .harness import detect_proxy

if TYPE_CHECKING:
    from conftest import StartProxy, UpstreamServer

pytestmark = pytest.mark.integration
SCANNER = {"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}
HIGH_SCANNER = {"detectors": {"scanner_user_agent": {"severity": 8.0}}}


async def test_a_finding_blocks_the_next_request_from_that_address_only(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    async with detect_proxy(tmp_path, upstream.url, HIGH_SCANNER) as h:
        assert (await h.get("/products", client="203.0.113.5"))[0] == 200
        status, _ = await h.get("/products", client="203.0.113.5", headers=SCANNER)
        assert status == 200  # the request that gave it away passes; detection is out of band
        await h.settle()
        status, body = await h.get("/products", client="203.0.113.5")
        assert status == 403 and "request id" in body.lower()
        assert (await h.get("/products", client="203.0.113.6"))[0] == 200
        (finding,) = await h.findings(type="Recon:HTTP/ScannerUserAgent")
        assert finding.subject == "203.0.113.5" and finding.band.value == "high"
        assert finding.details["decision"]["ip_set"] == BLOCK_SET
        (entry,) = (await h.decisions())[BLOCK_SET]
        assert entry.address == "203.0.113.5/32"
        assert finding.id in entry.reason and "Recon:HTTP/ScannerUserAgent" in entry.reason
        assert entry.expires == h.clock.now() + 900
        assert await logged(tmp_path / "decisions.jsonl", "DetectBlock")


async def logged(path: Path, text: str, timeout: float = 5.0) -> bool:
    """The decision log is written by a background thread: wait for ``text`` to appear."""
    for _ in range(int(timeout / 0.02)):
        if path.exists() and text in path.read_text():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_decision_expires_on_the_proxy_clock(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    async with detect_proxy(tmp_path, upstream.url, HIGH_SCANNER) as h:
        await h.get("/", client="203.0.113.7", headers=SCANNER)
        await h.settle()
        assert (await h.get("/", client="203.0.113.7"))[0] == 403
        h.clock.advance(899)
        assert (await h.get("/", client="203.0.113.7"))[0] == 403
        h.clock.advance(1)
        assert (await h.get("/", client="203.0.113.7"))[0] == 200


async def test_trusted_addresses_are_not_observed(tmp_path: Path, upstream: UpstreamServer) -> None:
    detect = {**HIGH_SCANNER, "trusted_ips": ["203.0.113.0/28"]}
    async with detect_proxy(tmp_path, upstream.url, detect) as h:
        await h.get("/", client="203.0.113.8", headers=SCANNER)
        await h.settle()
        assert (await h.get("/", client="203.0.113.8"))[0] == 200
        assert await h.findings() == []
        assert (await h.decisions())[BLOCK_SET] == []


async def test_remediation_off_records_findings_without_decisions(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    detect = {**HIGH_SCANNER, "remediation": {"enabled": False}}
    async with detect_proxy(tmp_path, upstream.url, detect) as h:
        await h.get("/", client="203.0.113.9", headers=SCANNER)
        assert len(await h.findings()) == 1
        assert (await h.get("/", client="203.0.113.9"))[0] == 200


# -- observations ----------------------------------------------------------------------------------
class Recorder:
    """A detector that keeps what it is told (an extension-point double, not one of ours)."""

    name = "recorder"
    finding_types: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def observe(self, obs: Observation) -> tuple[()]:
        self.seen.append(obs)
        return ()

    def state_keys(self) -> int:
        return 0


LOGIN = {
    "login_routes": [
        {"path": "/login", "username_field": "username", "failure": {"marker": "invalid"}}
    ]
}


async def test_observations_describe_each_finished_request(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    async with detect_proxy(tmp_path, upstream.url, LOGIN) as h:
        recorder = Recorder()
        h.detect.detectors = (recorder,)
        h.clock.advance(5)
        await h.get("/products?x=1", client="192.0.2.20")
        await h.get("/blocked", client="192.0.2.21")
        await h.get("/status/404", client="192.0.2.22")
        await h.post("/login", client="192.0.2.23", data={"username": "Alice", "password": "no"})
        await h.post("/login", client="192.0.2.24", data={"username": "demo", "password": "demo"})
        await h.settle()
    by_client = {o.client_ip: o for o in recorder.seen}
    plain = by_client["192.0.2.20"]
    assert (plain.method, plain.path, plain.status, plain.action) == (
        "GET",
        "/products",
        200,
        "ALLOW",
    )
    assert plain.time == h.clock.now() and plain.route == "app" and plain.bytes_out > 0
    assert plain.user_agent == "Mozilla/5.0 (harness)" and len(plain.request_id) == 32
    assert plain.username is None and plain.login_failed is None
    blocked = by_client["192.0.2.21"]
    assert (blocked.status, blocked.action, blocked.terminating_rule) == (
        403,
        "BLOCK",
        "block-blocked",
    )
    assert by_client["192.0.2.22"].status == 404
    failed = by_client["192.0.2.23"]
    assert (failed.username, failed.login_failed, failed.status) == ("alice", True, 401)
    assert failed.bytes_in > 0
    ok = by_client["192.0.2.24"]
    assert (ok.username, ok.login_failed, ok.status) == ("demo", False, 200)


async def test_a_marker_alone_judges_a_200_login_failed(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    failure = {"status": [], "marker": "wrong-password"}
    detect = {"login_routes": [{"path": "/echo", "username_field": "user", "failure": failure}]}
    async with detect_proxy(tmp_path, upstream.url, detect) as h:
        recorder = Recorder()
        h.detect.detectors = (recorder,)
        # the echo answers 200 with the query string in its body
        await h.post("/echo?result=wrong-password", data={"user": "bob"})
        await h.post("/echo?result=welcome", data={"user": "bob"})
        await h.settle()
    assert [(o.username, o.login_failed) for o in recorder.seen] == [
        ("bob", True),
        ("bob", False),
    ]


async def test_detection_off_builds_no_service(start_proxy: StartProxy) -> None:
    proxy = await start_proxy()
    assert proxy.server.sidecars.detect is None
    off = await start_proxy({"detect": {"enabled": False}})
    assert off.server.sidecars.detect is None


# -- the decisions on the command line -------------------------------------------------------------
async def test_decisions_are_listed_and_removed_with_the_cli(
    tmp_path: Path, upstream: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from wafproxy.cli import main

    async with detect_proxy(tmp_path, upstream.url, HIGH_SCANNER) as h:
        await h.get("/", client="203.0.113.10", headers=SCANNER)
        await h.settle()
        admin = ["--admin", h.admin_url, "--token", "harness-token"]
        assert await asyncio.to_thread(main, ["detect", "decisions", *admin]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:4] == ["ACTION", "ADDRESS", "EXPIRES", "LEFT"]
        assert table[1].split()[:2] == ["block", "203.0.113.10/32"]
        assert "Recon:HTTP/ScannerUserAgent" in table[1]
        code = await asyncio.to_thread(main, ["detect", "remove", "203.0.113.10", *admin])
        assert code == 0 and "removed 203.0.113.10" in capsys.readouterr().out
        assert (await h.get("/", client="203.0.113.10"))[0] == 200
        assert await asyncio.to_thread(main, ["detect", "remove", "203.0.113.10", *admin]) == 1
        by_config = ["detect", "decisions", "--json", "-c", str(h.config_path), *admin]
        assert await asyncio.to_thread(main, by_config) == 0
        assert capsys.readouterr().out == ""


def test_findings_sample_writes_one_marked_finding_per_detection_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wafproxy.cli import main
    from wafproxy.detect import DETECTORS
    from wafproxy.findings.store import FindingQuery, FindingStore

    store_path = tmp_path / "findings.db"
    assert main(["findings", "sample", "--store", str(store_path)]) == 0
    store = FindingStore(store_path)
    try:
        found = store.query(FindingQuery(limit=1000))
    finally:
        store.close()
    types = {t for name in DETECTORS for t in DETECTORS[name].finding_types}
    assert {f.type for f in found} == types
    assert all(f.title.startswith("[SAMPLE] ") and f.details.get("sample") for f in found)
