"""Remediation: findings -> decisions in the detect IP sets (a real memory state on a fake clock),
and the shipped rule group acting on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.ipset import build_ip_set
from wafproxy.acl.model import ActionKind
from wafproxy.detect.config import (
    BLOCK_SET,
    COUNT_SET,
    DecisionAction,
    Escalation,
    Policy,
    RemediationConfig,
)
from wafproxy.detect.remediation import (
    DEFAULT_POLICIES,
    Remediator,
    policy_for,
    subject_address,
)
from wafproxy.findings.model import Finding, Severity
from wafproxy.rawhttp import build_request
from wafproxy.state import SharedState, create_state
from wafproxy.state.config import StateConfig

NOW = 1_700_000_000.0
FLOOD = "Impact:HTTP/RequestFlood"


def finding(
    subject: str = "192.0.2.7", type_: str = FLOOD, severity: float = 8.0, now: float = NOW
) -> Finding:
    return Finding.new(
        type=type_,
        title="t",
        description="d",
        severity=severity,
        resource="shop",
        subject=subject,
        source="detect",
        check="request_flood",
        now=now,
    )


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[SharedState]:
    shared = create_state(StateConfig(dir=tmp_path / "state"))
    await shared.start()
    yield shared
    await shared.close()


def remediator(state: SharedState, **changes: object) -> Remediator:
    config = RemediationConfig(**changes)  # type: ignore[arg-type]
    trusted = build_ip_set("trusted", ["10.0.0.0/8"])
    return Remediator(config, state, trusted)


async def test_a_high_finding_blocks_its_address_for_the_ttl(state: SharedState) -> None:
    decision = await remediator(state).apply(finding(), NOW)
    assert decision is not None
    assert (decision.action, decision.set_name, decision.ttl) == (
        DecisionAction.BLOCK,
        BLOCK_SET,
        600.0,
    )
    (entry,) = await state.ip_entries(BLOCK_SET, now=NOW + 1)
    assert entry.address == "192.0.2.7/32" and entry.expires == NOW + 600
    assert FLOOD in entry.reason and finding().id in entry.reason
    assert "192.0.2.7" in state.ip_sets(NOW + 599)[BLOCK_SET]
    assert "192.0.2.7" not in state.ip_sets(NOW + 600)[BLOCK_SET]
    assert await state.ip_entries(BLOCK_SET, now=NOW + 600) == []


async def test_repeat_offenders_get_longer_decisions_up_to_max_ttl(state: SharedState) -> None:
    escalation = Escalation(factor=3.0, max_ttl=10_000.0)
    r = remediator(state, escalation=escalation)
    ttls = []
    moment = decided_at = NOW
    for _ in range(5):
        decision = await r.apply(finding(now=moment), moment)
        assert decision is not None
        ttls.append(decision.ttl)
        decided_at, moment = moment, moment + decision.ttl + 1  # the decision has expired
    assert ttls == [600.0, 1800.0, 5400.0, 10_000.0, 10_000.0]
    (entry,) = await state.ip_entries(BLOCK_SET, now=decided_at + 1)
    assert "repeat offence 5" in entry.reason


async def test_a_live_block_is_not_lengthened_by_more_findings(state: SharedState) -> None:
    r = remediator(state)
    assert await r.apply(finding(), NOW) is not None
    spike = finding(type_="Behavior:HTTP/WafBlockSpike", now=NOW + 10)
    assert await r.apply(spike, NOW + 10) is None
    (entry,) = await state.ip_entries(BLOCK_SET, now=NOW + 11)
    assert entry.expires == NOW + 600


async def test_a_count_decision_is_upgraded_to_block(state: SharedState) -> None:
    r = remediator(state)
    tor = finding(type_="UnauthorizedAccess:HTTP/TorIPCaller")
    counted = await r.apply(tor, NOW)
    assert counted is not None and counted.set_name == COUNT_SET
    assert await r.apply(tor, NOW + 1) is None
    blocked = await r.apply(finding(now=NOW + 2), NOW + 2)
    assert blocked is not None and blocked.set_name == BLOCK_SET and blocked.repeat == 1


async def test_earlier_decisions_are_forgotten(state: SharedState) -> None:
    r = remediator(state, escalation=Escalation(forget_after=3600.0))
    await r.apply(finding(), NOW)
    again = await r.apply(finding(now=NOW + 7200), NOW + 7200)
    assert again is not None and again.repeat == 0 and again.ttl == 600.0


async def test_the_history_is_bounded(state: SharedState) -> None:
    r = remediator(state, escalation=Escalation(remember=3))
    for i in range(10):
        await r.apply(finding(subject=f"192.0.2.{i}"), NOW)
    assert len(r.history) == 3


async def test_trusted_addresses_are_never_decided(state: SharedState) -> None:
    r = remediator(state)
    assert await r.apply(finding(subject="10.1.2.3", severity=10.0), NOW) is None
    assert await r.apply(finding(subject="::ffff:10.1.2.3", severity=10.0), NOW) is None
    assert await state.ip_entries(BLOCK_SET, now=NOW) == []


async def test_usernames_are_never_blocked(state: SharedState) -> None:
    r = remediator(state)
    brute = finding(subject="alice@example.com", type_="UnauthorizedAccess:HTTP/BruteForce")
    assert await r.apply(brute, NOW) is None
    assert await state.ip_entries(BLOCK_SET, now=NOW) == []


async def test_defaults_ignore_medium_findings_and_site_wide_ones(state: SharedState) -> None:
    r = remediator(state)
    assert await r.apply(finding(severity=6.9), NOW) is None
    site = finding(type_="Behavior:HTTP/TrafficVolumeUnusual", severity=9.5)
    assert await r.apply(site, NOW) is None
    assert await r.apply(finding(type_="Something:Else/Entirely", severity=10.0), NOW) is None


async def test_configured_policies_replace_the_defaults(state: SharedState) -> None:
    policies = (Policy("Recon:HTTP/*", Severity.LOW, DecisionAction.COUNT, 60.0),)
    r = remediator(state, policies=policies)
    probe = await r.apply(finding(type_="Recon:HTTP/PathProbe", severity=3.0), NOW)
    assert probe is not None and probe.set_name == COUNT_SET and probe.ttl == 60.0
    assert await r.apply(finding(subject="192.0.2.99"), NOW) is None  # flood: not covered now


def test_policy_order_and_severity_floor() -> None:
    policies = (
        Policy("Recon:*", Severity.CRITICAL, DecisionAction.BLOCK, 1.0),
        Policy("Recon:*", Severity.MEDIUM, DecisionAction.COUNT, 2.0),
    )
    medium = finding(type_="Recon:HTTP/PathProbe", severity=4.0)
    low = finding(type_="Recon:HTTP/PathProbe", severity=3.9)
    critical = finding(type_="Recon:HTTP/PathProbe", severity=9.0)
    assert policy_for(policies, medium) is policies[1]
    assert policy_for(policies, low) is None
    assert policy_for(policies, critical) is policies[0]


def test_every_default_policy_acts_only_on_high_findings() -> None:
    assert {p.min_severity for p in DEFAULT_POLICIES} == {Severity.HIGH}


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("192.0.2.7", "192.0.2.7"),
        (" 2001:DB8::1 ", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("alice", None),
        ("192.0.2.0/24", None),
        ("", None),
    ],
)
def test_subject_address(subject: str, expected: str | None) -> None:
    assert subject_address(subject) == expected


# -- the shipped rule group ------------------------------------------------------------------------
ACL = """\
web_acl: shop
default_action: allow
rules:
  - name: wafproxy-detect
    priority: 1
    override_action: none
    statement: {managed_rule_group: {name: wafproxy-detect}}
"""


async def test_the_shipped_group_blocks_and_flags_decided_addresses(
    state: SharedState, tmp_path: Path
) -> None:
    (tmp_path / "acl.yaml").write_text(ACL)
    rule_set = load_rule_files([tmp_path / "acl.yaml"])
    assert {BLOCK_SET, COUNT_SET} <= rule_set.dynamic_ip_sets
    acl = rule_set.acls["shop"]
    r = remediator(state)
    await r.apply(finding(subject="192.0.2.7"), NOW)
    await r.apply(finding(subject="192.0.2.8", type_="UnauthorizedAccess:HTTP/TorIPCaller"), NOW)
    sets = state.ip_sets(NOW + 1)

    def judge(ip: str) -> tuple[ActionKind, tuple[str, ...]]:
        verdict = evaluate(acl, build_request("GET", "/", client_ip=ip), now=NOW, ip_sets=sets)
        return verdict.action, verdict.labels

    assert judge("192.0.2.7") == (ActionKind.BLOCK, ("wafproxy:detect:blocked",))
    assert judge("192.0.2.8") == (ActionKind.ALLOW, ("wafproxy:detect:flagged",))
    assert judge("192.0.2.9") == (ActionKind.ALLOW, ())
