"""AttackSequence:HTTP/CompromiseAttempt: reconnaissance, then attacks, then an apparent success."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.baseline import DistinctBucket
from wafproxy.detect.bounded import BoundedTable
from wafproxy.detect.detector import (
    Report,
    has_attack_label,
    make_finding,
    register,
    remember,
)
from wafproxy.detect.detectors.scanner_user_agent import DEFAULT_AGENTS
from wafproxy.detect.detectors.sensitive_files import DEFAULT_PATHS
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, score, seconds
from wafproxy.findings.model import Finding, iso_time

TYPE = "AttackSequence:HTTP/CompromiseAttempt"
STAGE_EVIDENCE = 3
NOT_YET = -1.0
FAILED_PATHS = 64
"""Path hashes remembered per client among those answered "not there"."""


@dataclass(frozen=True)
class CompromiseSettings(DetectorSettings):
    severity: float = score(9.5)
    window: float = seconds(3600.0)
    """The whole sequence must happen with no pause longer than this."""
    probe_statuses: tuple[int, ...] = (403, 404, 410)
    recon_paths: int = count(10, high=FAILED_PATHS - 1)
    """More distinct paths than this answered with a probe status within ``recon_window``
    make a client a scout."""
    recon_window: float = seconds(300.0)
    min_attacks: int = count(3)
    """Blocked or attack-labelled requests (after reconnaissance) that make it an attacker."""
    min_login_failures: int = count(5)
    """Failed logins that count as an attack, and precede a suspicious successful login."""


class _Sequence(DistinctBucket):
    __slots__ = (
        "attack_at", "attack_ids", "attacks", "login_failures", "quiet_until",
        "recon_at", "recon_ids", "recon_signal",
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.recon_at = NOT_YET
        self.recon_signal = ""
        self.recon_ids: tuple[str, ...] = ()
        self.attacks = 0
        self.login_failures = 0
        self.attack_at = NOT_YET
        self.attack_ids: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("compromise_attempt", CompromiseSettings)
class CompromiseAttempt:
    """One client going through the stages of an intrusion, in order: reconnaissance (a
    scanner user agent, a sensitive-file probe, or ``recon_paths`` distinct not-found paths),
    then attacks (``min_attacks`` blocked or ``wafproxy:attack:*``-labelled requests, or
    ``min_login_failures`` failed logins), then an apparent success (a 2xx on a path it had
    been refused or not found earlier, or a successful login after those failures). The
    detector keeps its own small per-client record of the stages (it does not read other
    detectors' findings); the finding is critical and its evidence holds request ids from each
    stage.

    ```yaml
    compromise_attempt: {window: 1h, recon_paths: 10, min_attacks: 3}
    ```
    """

    name = "compromise_attempt"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: CompromiseSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.statuses = frozenset(settings.probe_statuses)
        self.table: BoundedTable[_Sequence] = BoundedTable(settings.max_keys, settings.window)
        self.rate = settings.recon_paths / settings.recon_window

    def observe(self, obs: Observation) -> Iterable[Finding]:
        state = self._state(obs)
        if state is None:
            return ()
        if state.recon_at == NOT_YET:
            self._recon(obs, state)
            return ()
        if state.attack_at != NOT_YET:
            success = self._success(obs, state)
            if success and obs.time >= state.quiet_until:
                state.quiet_until = obs.time + self.settings.window
                return (self._finding(obs, state, success),)
        self._attack(obs, state)
        if obs.status in self.statuses:
            state.offer(obs.time, obs.path, self.rate, FAILED_PATHS)
        return ()

    def state_keys(self) -> int:
        return len(self.table)

    def _state(self, obs: Observation) -> _Sequence | None:
        """The client's record; one is opened only by something that can start a sequence."""
        state = self.table.get(obs.client_ip, obs.time)
        if state is not None:
            return state
        if obs.status in self.statuses or self._scout_signal(obs):
            return self.table.put(obs.client_ip, _Sequence(), obs.time)
        return None

    def _scout_signal(self, obs: Observation) -> str:
        tool = DEFAULT_AGENTS(obs.user_agent)
        if tool:
            return f"scanner user agent {tool!r}"
        return "sensitive file probe" if DEFAULT_PATHS(obs.path) else ""

    def _recon(self, obs: Observation, state: _Sequence) -> None:
        signal = self._scout_signal(obs)
        refused = obs.status in self.statuses
        if refused and state.offer(obs.time, obs.path, self.rate, FAILED_PATHS):
            if state.level > self.settings.recon_paths and not signal:
                signal = f"more than {self.settings.recon_paths} distinct not-found paths"
            state.recon_ids = remember(state.recon_ids, obs.request_id, STAGE_EVIDENCE)
        elif signal:
            state.recon_ids = remember(state.recon_ids, obs.request_id, STAGE_EVIDENCE)
        if signal:
            state.recon_at, state.recon_signal = obs.time, signal

    def _attack(self, obs: Observation, state: _Sequence) -> None:
        attacked = obs.blocked or has_attack_label(obs.labels)
        if attacked:
            state.attacks += 1
        if obs.login_failed:
            state.login_failures += 1
        if not (attacked or obs.login_failed) or state.attack_at != NOT_YET:
            return
        state.attack_ids = remember(state.attack_ids, obs.request_id, STAGE_EVIDENCE)
        s = self.settings
        if state.attacks >= s.min_attacks or state.login_failures >= s.min_login_failures:
            state.attack_at = obs.time

    def _success(self, obs: Observation, state: _Sequence) -> str:
        if obs.login_failed is False and state.login_failures >= self.settings.min_login_failures:
            return f"successful login after {state.login_failures} failures"
        if 200 <= obs.status < 300 and hash(obs.path) in state.recent:
            return f"{obs.status} on a path answered not found or forbidden before"
        return ""

    def _finding(self, obs: Observation, state: _Sequence, success: str) -> Finding:
        report = Report(
            TYPE,
            f"Possible compromise by {obs.client_ip}",
            f"{obs.client_ip} went from reconnaissance ({state.recon_signal}) to attacks "
            f"({state.attacks} blocked or attack-labelled requests, {state.login_failures} "
            f"failed logins) to an apparent success: {success}.",
            "Treat as an incident: block the address now, find what the successful request "
            "returned or which session the login opened (evidence ids), revoke that session "
            "and rotate anything the path exposes.",
        )
        details = {
            "stages": {
                "recon": {"at": iso_time(state.recon_at), "signal": state.recon_signal,
                          "requests": list(state.recon_ids)},
                "attack": {"at": iso_time(state.attack_at), "attacks": state.attacks,
                           "login_failures": state.login_failures,
                           "requests": list(state.attack_ids)},
                "success": {"at": iso_time(obs.time), "signal": success, "path": obs.path[:200],
                            "status": obs.status, "requests": [obs.request_id]},
            },
        }  # fmt: skip
        evidence = (*state.recon_ids, *state.attack_ids, obs.request_id)
        return make_finding(
            self.name,
            report,
            obs,
            subject=obs.client_ip,
            severity=self.settings.severity,
            evidence=evidence,
            details=details,
        )
