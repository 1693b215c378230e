"""``wafproxy demo attack`` against a real proxy with the demo's detection config: every finding
type it promises is raised, each about the scenario's own client; and the generator's guards
(loopback only, bounded) and report."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from wafproxy.cli import build_parser
from wafproxy.config.load import config_from_args
from wafproxy.detect import attack_traffic as traffic
from wafproxy.detect import build_detectors
from wafproxy.detect.attack import Options, attack, check_loopback, expected_types, report
from wafproxy.detect.demo_config import TOR_ADDRESS, with_detection
from wafproxy.errors import WafProxyError
from wafproxy.proxy_server import ProxyServer

SITE_WIDE = "Behavior:HTTP/TrafficVolumeUnusual"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def demo(upstream: Any, tmp_path: Path) -> AsyncIterator[Options]:
    """The demo's proxy (detection on, as ``wafproxy demo`` runs it) in front of the demo app."""
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = config_from_args(upstream.url, listen, admin)
    config = replace(config, state=replace(config.state, dir=tmp_path / "state"))
    with with_detection(config) as detecting:
        server = ProxyServer(detecting, announce=False, watch_files=False)
        await server.start()
        yield Options(target=f"http://{listen}", admin=f"http://{admin}", settle_seconds=1.0)
        await server.stop()


async def test_every_scenario_raises_its_finding_about_its_own_client(
    demo: Options, capsys: pytest.CaptureFixture[str]
) -> None:
    found = await attack(replace(demo, baseline_seconds=0))
    for scenario in (*traffic.SCENARIOS, traffic.FLOOD):
        subjects = {f["subject"] for f in found.get(scenario.finding_type, [])}
        assert scenario.address in subjects, scenario.finding_type
    compromise = found["AttackSequence:HTTP/CompromiseAttempt"][0]
    assert compromise["severity"]["label"] == "critical" and len(compromise["evidence"]) >= 3
    _, missing = report(found)
    assert missing == [SITE_WIDE]  # no ordinary traffic first: no site baseline to rise above
    out = capsys.readouterr().out
    assert "remediation decisions" in out and "198.51.100.18/32" in out  # the compromise: blocked


@pytest.mark.slow
async def test_with_a_warm_baseline_no_type_is_missing(demo: Options) -> None:
    found = await attack(demo)
    lines, missing = report(found)
    assert missing == [], "\n".join(lines)


def test_the_scenarios_cover_every_registered_finding_type() -> None:
    covered = {s.finding_type for s in (*traffic.SCENARIOS, traffic.FLOOD)} | {SITE_WIDE}
    assert covered == set(expected_types())
    addresses = [s.address for s in (*traffic.SCENARIOS, traffic.FLOOD)]
    assert len(set(addresses)) == len(addresses)


def test_the_demo_config_loads_its_threat_lists(tmp_path: Path) -> None:
    config = config_from_args("http://127.0.0.1:9", "127.0.0.1:1", "127.0.0.1:2")
    with with_detection(config) as detecting:
        assert detecting.detect is not None and detecting.detect.remediation.enabled
        built = build_detectors(detecting.detect.detectors, detecting.detect.base)
        lists = {d.name: d for d in built if d.name in ("malicious_ip", "tor_caller")}
        assert TOR_ADDRESS in lists["tor_caller"].lists[0]  # type: ignore[attr-defined]
        assert {str(n) for n in detecting.client_ip.trusted_proxies} == {"127.0.0.0/8", "::1/128"}
        assert detecting.findings is not None and detecting.findings.store == ":memory:"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://192.0.2.1:8080", False),
        ("http://example.com", False),
    ],
)
def test_only_loopback_targets_without_allow_remote(url: str, allowed: bool) -> None:
    if allowed:
        check_loopback(url, allow_remote=False)
    else:
        with pytest.raises(WafProxyError, match="--allow-remote"):
            check_loopback(url, allow_remote=False)
    check_loopback(url, allow_remote=True)


def test_the_budget_bounds_requests() -> None:
    budget = traffic.Budget(max_requests=3, seconds=60)
    assert [budget.take() for _ in range(5)] == [True, True, True, False, False]
    assert budget.sent == 3
    assert traffic.Budget(max_requests=10, seconds=0).take() is False


def test_the_report_lists_what_is_missing() -> None:
    finding = {"severity": {"label": "high", "score": 7.0}, "subject": "198.51.100.13", "count": 2}
    lines, missing = report({"UnauthorizedAccess:HTTP/BruteForce": [finding]})
    assert any("BruteForce" in line and "198.51.100.13" in line for line in lines)
    assert "UnauthorizedAccess:HTTP/BruteForce" not in missing
    assert len(missing) == len(expected_types()) - 1
    assert lines[-1].startswith("missing: ")


def test_the_command_is_wired_under_demo() -> None:
    args = build_parser().parse_args(["demo", "attack", "http://127.0.0.1:1", "--duration", "5"])
    assert args.func.__name__ == "cmd_attack" and args.url == "http://127.0.0.1:1"
    assert build_parser().parse_args(["demo"]).func.__name__ == "cmd_demo"
