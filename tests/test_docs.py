"""docs/reference.md is current, and every example in it compiles with the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wafproxy.acl.compile import load_rule_files
from wafproxy.docgen import Entry, entries, render

ROOT = Path(__file__).resolve().parent.parent
NO_EXAMPLE = {
    ("statement", "rule_group"),
    ("statement", "managed_rule_group"),
    ("statement", "rate_based"),
}


def test_reference_is_current() -> None:
    assert (ROOT / "docs" / "reference.md").read_text() == render(), (
        "run: python -m wafproxy.docgen > docs/reference.md"
    )


def test_every_registered_name_has_an_example() -> None:
    missing = [
        f"{e.kind} {e.name}"
        for e in entries()
        if not e.examples and (e.kind, e.name) not in NO_EXAMPLE
    ]
    assert missing == []


def _rule(entry: Entry, example: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "example", "priority": 1, "action": "block"}
    probe = {"field": "uri_path", "constraint": "contains", "value": "x"}
    if entry.kind == "statement":
        rule["statement"] = example
    elif entry.kind == "field":
        rule["statement"] = {"byte_match": {**probe, "field": example["field"]}}
    elif entry.kind == "transform":
        rule["statement"] = {"byte_match": {**probe, "transforms": example["transforms"]}}
    else:
        rule["statement"] = {"byte_match": probe}
        rule["action"] = example["action"]
    return rule


EXAMPLES = [(e, ex) for e in entries() for ex in e.examples]


@pytest.mark.parametrize(
    ("entry", "example"), EXAMPLES, ids=[f"{e.kind}-{e.name}" for e, _ in EXAMPLES]
)
def test_example_compiles(entry: Entry, example: str, tmp_path: Path, geo_db: Path) -> None:
    data = yaml.safe_load(example)
    acl = {
        "web_acl": "docs",
        "default_action": "allow",
        "geo_database": str(geo_db),
        "asn_database": str(geo_db),
        "custom_response_bodies": {"slow-down": {"content": "slow down"}},
        "ip_sets": {"office": {"addresses": ["10.0.0.0/8"]}},
        "regex_pattern_sets": {"bad-agents": {"regular_expressions": ["(?i)sqlmap"]}},
        "rules": [_rule(entry, data)],
    }
    path = tmp_path / "docs.yaml"
    path.write_text(yaml.safe_dump(acl, sort_keys=False))
    rule_set = load_rule_files([path])
    assert rule_set.acls["docs"].rules[0].name == "example"


@pytest.fixture
def geo_db(tmp_path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="test")
    writer.insert_network(
        IPSet(["198.51.100.0/24"]),
        {"country": {"iso_code": "NL"}, "autonomous_system_number": 64500},
    )
    path = tmp_path / "geo.mmdb"
    writer.to_db_file(str(path))
    return path
