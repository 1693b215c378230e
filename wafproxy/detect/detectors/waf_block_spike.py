"""Behavior:HTTP/WafBlockSpike: one client collecting many WAF blocks (an attack campaign)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.baseline import EventWindow
from wafproxy.detect.bounded import BoundedTable
from wafproxy.detect.detector import ATTACK_LABEL, Report, make_finding, register, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, score, seconds
from wafproxy.findings.model import Finding

TYPE = "Behavior:HTTP/WafBlockSpike"
SAMPLE_RULES = 5


@dataclass(frozen=True)
class WafBlockSpikeSettings(DetectorSettings):
    severity: float = score(6.0)
    threshold: int = count(20)
    """Blocked requests from one client within ``window``."""
    window: float = seconds(300.0)


class _Blocks(EventWindow):
    __slots__ = ("attacks", "evidence", "quiet_until", "rules")

    def __init__(self) -> None:
        super().__init__()
        self.evidence: tuple[str, ...] = ()
        self.rules: tuple[str, ...] = ()
        self.attacks: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("waf_block_spike", WafBlockSpikeSettings)
class WafBlockSpike:
    """A client whose requests the web ACL keeps blocking: ``threshold`` or more blocks within
    ``window``. One blocked request is the WAF doing its job; dozens from one address are a
    campaign that will try variations until one passes.

    ```yaml
    waf_block_spike: {threshold: 20, window: 5m}
    ```
    """

    name = "waf_block_spike"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: WafBlockSpikeSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.table: BoundedTable[_Blocks] = BoundedTable(settings.max_keys, settings.window)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        if not obs.blocked:
            return ()
        s = self.settings
        state = self.table.get_or_put(obs.client_ip, obs.time, _Blocks)
        blocks = state.add(obs.time, s.window, s.threshold)
        state.evidence = remember(state.evidence, obs.request_id)
        if obs.terminating_rule and obs.terminating_rule not in state.rules:
            state.rules = remember(state.rules, obs.terminating_rule, SAMPLE_RULES)
        for label in obs.labels:
            if label.startswith(ATTACK_LABEL) and label not in state.attacks:
                state.attacks = remember(state.attacks, label, SAMPLE_RULES)
        if blocks < s.threshold or obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + s.window
        return (self._finding(obs, state, blocks),)

    def state_keys(self) -> int:
        return len(self.table)

    def _finding(self, obs: Observation, state: _Blocks, blocks: int) -> Finding:
        s = self.settings
        report = Report(
            TYPE,
            f"WAF block spike from {obs.client_ip}",
            f"The web ACL blocked {blocks} or more requests from {obs.client_ip} within "
            f"{s.window:g} s (rules: {', '.join(state.rules) or 'n/a'}).",
            "Block the address for a while so its variations stop reaching the rules; look for "
            "any of its requests that were allowed (same client in the decision log).",
        )
        details = {
            "blocks": blocks,
            "threshold": s.threshold,
            "window_seconds": s.window,
            "rules": list(state.rules),
            "attack_labels": list(state.attacks),
        }
        return make_finding(
            self.name,
            report,
            obs,
            subject=obs.client_ip,
            severity=s.severity,
            evidence=state.evidence,
            details=details,
        )
