"""Recon:HTTP/ScannerUserAgent: a known scanner or attack tool announcing itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.bounded import BoundedTable, Entry
from wafproxy.detect.detector import Report, make_finding, register, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, score, seconds, texts
from wafproxy.findings.model import Finding

TYPE = "Recon:HTTP/ScannerUserAgent"
CACHE = 4096
AGENT_CHARS = 300

SIGNATURES = (
    "sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "wpscan", "dirbuster",
    "gobuster", "ffuf", "feroxbuster", "acunetix", "netsparker", "burpsuite", "burp suite",
    "burpcollaborator", "owasp zap", "zaproxy", "w3af", "hydra", "arachni", "skipfish",
    "openvas", "nessus", "whatweb", "wfuzz", "commix", "jaeles", "xsstrike", "havij",
    "appscan", "webinspect", "paros", "wapiti", "joomscan", "droopescan", "fimap", "zmeu",
    "morfeus", "dirb/", "httprobe", "interactsh", "jorgee", "medusa/", "sqlninja",
    "bsqlbf", "pangolin", "webshag", "vega/",
)  # fmt: skip
"""Lower-case substrings of scanner user agents. Bare ``zap`` and ``burp`` are not here: they
occur in ordinary agents (Zapier's webhooks)."""


@dataclass(frozen=True)
class ScannerUserAgentSettings(DetectorSettings):
    severity: float = score(5.0)
    extra_agents: tuple[str, ...] = texts()
    """More substrings (case-insensitive)."""
    cooldown: float = seconds(3600.0)
    """One finding per client per cooldown."""


class ScannerAgents:
    """Which tool, if any, a user agent names: a substring loop over a few dozen signatures,
    cached per agent (agents repeat; the cache is bounded)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        more = tuple(s.strip().lower() for s in extra if s.strip())
        self.signatures = tuple(dict.fromkeys(SIGNATURES + more))
        self._cache: dict[str, str] = {}

    def __call__(self, agent: str) -> str:
        """The matched signature, or "" for none."""
        hit = self._cache.get(agent)
        if hit is None:
            if len(self._cache) >= CACHE:
                self._cache.clear()
            lower = agent[:AGENT_CHARS].lower()
            hit = next((s for s in self.signatures if s in lower), "")
            self._cache[agent] = hit
        return hit


DEFAULT_AGENTS = ScannerAgents()


class _Seen(Entry):
    __slots__ = ("evidence", "quiet_until")

    def __init__(self) -> None:
        super().__init__()
        self.evidence: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("scanner_user_agent", ScannerUserAgentSettings)
class ScannerUserAgent:
    """A request whose User-Agent names a scanner or attack tool (sqlmap, nikto, nmap, masscan,
    zgrab, nuclei, wpscan, gobuster, ffuf, acunetix, Burp Suite, OWASP ZAP, hydra, …). Real
    attackers change the agent; the ones who don't are still worth knowing about, and a
    scanner you run yourself shows up here too (suppress it by subject).

    ```yaml
    scanner_user_agent: {extra_agents: [evilscan], cooldown: 1h}
    ```
    """

    name = "scanner_user_agent"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: ScannerUserAgentSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.agents = ScannerAgents(settings.extra_agents)
        self.table: BoundedTable[_Seen] = BoundedTable(settings.max_keys, settings.cooldown)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        tool = self.agents(obs.user_agent)
        if not tool:
            return ()
        state = self.table.get_or_put(obs.client_ip, obs.time, _Seen)
        state.evidence = remember(state.evidence, obs.request_id)
        if obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + self.settings.cooldown
        return (self._finding(obs, tool, state.evidence),)

    def state_keys(self) -> int:
        return len(self.table)

    def _finding(self, obs: Observation, tool: str, evidence: tuple[str, ...]) -> Finding:
        report = Report(
            TYPE,
            f"Scanner user agent from {obs.client_ip}",
            f"{obs.client_ip} sent requests with the user agent of a scanning or attack tool "
            f"({tool!r}).",
            "If the scan is not yours, block the address (the wafproxy-core rule group blocks "
            "these agents); if it is, suppress this finding for the scanner's address.",
        )
        details = {"tool": tool, "user_agent": obs.user_agent[:AGENT_CHARS]}
        return make_finding(
            self.name,
            report,
            obs,
            subject=obs.client_ip,
            severity=self.settings.severity,
            evidence=evidence,
            details=details,
        )
