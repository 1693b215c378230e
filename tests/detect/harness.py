"""A proxy with detection on, for tests that drive traffic through it on 127.0.0.1.

    async with detect_proxy(tmp_path, upstream.url, {"login_routes": [...]}) as h:
        await h.get("/", client="198.51.100.7", headers={"User-Agent": "sqlmap/1.7"})
        h.clock.advance(60)                  # windows and baselines move without sleeping
        findings = await h.findings(type="Recon:HTTP/ScannerUserAgent")
        assert await h.decisions() == {...}

- The clock is a ``FakeClock`` the proxy (rules, IP set expiry) and the detectors (every
  Observation.time) read; it starts at the wall clock (the findings store prunes what looks
  months old) and moves only when told to.
- ``client=`` speaks as any address: the proxy trusts 127.0.0.1 as a proxy hop, so the last
  X-Forwarded-For address is the client the rules, the detectors and the decisions see.
- ``findings()`` and ``decisions()`` first wait until the detection queue and the findings
  queue are drained, so a test reads what its requests caused.
- The web ACL (``ACL``) puts the shipped wafproxy-detect group first, blocks ``/blocked`` and
  labels ``/attack`` paths ``wafproxy:attack:test``; pass ``acl=`` for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from wafproxy.config.load import load_service_config
from wafproxy.detect.config import BLOCK_SET, COUNT_SET
from wafproxy.detect.service import DetectService
from wafproxy.findings.model import Finding, Status
from wafproxy.findings.service import FindingsService
from wafproxy.findings.store import FindingQuery
from wafproxy.proxy_server import ProxyServer
from wafproxy.state import IpEntry, SharedState

ACL = """\
web_acl: detect-test
default_action: allow
rules:
  - name: wafproxy-detect
    priority: 1
    override_action: none
    statement: {managed_rule_group: {name: wafproxy-detect}}
  - name: block-blocked
    priority: 10
    action: block
    statement: {byte_match: {field: uri_path, constraint: starts_with, value: /blocked}}
  - name: label-attack
    priority: 20
    action: block
    rule_labels: [wafproxy:attack:test]
    statement: {byte_match: {field: uri_path, constraint: starts_with, value: /attack}}
"""


class FakeClock:
    def __init__(self, start: float | None = None) -> None:
        self.time = float(int(time.time())) if start is None else start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> float:
        self.time += seconds
        return self.time


@dataclass
class DetectHarness:
    server: ProxyServer
    clock: FakeClock
    session: aiohttp.ClientSession
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.proxy_ports[0]}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.server.admin_port}"

    @property
    def detect(self) -> DetectService:
        assert self.server.sidecars.detect is not None, "detection is off"
        return self.server.sidecars.detect

    @property
    def findings_service(self) -> FindingsService:
        assert self.server.sidecars.findings is not None
        return self.server.sidecars.findings

    @property
    def state(self) -> SharedState:
        assert self.server.state is not None
        return self.server.state

    # -- traffic -----------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        client: str = "198.51.100.1",
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json: Any = None,
    ) -> tuple[int, str]:
        """(status, body) of one request sent as ``client``."""
        sent = {"User-Agent": "Mozilla/5.0 (harness)", **(headers or {})}
        sent["X-Forwarded-For"] = client
        async with self.session.request(
            method, self.url + path, headers=sent, data=data, json=json, allow_redirects=False
        ) as response:
            return response.status, await response.text(errors="replace")

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, str]:
        return await self.request("POST", path, **kwargs)

    # -- what it caused ----------------------------------------------------------------------------
    async def settle(self) -> None:
        """Every request so far observed, every finding recorded, every decision written."""
        await self.detect.idle()
        queue = self.findings_service._queue
        for _ in range(500):
            if queue is None or queue.empty():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # the batch taken off the queue is being written

    async def findings(self, **query: Any) -> list[Finding]:
        """Every status unless ``statuses=`` is given; other keys as in FindingQuery."""
        await self.settle()
        query.setdefault("statuses", frozenset(Status))
        query.setdefault("source", "detect")
        return await self.findings_service.query(FindingQuery(**query))

    async def decisions(self) -> dict[str, list[IpEntry]]:
        """Live entries of the block and count sets, on the fake clock."""
        await self.settle()
        now = self.clock.now()
        return {name: await self.state.ip_entries(name, now=now) for name in (BLOCK_SET, COUNT_SET)}


def harness_config(
    upstream_url: str,
    directory: Path,
    detect: Mapping[str, Any] | None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "listeners": [{"listen": "127.0.0.1:0"}],
        "routes": [{"name": "app", "host": "*", "upstream": "app", "web_acl": "detect-test"}],
        "upstreams": {"app": {"targets": [upstream_url]}},
        "rules": [str(directory / "acl.yaml")],
        "admin": {"listen": "127.0.0.1:0", "token": "harness-token"},
        "client_ip": {"trusted_proxies": ["127.0.0.1/32"]},
        "decision_log": {"destination": str(directory / "decisions.jsonl")},
        "state": {"dir": str(directory / "state")},
        "findings": {"store": ":memory:"},
        "detect": dict(detect or {}),
    }
    config.update(changes or {})
    return config


@contextlib.asynccontextmanager
async def detect_proxy(
    directory: Path,
    upstream_url: str,
    detect: Mapping[str, Any] | None = None,
    *,
    acl: str = ACL,
    changes: Mapping[str, Any] | None = None,
    clock: FakeClock | None = None,
) -> AsyncIterator[DetectHarness]:
    """A started proxy in front of ``upstream_url`` with ``detect:`` set to ``detect``; top-level
    ``changes`` replace whole sections of the config."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "acl.yaml").write_text(acl)
    config_path = directory / "wafproxy.yaml"
    data = harness_config(upstream_url, directory, detect, changes)
    config_path.write_text(yaml.safe_dump(data))
    fake = clock or FakeClock()
    server = ProxyServer(
        load_service_config(config_path),
        config_path=config_path,
        announce=False,
        watch_files=False,
        clock=fake.now,
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield DetectHarness(server, fake, session, config_path)
    finally:
        await server.stop()
