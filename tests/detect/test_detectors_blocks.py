"""Behavior:HTTP/WafBlockSpike."""

from __future__ import annotations

from wafproxy.detect.detectors.waf_block_spike import WafBlockSpike, WafBlockSpikeSettings
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import request
from wafproxy.findings.model import Severity

T0 = 1_700_000_000.0
IP = "203.0.113.40"


def blocked(t: float, n: int, rule: str = "SQLi_QUERYARGUMENTS",
            labels: tuple[str, ...] = ("wafproxy:attack:sqli",)) -> Observation:  # fmt: skip
    return request(IP, t, n, "/search", status=403, action="BLOCK", terminating_rule=rule,
                   labels=labels)  # fmt: skip


def test_many_blocks_from_one_client() -> None:
    detector = WafBlockSpike(WafBlockSpikeSettings(threshold=20, window=300.0))
    stream = [blocked(T0 + n, n) for n in range(10)]
    stream += [blocked(T0 + 10 + n, 10 + n, "CrossSiteScripting_BODY", ("wafproxy:attack:xss",))
               for n in range(15)]  # fmt: skip
    findings = [f for obs in stream for f in detector.observe(obs)]
    (finding,) = findings
    assert finding.type == "Behavior:HTTP/WafBlockSpike"
    assert finding.subject == IP and finding.band is Severity.MEDIUM
    assert finding.details["blocks"] == 20
    assert finding.details["rules"] == ["SQLi_QUERYARGUMENTS", "CrossSiteScripting_BODY"]
    assert finding.details["attack_labels"] == ["wafproxy:attack:sqli", "wafproxy:attack:xss"]
    assert finding.evidence == tuple(f"sample-{IP}-{n}" for n in range(10, 20))


def test_just_below_the_threshold_is_quiet() -> None:
    detector = WafBlockSpike(WafBlockSpikeSettings(threshold=20, window=300.0))
    assert [f for n in range(19) for f in detector.observe(blocked(T0 + n, n))] == []


def test_blocks_spread_over_more_than_the_window_are_quiet() -> None:
    detector = WafBlockSpike(WafBlockSpikeSettings(threshold=20, window=300.0))
    assert [f for n in range(100) for f in detector.observe(blocked(T0 + 16 * n, n))] == []


def test_allowed_and_counted_requests_are_not_blocks() -> None:
    detector = WafBlockSpike(WafBlockSpikeSettings(threshold=2))
    stream = [request(IP, T0 + n, n, labels=("wafproxy:attack:sqli",)) for n in range(10)]
    stream += [request(IP, T0 + 20 + n, 20 + n, action="CAPTCHA", status=405) for n in range(5)]
    assert [f for obs in stream for f in detector.observe(obs)] == []
    assert detector.state_keys() == 0
