"""Remediation: a finding about a client address becomes a decision in a dynamic IP set.

A decision ``block``s (``wafproxy-detect-block``) or ``count``s (``wafproxy-detect-count``,
label ``wafproxy:detect:flagged``) the address for a TTL; the shipped rule group
rules/wafproxy-detect.yaml turns the sets into web ACL actions. A repeat offender's TTL grows,
``ttl * factor ** n`` up to ``max_ttl``, n being its earlier decisions (remembered per process,
bounded, forgotten after ``forget_after``). A finding about an address that already has a live
decision at least as strong makes no new one, so a blocked client's own retries (a WAF block
spike) do not keep lengthening its block.

Never decided: a subject that is not an IP address (a username: blocking an account's name is
not something an IP set can do, and locking accounts is the application's business), a
trusted address, or a finding no policy covers. The defaults act only on high and critical
findings, and block only where blocking the address is the right answer; traffic that is
unusual but may be legitimate (Tor exits, a large download) is counted (labelled) instead.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from wafproxy.acl.ipset import IpSet
from wafproxy.detect.config import DecisionAction, Escalation, Policy, RemediationConfig
from wafproxy.findings.model import Finding, Severity, glob_match
from wafproxy.state import SharedState

log = logging.getLogger("wafproxy.detect")
BLOCK, COUNT = DecisionAction.BLOCK, DecisionAction.COUNT
HIGH = Severity.HIGH

DEFAULT_POLICIES: tuple[Policy, ...] = (
    Policy("AttackSequence:HTTP/CompromiseAttempt", HIGH, BLOCK, 3600.0),
    Policy("UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom", HIGH, BLOCK, 3600.0),
    Policy("UnauthorizedAccess:HTTP/BruteForce", HIGH, BLOCK, 900.0),
    Policy("CredentialAccess:HTTP/CredentialStuffing", HIGH, BLOCK, 900.0),
    Policy("Impact:HTTP/RequestFlood", HIGH, BLOCK, 600.0),
    Policy("Behavior:HTTP/WafBlockSpike", HIGH, BLOCK, 900.0),
    Policy("Recon:HTTP/PathProbe", HIGH, BLOCK, 900.0),
    Policy("Discovery:HTTP/SensitiveFileProbe", HIGH, BLOCK, 900.0),
    Policy("Recon:HTTP/ScannerUserAgent", HIGH, BLOCK, 900.0),
    Policy("UnauthorizedAccess:HTTP/TorIPCaller", HIGH, COUNT, 3600.0),
    Policy("Exfiltration:HTTP/AnomalousResponseVolume", HIGH, COUNT, 3600.0),
)
"""``Behavior:HTTP/TrafficVolumeUnusual`` is about the whole site: no address to act on."""


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    set_name: str
    address: str
    ttl: float
    reason: str
    finding_id: str
    finding_type: str
    repeat: int
    """Earlier decisions for this address (0: a first offence)."""


@dataclass
class _Past:
    count: int
    last: float
    action: DecisionAction
    expires: float


class History:
    """Per address: how many decisions, the latest one's action and expiry. LRU-bounded."""

    def __init__(self, escalation: Escalation) -> None:
        self.escalation = escalation
        self._table: OrderedDict[str, _Past] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def earlier(self, address: str, now: float) -> _Past | None:
        past = self._table.get(address)
        if past is None:
            return None
        if now - past.last > self.escalation.forget_after:
            del self._table[address]
            return None
        return past

    def record(self, decision: Decision, now: float) -> None:
        self._table.pop(decision.address, None)
        self._table[decision.address] = _Past(
            decision.repeat + 1, now, decision.action, now + decision.ttl
        )
        while len(self._table) > self.escalation.remember:
            self._table.popitem(last=False)


def subject_address(subject: str) -> str | None:
    """The subject as a canonical IP address, or None (a username, a route, …)."""
    try:
        address = ipaddress.ip_address(subject.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def policy_for(policies: Sequence[Policy], finding: Finding) -> Policy | None:
    """The first policy whose type matches and whose severity floor the finding reaches."""
    for policy in policies:
        if finding.severity >= policy.min_severity.floor and glob_match(policy.type, finding.type):
            return policy
    return None


class Remediator:
    def __init__(
        self, config: RemediationConfig, state: SharedState, trusted: IpSet | None = None
    ) -> None:
        self.config = config
        self.state = state
        self.trusted = trusted
        self.policies = config.policies if config.policies is not None else DEFAULT_POLICIES
        self.history = History(config.escalation)

    def plan(self, finding: Finding, now: float) -> Decision | None:
        """The decision this finding calls for now, or None. Changes nothing."""
        address = subject_address(finding.subject)
        if address is None or (self.trusted is not None and address in self.trusted):
            return None
        policy = policy_for(self.policies, finding)
        if policy is None:
            return None
        past = self.history.earlier(address, now)
        if past is not None and past.expires > now and _covers(past.action, policy.action):
            return None
        repeat = past.count if past is not None else 0
        ttl = self.ttl(policy.ttl, repeat)
        return Decision(
            action=policy.action,
            set_name=self.config.set_for(policy.action),
            address=address,
            ttl=ttl,
            reason=_reason(finding, repeat),
            finding_id=finding.id,
            finding_type=finding.type,
            repeat=repeat,
        )

    def ttl(self, base: float, repeat: int) -> float:
        escalation = self.config.escalation
        grown = base * escalation.factor ** min(repeat, 64)
        return max(base, min(grown, escalation.max_ttl))

    async def apply(self, finding: Finding, now: float) -> Decision | None:
        """Plan and write the decision into its IP set. Raises what the state raises
        (StateUnavailable); nothing is remembered then, so the next finding tries again."""
        decision = self.plan(finding, now)
        if decision is None:
            return None
        await self.state.block_ip(
            decision.set_name, decision.address, decision.ttl, decision.reason, now=now
        )
        self.history.record(decision, now)
        log.info(
            "detect: %s %s for %.0f s (%s)",
            decision.action.value,
            decision.address,
            decision.ttl,
            decision.reason,
        )
        return decision


def _covers(existing: DecisionAction, wanted: DecisionAction) -> bool:
    return existing is BLOCK or existing is wanted


def _reason(finding: Finding, repeat: int) -> str:
    offence = f"; repeat offence {repeat + 1}" if repeat else ""
    return (
        f"wafproxy detect: {finding.type} finding {finding.id} "
        f"(severity {finding.severity:.1f} {finding.band.value}){offence}"
    )
