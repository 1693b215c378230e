"""Warnings ``wafproxy check`` prints: rules shadowed by an earlier rule with the same statement."""

from __future__ import annotations

from collections.abc import Sequence

from wafproxy.acl.model import Rule
from wafproxy.config.source import Node


def lint_rules(rules: Sequence[Rule], node: Node | None) -> list[str]:
    if node is None or not node.is_seq:
        return []
    by_name = {
        item.map()["name"].str(): item
        for item in node.seq()
        if item.is_map and "name" in item.map()
    }
    seen: dict[str, Rule] = {}
    out: list[str] = []
    for rule in rules:
        item = by_name.get(rule.name)
        if item is None:
            continue
        statement = repr(item.map()["statement"].plain())
        earlier = seen.get(statement)
        if earlier is not None:
            out.append(
                f"{item.mark}: rule {rule.name!r} is shadowed: rule {earlier.name!r} (priority "
                f"{earlier.priority}) has the same statement and a terminating action"
            )
        elif rule.action is not None and rule.action.terminating:
            seen[statement] = rule
    return out
