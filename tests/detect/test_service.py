"""DetectService: the bounded queue, the consumer task, trusted addresses, findings and decisions,
with a real findings service (in-memory SQLite) and a real memory state."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from wafproxy.acl.ipset import build_ip_set
from wafproxy.detect.config import BLOCK_SET, RemediationConfig
from wafproxy.detect.observation import Observation
from wafproxy.detect.remediation import Remediator
from wafproxy.detect.service import DetectMetrics, DetectService
from wafproxy.findings.model import Finding
from wafproxy.findings.service import FindingsService
from wafproxy.findings.store import FindingQuery, FindingStore
from wafproxy.state import SharedState, create_state
from wafproxy.state.config import Backend, RedisConfig, StateConfig

NOW = float(int(time.time()))
"""Near the wall clock: the findings store prunes what was last seen too long ago."""
FLOOD = "Impact:HTTP/RequestFlood"


def obs(ip: str = "192.0.2.7", n: int = 0, path: str = "/") -> Observation:
    return Observation(
        time=NOW + n,
        request_id=f"req-{n}",
        client_ip=ip,
        method="GET",
        host="shop.example",
        route="shop",
        path=path,
        status=200,
        bytes_in=0,
        bytes_out=100,
        latency=0.001,
        user_agent="test",
        action="ALLOW",
        terminating_rule="Default_Action",
    )


class EveryNth:
    """Raises a high request-flood finding about the client on every n-th observation."""

    name = "every_nth"
    finding_types: tuple[str, ...] = (FLOOD,)

    def __init__(self, n: int = 1, severity: float = 8.0) -> None:
        self.n = n
        self.severity = severity
        self.seen: list[Observation] = []

    def observe(self, o: Observation) -> Iterable[Finding]:
        self.seen.append(o)
        if len(self.seen) % self.n:
            return ()
        return [
            Finding.new(
                type=FLOOD,
                title="flood",
                description="many requests",
                severity=self.severity,
                resource=o.route,
                subject=o.client_ip,
                source="detect",
                check=self.name,
                evidence=[o.request_id],
                now=o.time,
            )
        ]

    def state_keys(self) -> int:
        return len({o.client_ip for o in self.seen})


class Exploding:
    name = "exploding"
    finding_types: tuple[str, ...] = ("Bug:HTTP/Bug",)

    def __init__(self) -> None:
        self.calls = 0

    def observe(self, o: Observation) -> Iterable[Finding]:
        self.calls += 1
        raise RuntimeError("detector bug")

    def state_keys(self) -> int:
        return 0


@pytest.fixture
async def findings() -> AsyncIterator[FindingsService]:
    service = FindingsService(FindingStore(":memory:"))
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[SharedState]:
    shared = create_state(StateConfig(dir=tmp_path / "state"))
    await shared.start()
    yield shared
    await shared.close()


async def stored(findings: FindingsService, count: int = 1) -> list[Finding]:
    """What the findings service recorded, once ``count`` observations are folded in (its
    queue is drained by a task of its own)."""
    for _ in range(500):
        found = await findings.query(FindingQuery())
        if sum(f.count for f in found) >= count:
            return found
        await asyncio.sleep(0.01)
    return await findings.query(FindingQuery())


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_findings_reach_the_findings_store(findings: FindingsService) -> None:
    registry = CollectorRegistry()
    detector = EveryNth(3)
    service = DetectService([detector], findings, metrics=DetectMetrics(registry, [detector.name]))
    await service.start()
    try:
        for n in range(6):
            assert service.offer(obs(n=n))
        await service.idle()
    finally:
        await service.stop()
    (found,) = await stored(findings, 2)
    assert (found.type, found.subject, found.count) == (FLOOD, "192.0.2.7", 2)
    assert set(found.evidence) == {"req-2", "req-5"}
    assert value(registry, "wafproxy_detect_observations_total") == 6
    labels = {"detector": "every_nth", "type": FLOOD, "severity": "high"}
    assert value(registry, "wafproxy_detect_findings_total", **labels) == 2


async def test_a_full_queue_drops_and_counts_without_waiting(findings: FindingsService) -> None:
    registry = CollectorRegistry()
    detector = EveryNth(1_000_000)
    service = DetectService(
        [detector], findings, queue_size=5, metrics=DetectMetrics(registry, [detector.name])
    )
    await service.start()
    try:
        accepted = [service.offer(obs(n=n)) for n in range(8)]  # no await: the consumer waits
        assert accepted == [True] * 5 + [False] * 3
        assert service.dropped == 3
        assert value(registry, "wafproxy_detect_dropped_total") == 3
        await service.idle()
        assert len(detector.seen) == 5
        assert service.offer(obs(n=9))  # room again
    finally:
        await service.stop()


async def test_offer_before_start_drops(findings: FindingsService) -> None:
    service = DetectService([EveryNth()], findings)
    assert not service.offer(obs())
    assert service.dropped == 1


async def test_a_raising_detector_is_counted_and_the_task_survives(
    findings: FindingsService,
) -> None:
    registry = CollectorRegistry()
    bad, good = Exploding(), EveryNth(1)
    service = DetectService(
        [bad, good], findings, metrics=DetectMetrics(registry, [bad.name, good.name])
    )
    await service.start()
    try:
        for n in range(3):
            service.offer(obs(n=n))
        await service.idle()
        service.offer(obs(n=10))
        await service.idle()
        assert service._task is not None and not service._task.done()
    finally:
        await service.stop()
    assert bad.calls == 4 and len(good.seen) == 4
    assert service.errors == 4
    assert value(registry, "wafproxy_detect_errors_total", detector="exploding") == 4
    (found,) = await stored(findings, 4)
    assert found.count == 4


async def test_trusted_clients_are_not_observed_and_never_subjects(
    findings: FindingsService,
) -> None:
    detector = EveryNth(1)
    trusted = build_ip_set("trusted", ["10.0.0.0/8"])
    service = DetectService([detector], findings, trusted=trusted)
    await service.start()
    try:
        service.offer(obs(ip="10.1.2.3"))
        service.offer(obs(ip="192.0.2.7", n=1))
        await service.idle()
    finally:
        await service.stop()
    assert [o.client_ip for o in detector.seen] == ["192.0.2.7"]
    (found,) = await stored(findings)
    assert found.subject == "192.0.2.7"


class AboutSomeoneElse(EveryNth):
    """A finding whose subject is not the observed client (as a site-wide detector's may be)."""

    def __init__(self, subject: str) -> None:
        super().__init__(1)
        self.subject = subject

    def observe(self, o: Observation) -> Iterable[Finding]:
        return [replace(f, subject=self.subject) for f in super().observe(o)]


async def test_a_finding_about_a_trusted_subject_is_dropped(findings: FindingsService) -> None:
    trusted = build_ip_set("trusted", ["10.0.0.0/8"])
    about_trusted = DetectService([AboutSomeoneElse("10.9.9.9")], findings, trusted=trusted)
    assert about_trusted.run_detectors([obs(ip="192.0.2.7")]) == []
    about_other = DetectService([AboutSomeoneElse("alice")], findings, trusted=trusted)
    (kept,) = about_other.run_detectors([obs(ip="192.0.2.7")])
    assert kept.subject == "alice"


async def test_a_finding_becomes_a_decision_recorded_in_its_details(
    findings: FindingsService, state: SharedState
) -> None:
    registry = CollectorRegistry()
    remediator = Remediator(RemediationConfig(), state)
    service = DetectService(
        [EveryNth(1)], findings, remediator=remediator, metrics=DetectMetrics(registry)
    )
    await service.start()
    try:
        service.offer(obs())
        await service.idle()
    finally:
        await service.stop()
    assert "192.0.2.7" in state.ip_sets(NOW + 1)[BLOCK_SET]
    (found,) = await stored(findings)
    decision = found.details["decision"]
    assert decision["action"] == "block" and decision["ip_set"] == BLOCK_SET
    assert decision["expires"] == NOW + 600
    assert value(registry, "wafproxy_detect_decisions_total", action="block") == 1


async def test_an_unreachable_state_is_counted_and_the_finding_still_recorded(
    findings: FindingsService, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a loopback port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = StateConfig(
        backend=Backend.REDIS, redis=RedisConfig(url=f"redis://127.0.0.1:{port}/0")
    )
    down = create_state(config)
    await down.start()
    registry = CollectorRegistry()
    remediator = Remediator(RemediationConfig(), down)
    service = DetectService(
        [EveryNth(1)], findings, remediator=remediator, metrics=DetectMetrics(registry)
    )
    await service.start()
    try:
        service.offer(obs())
        await service.idle()
    finally:
        await service.stop()
        await down.close()
    (found,) = await stored(findings)
    assert found.type == FLOOD and "decision" not in found.details
    assert value(registry, "wafproxy_detect_decision_errors_total") == 1
    assert len(remediator.history) == 0  # nothing remembered: the next finding tries again


async def test_stop_handles_what_is_still_queued(findings: FindingsService) -> None:
    detector = EveryNth(1)
    service = DetectService([detector], findings)
    await service.start()
    for n in range(100):
        service.offer(obs(n=n))
    await service.stop()
    assert len(detector.seen) == 100
    assert not service.offer(obs())
