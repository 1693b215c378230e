"""sample_findings: one real finding of every type, clearly marked as a sample."""

from __future__ import annotations

import ipaddress
import json

from wafproxy.detect import DETECTORS
from wafproxy.detect.sample import SAMPLE_NET, TITLE_PREFIX, attack_traffic, sample_findings
from wafproxy.findings.model import Finding, Severity

NOW = 1_750_000_000.0


def test_one_sample_of_every_type() -> None:
    findings = sample_findings(NOW)
    types = [f.type for f in findings]
    assert sorted(types) == sorted(t for n in DETECTORS for t in DETECTORS[n].finding_types)


def test_samples_are_marked_and_use_documentation_addresses() -> None:
    net = ipaddress.ip_network(SAMPLE_NET)
    for finding in sample_findings(NOW):
        assert finding.title.startswith(TITLE_PREFIX), finding.type
        assert finding.details["sample"] is True
        assert finding.source == "detect" and finding.check in DETECTORS
        assert finding.resource in ("sample", "shop.example")
        if finding.subject != "*":
            assert ipaddress.ip_address(finding.subject) in net, finding.subject
        assert finding.evidence, finding.type
        assert finding.remediation and finding.description
        assert finding.first_seen <= NOW


def test_samples_are_deterministic_and_json_ready() -> None:
    first = [f.to_dict() for f in sample_findings(NOW)]
    assert first == [f.to_dict() for f in sample_findings(NOW)]
    for data in first:
        assert Finding.from_dict(json.loads(json.dumps(data))).details["sample"] is True


def test_sample_severities_follow_the_detectors() -> None:
    bands = {f.type: f.band for f in sample_findings(NOW)}
    assert bands["AttackSequence:HTTP/CompromiseAttempt"] is Severity.CRITICAL
    assert bands["UnauthorizedAccess:HTTP/BruteForce"] is Severity.HIGH
    assert bands["Recon:HTTP/PathProbe"] is Severity.MEDIUM


def test_attack_traffic_stays_before_the_end_time() -> None:
    for name in DETECTORS:
        times = [o.time for o in attack_traffic(name, "192.0.2.1", NOW)]
        assert times and max(times) < NOW, name
        assert times == sorted(times), name
