"""docs/detection.md stays true: every registered detector is documented with its finding types
and every setting at its real default, the summary table's severities are the defaults, and
every YAML example parses with the real config parsers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wafproxy.config.source import Node, parse
from wafproxy.detect import DETECTORS, parse_detector_settings
from wafproxy.detect.config import parse_detect
from wafproxy.findings.config import parse_findings
from wafproxy.findings.model import Severity
from wafproxy.state.config import parse_state_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "detection.md"
TEXT = DOC.read_text(encoding="utf-8")
NAMES = [name for name, _ in DETECTORS.items()]


def section(name: str) -> str:
    kind = DETECTORS[name]
    heading = f"### `{name}`: `{', '.join(kind.finding_types)}`\n"
    assert heading in TEXT, f"docs/detection.md has no section {heading.strip()}"
    rest = TEXT.split(heading, 1)[1]
    return rest.split("\n### ", 1)[0].split("\n## ", 1)[0]


def rendered(value: Any, field: dataclasses.Field[Any]) -> str:
    if field.name == "severity":
        return f"{value:.1f}"
    if field.metadata.get("unit"):
        seconds = float(value)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{seconds:g}s"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_is_documented_at_its_default(name: str) -> None:
    text = section(name)
    settings_type = DETECTORS[name].settings
    defaults = settings_type()
    for field in dataclasses.fields(settings_type):
        if field.name == "enabled":
            continue
        row = f"| `{field.name}` | `{rendered(getattr(defaults, field.name), field)}` |"
        assert row in text, f"{name}: expected a row starting {row}"


@pytest.mark.parametrize("name", NAMES)
def test_the_summary_table_has_the_default_severity(name: str) -> None:
    kind = DETECTORS[name]
    score = kind.settings().severity
    band = Severity.of(score).value
    row = f"| `{name}` | `{kind.finding_types[0]}` | {score:.1f} {band} |"
    assert row in TEXT, f"expected a summary row starting {row}"


def yaml_blocks() -> list[str]:
    return [block.split("```", 1)[0] for block in TEXT.split("```yaml\n")[1:]]


PARSERS: dict[str, Callable[[Node, Path], object]] = {
    "detect": parse_detect,
    "findings": parse_findings,
    "state": parse_state_config,
}


def parse_example(root: Node) -> None:
    for key, node in root.map().items():
        if key in PARSERS:
            PARSERS[key](node, Path("."))
        elif key in NAMES:
            parse_detector_settings(key, node)
        elif key in ("name", "priority", "override_action", "statement"):
            continue  # a rule referencing the shipped group (compiled by the rule-file tests)
        else:
            raise AssertionError(f"an example with an unknown top-level key: {key}")


@pytest.mark.parametrize("block", yaml_blocks())
def test_every_yaml_example_parses(block: str) -> None:
    root = parse(block, "docs/detection.md")
    if root.is_seq:
        for item in root.seq():
            parse_example(item)
    else:
        parse_example(root)


def test_the_examples_are_found() -> None:
    assert len(yaml_blocks()) >= len(NAMES) + 3
