"""UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom and UnauthorizedAccess:HTTP/TorIPCaller, with
lists read from real files."""

from __future__ import annotations

import json
from pathlib import Path

from wafproxy.detect import build_detectors
from wafproxy.detect.detectors.malicious_ip import MaliciousIpCaller, MaliciousIpSettings
from wafproxy.detect.detectors.tor_caller import TorCaller, TorCallerSettings
from wafproxy.detect.sample import request
from wafproxy.findings.model import Severity

T0 = 1_700_000_000.0


def lists(tmp_path: Path) -> None:
    (tmp_path / "incident.txt").write_text("# incident 42\n203.0.113.0/28\n")
    (tmp_path / "feed.csv").write_text("ip,first_seen\n198.51.100.7,2024-01-01\n")
    indicator = {"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
                 "pattern": "[ipv6-addr:value = '2001:db8:bad::/48']"}  # fmt: skip
    (tmp_path / "intel.json").write_text(json.dumps({"type": "bundle", "objects": [indicator]}))
    (tmp_path / "tor.txt").write_text("ExitNode ABC\nExitAddress 192.0.2.77 2024-05-01 10:00:00\n")


def test_clients_on_any_threat_list_raise_one_finding_each(tmp_path: Path) -> None:
    lists(tmp_path)
    files = ("incident.txt", "feed.csv", "intel.json")
    detector = MaliciousIpCaller(MaliciousIpSettings(files=files), tmp_path)
    clients = ["203.0.113.9", "198.51.100.7", "2001:db8:bad::5", "203.0.113.99", "10.0.0.1"]
    findings = [f for n, ip in enumerate(clients * 3) for f in detector.observe(
        request(ip, T0 + n, n))]  # fmt: skip
    assert [f.subject for f in findings] == clients[:3]
    first = findings[0]
    assert first.type == "UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom"
    assert first.band is Severity.MEDIUM
    assert first.details["lists"] == ["incident.txt"]
    assert first.evidence == ("sample-203.0.113.9-0",)
    assert findings[2].details["lists"] == ["intel.json"]
    assert "203.0.113.9" in first.title


def test_threat_list_finding_again_after_the_cooldown(tmp_path: Path) -> None:
    lists(tmp_path)
    detector = MaliciousIpCaller(MaliciousIpSettings(files=("incident.txt",), cooldown=60.0),
                                 tmp_path)  # fmt: skip
    times = [T0, T0 + 30, T0 + 59, T0 + 61]
    found = [f for n, t in enumerate(times) for f in detector.observe(request("203.0.113.1", t, n))]
    assert len(found) == 2
    assert found[1].evidence == tuple(f"sample-203.0.113.1-{n}" for n in range(4))


def test_tor_exit_list(tmp_path: Path) -> None:
    lists(tmp_path)
    settings = {"tor_caller": TorCallerSettings(files=("tor.txt",))}
    (detector,) = [d for d in build_detectors(settings, tmp_path) if d.name == "tor_caller"]
    assert list(detector.observe(request("192.0.2.78", T0, 0))) == []
    (finding,) = detector.observe(request("192.0.2.77", T0, 1))
    assert finding.type == "UnauthorizedAccess:HTTP/TorIPCaller"
    assert finding.subject == "192.0.2.77" and finding.band is Severity.MEDIUM
    assert finding.details["lists"] == ["tor.txt"]


def test_list_detectors_with_no_match_hold_no_state(tmp_path: Path) -> None:
    lists(tmp_path)
    detector = TorCaller(TorCallerSettings(files=("tor.txt",)), tmp_path)
    for n in range(1000):
        assert list(detector.observe(request(f"10.0.{n >> 8}.{n & 255}", T0 + n, n))) == []
    assert detector.state_keys() == 0
