"""The whole-body pattern scans of the shipped default web ACL, and nothing else, as a web ACL.

Why: with the default web ACL, R2 (a 2 KB form) stays near 0.5 of bare against a 0.8 target.
This web ACL keeps only the work no engine design can skip for it: every ``regex_pattern_set``,
``regex_match`` and ``byte_match`` on ``body`` in the rules that default.yaml turns on (its
groups at its paranoia levels), with the same transformation chains, so the compiler builds the
same scan groups for the body. Every rule counts; R2 matches none of them. Its throughput ratio
is what an engine whose only cost was scanning the body would reach (bench/systems.py,
``waf-bodyscan``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from reqshapes import BENCH_DIR

RULES_DIR = BENCH_DIR.parent / "rules"
SCANS = ("regex_pattern_set", "regex_match", "byte_match")


def body_scan_acl(rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    statements: list[dict[str, Any]] = []
    for group, level in _default_groups(rules_dir):
        doc = yaml.safe_load((rules_dir / f"{group}.yaml").read_text(encoding="utf-8"))
        group_sets = doc.get("regex_pattern_sets", {})
        for rule in doc.get("rules", []):
            if rule.get("paranoia_level", 1) > level:
                continue
            for kind, spec in _body_scans(rule["statement"]):
                if kind == "regex_pattern_set":
                    name = f"{group}.{spec['ref']}"
                    sets[name] = group_sets[spec["ref"]]
                    spec = {**spec, "ref": name}
                if {kind: spec} not in statements:
                    statements.append({kind: spec})
    rules = [
        {"name": f"body-scan-{i}", "priority": i, "action": "count", "statement": statement}
        for i, statement in enumerate(statements, 1)
    ]
    return {
        "web_acl": "body-scan",
        "description": "the default web ACL's whole-body scans only (bench/body_floor.py)",
        "default_action": "allow",
        "rules": rules,
        "regex_pattern_sets": sets,
    }


def _default_groups(rules_dir: Path) -> Iterator[tuple[str, int]]:
    doc = yaml.safe_load((rules_dir / "default.yaml").read_text(encoding="utf-8"))
    for rule in doc["rules"]:
        ref = rule["statement"].get("managed_rule_group")
        if ref is not None:
            yield ref["name"], ref.get("paranoia_level", 1)


def _body_scans(node: object) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, list):
        for item in node:
            yield from _body_scans(item)
    elif isinstance(node, dict):
        for kind, spec in node.items():
            if kind in SCANS and isinstance(spec, dict) and _is_body(spec.get("field")):
                yield kind, spec
            else:
                yield from _body_scans(spec)


def _is_body(field: object) -> bool:
    return field == "body" or (isinstance(field, dict) and list(field) == ["body"])


if __name__ == "__main__":
    print(yaml.safe_dump(body_scan_acl(), sort_keys=False, width=200))
