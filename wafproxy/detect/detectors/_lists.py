"""What the two threat-list detectors share: lists read at build, one finding per client per
cooldown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wafproxy.detect.bounded import BoundedTable, Entry
from wafproxy.detect.detector import Report, make_finding, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, seconds, texts
from wafproxy.detect.threatlist import ThreatList, load_threat_list
from wafproxy.findings.model import Finding


@dataclass(frozen=True)
class ListSettings(DetectorSettings):
    files: tuple[str, ...] = texts()
    """Threat-list files (text, CSV or STIX 2.1 JSON), relative to the config file."""
    cooldown: float = seconds(3600.0)
    """One finding per client per cooldown."""

    def active(self) -> bool:
        return self.enabled and bool(self.files)


def load_lists(files: Sequence[str], base: Path | None) -> tuple[ThreatList, ...]:
    root = base or Path(".")
    return tuple(load_threat_list(root / name) for name in files)


class _Seen(Entry):
    __slots__ = ("evidence", "quiet_until")

    def __init__(self) -> None:
        super().__init__()
        self.evidence: tuple[str, ...] = ()
        self.quiet_until = 0.0


class ListCaller:
    """Matches the client address against the lists (an IP-set lookup per list)."""

    name = ""
    finding_types: tuple[str, ...] = ()

    def __init__(self, settings: ListSettings, lists: Sequence[ThreatList], report: Report) -> None:
        self.settings = settings
        self.lists = tuple(lists)
        self.report = report
        self.table: BoundedTable[_Seen] = BoundedTable(settings.max_keys, settings.cooldown)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        ip = obs.client_ip
        matched = [tl.name for tl in self.lists if ip in tl]
        if not matched:
            return ()
        state = self.table.get_or_put(ip, obs.time, _Seen)
        state.evidence = remember(state.evidence, obs.request_id)
        if obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + self.settings.cooldown
        details = {"lists": matched, "list_entries": sum(tl.entries for tl in self.lists)}
        return (
            make_finding(
                self.name,
                replace(self.report, title=f"{self.report.title}: {ip}"),
                obs,
                subject=ip,
                severity=self.settings.severity,
                evidence=state.evidence,
                details=details,
            ),
        )

    def state_keys(self) -> int:
        return len(self.table)
