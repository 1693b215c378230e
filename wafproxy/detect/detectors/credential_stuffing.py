"""CredentialAccess:HTTP/CredentialStuffing: one client trying many different usernames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.baseline import DistinctBucket
from wafproxy.detect.bounded import BoundedTable
from wafproxy.detect.detector import Report, make_finding, register, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, score, seconds
from wafproxy.findings.model import Finding

TYPE = "CredentialAccess:HTTP/CredentialStuffing"
SAMPLE_USERS = 5
USERNAME_CHARS = 64
MEMORY = 128


@dataclass(frozen=True)
class CredentialStuffingSettings(DetectorSettings):
    severity: float = score(8.0)
    threshold: int = count(10)
    """Distinct usernames with failed logins from one client within ``window``."""
    window: float = seconds(600.0)


class _Attempts(DistinctBucket):
    __slots__ = ("distinct", "evidence", "quiet_until", "successes", "users")

    def __init__(self) -> None:
        super().__init__()
        self.distinct = 0
        self.successes = 0
        self.evidence: tuple[str, ...] = ()
        self.users: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("credential_stuffing", CredentialStuffingSettings)
class CredentialStuffing:
    """One address failing to log in as many different users: leaked username/password pairs
    replayed against the site. A leaky bucket per client rises for each username it has not
    tried recently and drains at ``threshold`` per ``window``; passing ``threshold`` raises
    the finding (an office behind one NAT logs in many users, but successfully).

    ```yaml
    credential_stuffing: {threshold: 10, window: 10m}
    ```
    """

    name = "credential_stuffing"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: CredentialStuffingSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.rate = settings.threshold / settings.window
        self.memory = min(MEMORY, 2 * settings.threshold)
        self.table: BoundedTable[_Attempts] = BoundedTable(settings.max_keys, settings.window)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        if obs.login_failed is None or obs.username is None:
            return ()
        if not obs.login_failed:
            state = self.table.get(obs.client_ip, obs.time)
            if state is not None:
                state.successes += 1
            return ()
        state = self.table.get_or_put(obs.client_ip, obs.time, _Attempts)
        user = obs.username[:USERNAME_CHARS]
        if not state.offer(obs.time, user, self.rate, self.memory):
            return ()
        state.distinct += 1
        state.evidence = remember(state.evidence, obs.request_id)
        state.users = remember(state.users, user, SAMPLE_USERS)
        if state.level <= self.settings.threshold or obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + self.settings.window
        return (self._finding(obs, state),)

    def state_keys(self) -> int:
        return len(self.table)

    def _finding(self, obs: Observation, state: _Attempts) -> Finding:
        s = self.settings
        report = Report(
            TYPE,
            f"Credential stuffing from {obs.client_ip}",
            f"{obs.client_ip} failed to log in as more than {s.threshold} different users "
            f"within {s.window:g} s.",
            "Block the address; add a CAPTCHA or challenge to the login route; check the "
            "accounts it got into (successes) and force their passwords to be reset.",
        )
        details = {
            "distinct_usernames": state.distinct,
            "level": round(state.level, 1),
            "threshold": s.threshold,
            "window_seconds": s.window,
            "successes": state.successes,
            "usernames": list(state.users),
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
