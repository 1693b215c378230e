"""The detector registry, the settings parser and build_detectors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wafproxy.config.source import Node, parse
from wafproxy.detect import (
    DETECTORS,
    DetectorSettings,
    build_detectors,
    parse_detector_settings,
    parse_detectors,
)
from wafproxy.detect.detectors.brute_force import BruteForceSettings
from wafproxy.detect.detectors.malicious_ip import MaliciousIpSettings
from wafproxy.detect.detectors.path_probe import PathProbeSettings
from wafproxy.detect.settings import parse_settings
from wafproxy.errors import ConfigError

FINDING_TYPES = {
    "Recon:HTTP/PathProbe",
    "Discovery:HTTP/SensitiveFileProbe",
    "Recon:HTTP/ScannerUserAgent",
    "UnauthorizedAccess:HTTP/BruteForce",
    "CredentialAccess:HTTP/CredentialStuffing",
    "Impact:HTTP/RequestFlood",
    "Behavior:HTTP/TrafficVolumeUnusual",
    "Exfiltration:HTTP/AnomalousResponseVolume",
    "Behavior:HTTP/WafBlockSpike",
    "UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom",
    "UnauthorizedAccess:HTTP/TorIPCaller",
    "AttackSequence:HTTP/CompromiseAttempt",
}


def node(text: str, key: str | None = None) -> Node:
    root = parse(text, "detect.yaml")
    return root.map()[key] if key else root


def test_every_issue_finding_type_has_a_detector() -> None:
    types = [t for name in DETECTORS for t in DETECTORS[name].finding_types]
    assert set(types) == FINDING_TYPES
    assert len(types) == len(set(types))


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_is_documented_with_an_example_that_parses(name: str) -> None:
    kind = DETECTORS[name]
    doc = kind.doc
    assert "```yaml" in doc, f"{name} has no YAML example"
    example = doc.split("```yaml", 1)[1].split("```", 1)[0]
    settings = parse_detector_settings(name, node(example, name))
    assert isinstance(settings, kind.settings)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_has_a_severity_default_and_bounded_tables(name: str) -> None:
    settings = DETECTORS[name].settings()
    assert isinstance(settings, DetectorSettings)
    assert 1.0 <= settings.severity <= 10.0
    assert settings.max_keys >= 1
    assert dataclasses.is_dataclass(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_builds_with_defaults_and_names_itself(name: str) -> None:
    kind = DETECTORS[name]
    detector = kind.factory(kind.settings(), Path("."))
    assert detector.name == name
    assert detector.finding_types == kind.finding_types
    assert detector.state_keys() == 0


def test_settings_from_yaml_with_durations() -> None:
    settings = parse_settings(
        PathProbeSettings,
        node("threshold: 40\nwindow: 10m\nstatuses: [404, 410]\nseverity: 6.5\n"),
    )
    assert settings == PathProbeSettings(threshold=40, window=600.0, statuses=(404, 410),
                                         severity=6.5)  # fmt: skip


def test_a_bare_boolean_is_enabled() -> None:
    assert parse_settings(PathProbeSettings, node("x: false", "x")) == PathProbeSettings(
        enabled=False
    )
    assert parse_settings(PathProbeSettings, node("x:", "x")) == PathProbeSettings()
    assert parse_settings(PathProbeSettings, None) == PathProbeSettings()


def test_unknown_setting_is_an_error_at_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(PathProbeSettings, node("threshold: 4\n  \ntreshold: 5\n"))
    assert str(info.value).startswith("detect.yaml:3:1: treshold: unknown key 'treshold'")
    assert "did you mean 'threshold'?" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity: 11", "detect.yaml:1:11: severity: expected a number from 1.0 to 10.0; got 11"),
        ("threshold: 0", "detect.yaml:1:12: threshold: expected an integer >= 1; got 0"),
        ("window: soon", "expected a duration like 90, 30s, 15m, 6h or 1d; got 'soon'"),
        ("window: 0.5s", "window: expected a duration >= 1 seconds; got '0.5s'"),
        ("enabled: maybe", "enabled: expected true or false; got 'maybe'"),
        ("statuses: [404, x]", "statuses[1]: expected an integer; got 'x'"),
    ],
)
def test_bad_values_are_errors_with_positions(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(PathProbeSettings, node(text))
    assert message in str(info.value)


def test_counts_that_may_be_zero() -> None:
    settings = parse_settings(BruteForceSettings, node("per_account: 0"))
    assert settings.per_account == 0


def test_parse_detectors_gives_every_detector_settings() -> None:
    settings = parse_detectors(node("path_probe: {threshold: 9}\nbrute_force: false\n"))
    assert set(settings) == set(DETECTORS)
    assert settings["path_probe"] == PathProbeSettings(threshold=9)
    assert settings["brute_force"] == BruteForceSettings(enabled=False)
    assert parse_detectors(None)["path_probe"] == PathProbeSettings()


def test_unknown_detector_name_says_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        parse_detectors(node("detectors:\n  path_probes: {}\n", "detectors"))
    assert str(info.value) == (
        "detect.yaml:2:3: detectors.path_probes: unknown detector 'path_probes'; "
        "did you mean 'path_probe'?"
    )
    with pytest.raises(ConfigError, match="unknown detector 'brute'; did you mean 'brute_force'"):
        parse_detector_settings("brute", node("brute: {}", "brute"))


def test_build_detectors_skips_disabled_and_list_detectors_without_files() -> None:
    built = build_detectors({"path_probe": PathProbeSettings(enabled=False)}, Path("."))
    names = {d.name for d in built}
    assert names == set(DETECTORS) - {"path_probe", "malicious_ip", "tor_caller"}


def test_build_detectors_reads_threat_lists_relative_to_base(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.txt").write_text("203.0.113.0/24\n")
    settings = {"malicious_ip": MaliciousIpSettings(files=("lists/bad.txt",))}
    (detector,) = [d for d in build_detectors(settings, tmp_path) if d.name == "malicious_ip"]
    assert detector.finding_types == ("UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom",)


def test_build_detectors_reports_a_bad_list_entry(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("203.0.113.0/24\nnope\n")
    settings = {"malicious_ip": MaliciousIpSettings(files=("bad.txt",))}
    with pytest.raises(ConfigError, match=r"bad\.txt:2:1: not an IP address"):
        build_detectors(settings, tmp_path)


def test_build_detectors_refuses_settings_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="brute_force"):
        build_detectors({"brute_force": PathProbeSettings()}, Path("."))
