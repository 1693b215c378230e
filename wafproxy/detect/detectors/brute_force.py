"""UnauthorizedAccess:HTTP/BruteForce: repeated failed logins for one account or from one client."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.baseline import EventWindow
from wafproxy.detect.bounded import BoundedTable
from wafproxy.detect.detector import Report, make_finding, register, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, score, seconds
from wafproxy.findings.model import Finding

TYPE = "UnauthorizedAccess:HTTP/BruteForce"
USERNAME_CHARS = 256
"""Longer submitted usernames are cut for the key: the field is the attacker's to fill."""


@dataclass(frozen=True)
class BruteForceSettings(DetectorSettings):
    severity: float = score(7.0)
    per_account: int = count(10, low=0)
    """Failed logins for one username within ``window`` (0: not judged per account)."""
    per_client: int = count(20, low=0)
    """Failed logins from one address within ``window`` (0: not judged per client)."""
    window: float = seconds(300.0)


class _Failures(EventWindow):
    __slots__ = ("clients", "evidence", "quiet_until")

    def __init__(self) -> None:
        super().__init__()
        self.evidence: tuple[str, ...] = ()
        self.clients: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("brute_force", BruteForceSettings)
class BruteForce:
    """Password guessing: ``per_account`` failed logins for one username, or ``per_client``
    failed logins from one address, within ``window``. Failures are judged at the edge on the
    configured login routes (status or response marker). Per account catches a guesser that
    spreads over many addresses; per client one that tries many passwords itself. One finding
    per key per window.

    ```yaml
    brute_force: {per_account: 10, per_client: 20, window: 5m}
    ```
    """

    name = "brute_force"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: BruteForceSettings, base: Path | None = None) -> None:
        self.settings = settings
        ttl = settings.window
        self.accounts: BoundedTable[_Failures] = BoundedTable(settings.max_keys, ttl)
        self.clients: BoundedTable[_Failures] = BoundedTable(settings.max_keys, ttl)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        if obs.login_failed is not True:
            return ()
        found: list[Finding] = []
        s = self.settings
        if s.per_account and obs.username:
            user = obs.username[:USERNAME_CHARS]
            if self._count(self.accounts, user, obs, s.per_account):
                found.append(self._finding(obs, self.accounts, user, "account"))
        if s.per_client and self._count(self.clients, obs.client_ip, obs, s.per_client):
            found.append(self._finding(obs, self.clients, obs.client_ip, "client"))
        return found

    def state_keys(self) -> int:
        return len(self.accounts) + len(self.clients)

    def _count(
        self, table: BoundedTable[_Failures], key: str, obs: Observation, limit: int
    ) -> bool:
        state = table.get_or_put(key, obs.time, _Failures)
        failures = state.add(obs.time, self.settings.window, limit)
        state.evidence = remember(state.evidence, obs.request_id)
        if obs.client_ip not in state.clients:
            state.clients = remember(state.clients, obs.client_ip)
        if failures < limit or obs.time < state.quiet_until:
            return False
        state.quiet_until = obs.time + self.settings.window
        return True

    def _finding(
        self, obs: Observation, table: BoundedTable[_Failures], key: str, scope: str
    ) -> Finding:
        state = table.peek(key)
        assert state is not None
        s = self.settings
        limit = s.per_account if scope == "account" else s.per_client
        what = f"account {key!r}" if scope == "account" else key
        report = Report(
            TYPE,
            f"Brute force against {what}" if scope == "account" else f"Brute force from {what}",
            f"{limit} or more failed logins "
            + (f"for {what}" if scope == "account" else f"from {what}")
            + f" within {s.window:g} s.",
            "Block the client addresses for a while, lock or step up the account (a second "
            "factor, a CAPTCHA on the login route), and tell its owner if a login succeeded.",
        )
        details = {
            "scope": scope,
            "failures": len(state.times),
            "threshold": limit,
            "window_seconds": s.window,
            "username": obs.username[:USERNAME_CHARS] if obs.username else None,
            "clients": list(state.clients),
        }
        return make_finding(
            self.name,
            report,
            obs,
            subject=key,
            severity=s.severity,
            evidence=state.evidence,
            details=details,
        )
