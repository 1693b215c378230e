"""The detector registry: name -> how to read its settings and build it.

A detector keeps its own per-key state, bounded (``wafproxy.detect.bounded``), and answers
``state_keys()`` so the service can report (and the benchmark measure) what it holds. It
judges time only by ``Observation.time``; it never reads a clock, sleeps or does I/O.

The edge reads ``detect: {detectors: {<name>: {...}}}`` with ``parse_detectors`` (or one
entry with ``parse_detector_settings``) and builds the enabled ones with ``build_detectors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from wafproxy.config.source import Node
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, parse_settings
from wafproxy.errors import ConfigError
from wafproxy.findings.model import Finding
from wafproxy.registry import Registry

EVIDENCE = 10
"""Request ids a detector keeps per key for a finding's evidence (the latest ones)."""
ATTACK_LABEL = "wafproxy:attack:"


class Detector(Protocol):
    name: str
    """The registry name (a metric label): ``path_probe``, ``brute_force``, …"""
    finding_types: tuple[str, ...]
    """The GuardDuty-style types it can raise, ``ThreatPurpose:Resource/Name``."""

    def observe(self, obs: Observation) -> Iterable[Finding]: ...

    def state_keys(self) -> int:
        """How many per-key entries it holds now (bounded by its settings)."""
        ...


DetectorFactory = Callable[[Any, Path], Detector]
"""``factory(settings, base)``: base is the config file's directory (relative list files)."""


@dataclass(frozen=True)
class DetectorKind:
    name: str
    settings: type[DetectorSettings]
    factory: DetectorFactory
    finding_types: tuple[str, ...]
    doc: str
    """What it looks for, why, and a YAML example (docs are generated from it)."""


DETECTORS: Registry[DetectorKind] = Registry("detector")
F = TypeVar("F", bound=DetectorFactory)


def register(name: str, settings: type[DetectorSettings]) -> Callable[[F], F]:
    """Class decorator: the class is the factory, ``cls(settings, base)``."""

    def add(cls: F) -> F:
        types = tuple(getattr(cls, "finding_types", ()))
        DETECTORS.add(name, DetectorKind(name, settings, cls, types, cls.__doc__ or ""))
        return cls

    return add


def parse_detector_settings(name: str, node: Node | None) -> DetectorSettings:
    """One detector's settings; an unknown name is an error at ``node``."""
    if name not in DETECTORS:
        if node is None:
            raise ConfigError(None, "", DETECTORS.unknown(name))
        raise node.error(DETECTORS.unknown(name))
    return parse_settings(DETECTORS[name].settings, node)


def parse_detectors(node: Node | None) -> dict[str, DetectorSettings]:
    """The ``detectors:`` mapping: settings for every registered detector (defaults for those
    not mentioned). Unknown names are errors pointing at the key."""
    given = node.map() if node is not None and node.value is not None else {}
    for name in given:
        if name not in DETECTORS:
            assert node is not None
            mark = (node.key_marks or {}).get(name, node.mark)
            path = f"{node.path}.{name}" if node.path else name
            raise ConfigError(mark, path, DETECTORS.unknown(name))
    return {name: parse_settings(DETECTORS[name].settings, given.get(name)) for name in DETECTORS}


def build_detectors(settings: Mapping[str, object], base: Path) -> list[Detector]:
    """Every enabled detector, in registry order; names missing from ``settings`` get their
    defaults. Threat lists are read here (ConfigError naming file:line on a bad entry); a
    threat-list detector without files is left out (it could never fire)."""
    built: list[Detector] = []
    for name, kind in DETECTORS.items():
        chosen = settings.get(name) or kind.settings()
        if not isinstance(chosen, kind.settings):
            raise TypeError(f"settings for {name} must be {kind.settings.__name__}")
        if chosen.active():
            built.append(kind.factory(chosen, base))
    return built


def remember(ids: tuple[str, ...], request_id: str, keep: int = EVIDENCE) -> tuple[str, ...]:
    """ids with request_id appended, the oldest dropped beyond ``keep``."""
    return (*ids[-(keep - 1) :], request_id) if keep > 1 else (request_id,)


def resource_of(obs: Observation) -> str:
    return obs.route or obs.host or "*"


def has_attack_label(labels: Sequence[str]) -> bool:
    return any(label.startswith(ATTACK_LABEL) for label in labels)


@dataclass(frozen=True)
class Report:
    """The words of a finding; the numbers go in ``details``."""

    type: str
    title: str
    description: str
    remediation: str


def make_finding(
    check: str,
    report: Report,
    obs: Observation,
    *,
    subject: str,
    severity: float,
    evidence: Sequence[str],
    details: Mapping[str, object],
    resource: str | None = None,
) -> Finding:
    return Finding.new(
        type=report.type,
        title=report.title,
        description=report.description,
        severity=severity,
        resource=resource_of(obs) if resource is None else resource,
        subject=subject,
        source="detect",
        check=check,
        evidence=evidence,
        remediation=report.remediation,
        details=details,
        now=obs.time,
    )
