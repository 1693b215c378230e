"""Recon:HTTP/PathProbe: one client asking for many distinct paths that do not exist."""

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

TYPE = "Recon:HTTP/PathProbe"
SAMPLE_PATHS = 10
PATH_CHARS = 200
MEMORY = 128
"""Distinct path hashes remembered per client at most."""


@dataclass(frozen=True)
class PathProbeSettings(DetectorSettings):
    severity: float = score(5.0)
    statuses: tuple[int, ...] = (404,)
    """Which answers count as "not there" (add 403 and 410 for sites that use them so)."""
    threshold: int = count(25)
    window: float = seconds(300.0)


class _Probes(DistinctBucket):
    __slots__ = ("distinct", "evidence", "paths", "quiet_until")

    def __init__(self) -> None:
        super().__init__()
        self.distinct = 0
        self.evidence: tuple[str, ...] = ()
        self.paths: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("path_probe", PathProbeSettings)
class PathProbe:
    """A client collecting "not found" answers for many different paths: a content-discovery
    tool (dirbuster, gobuster, ffuf) or a vulnerability scanner walking its word list.

    A leaky bucket per client rises by one for each not-found path it has not asked for
    recently and drains at ``threshold`` per ``window``: more than ``threshold`` distinct paths
    in a burst, or a sustained rate above that, raises the finding (once per window). The same
    missing favicon asked for a hundred times is one path.

    ```yaml
    path_probe: {threshold: 25, window: 5m, statuses: [404, 410]}
    ```
    """

    name = "path_probe"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: PathProbeSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.statuses = frozenset(settings.statuses)
        self.rate = settings.threshold / settings.window
        self.memory = min(MEMORY, 2 * settings.threshold)
        self.table: BoundedTable[_Probes] = BoundedTable(settings.max_keys, settings.window)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        if obs.status not in self.statuses:
            return ()
        state = self.table.get_or_put(obs.client_ip, obs.time, _Probes)
        if not state.offer(obs.time, obs.path, self.rate, self.memory):
            return ()
        state.distinct += 1
        state.evidence = remember(state.evidence, obs.request_id)
        state.paths = remember(state.paths, obs.path[:PATH_CHARS], SAMPLE_PATHS)
        if state.level <= self.settings.threshold or obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + self.settings.window
        return (self._finding(obs, state),)

    def state_keys(self) -> int:
        return len(self.table)

    def _finding(self, obs: Observation, state: _Probes) -> Finding:
        s = self.settings
        report = Report(
            TYPE,
            f"{obs.client_ip} probed many missing paths",
            f"{obs.client_ip} asked for more than {s.threshold} distinct paths answered with "
            f"{', '.join(map(str, sorted(self.statuses)))} within {s.window:g} s: "
            "content discovery or a vulnerability scan.",
            "Block or rate-limit the address; check that nothing it found answers with 200 "
            "(the paths are in the finding), and that error pages reveal no versions.",
        )
        details = {
            "distinct_paths": state.distinct,
            "level": round(state.level, 1),
            "threshold": s.threshold,
            "window_seconds": s.window,
            "statuses": sorted(self.statuses),
            "paths": list(state.paths),
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
