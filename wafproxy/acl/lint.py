"""Warnings ``wafproxy check`` prints about rules that can never decide anything.

- shadowed: an earlier terminating rule has exactly the same statement;
- unreachable: an earlier terminating rule matches every request (``size_constraint ge 0``),
  so no rule after it ever runs.
"""

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
    catch_all: Rule | None = None
    out: list[str] = []
    for rule in rules:
        item = by_name.get(rule.name)
        if item is None:
            continue
        if catch_all is not None:
            out.append(
                f"{item.mark}: rule {rule.name!r} (priority {rule.priority}) is unreachable: rule "
                f"{catch_all.name!r} (priority {catch_all.priority}) matches every request first"
            )
            continue
        plain = item.map()["statement"].plain()
        statement = repr(plain)
        earlier = seen.get(statement)
        if earlier is not None:
            out.append(
                f"{item.mark}: rule {rule.name!r} is shadowed: rule {earlier.name!r} (priority "
                f"{earlier.priority}) has the same statement and a terminating action"
            )
        elif rule.action is not None and rule.action.terminating:
            seen[statement] = rule
            if always_matches(plain):
                catch_all = rule
    return out


def always_matches(statement: object) -> bool:
    """True only when the statement is certain to match any request (a conservative check)."""
    if not isinstance(statement, dict) or len(statement) != 1:
        return False
    ((kind, options),) = statement.items()
    if kind == "size_constraint" and isinstance(options, dict):
        return options.get("comparison_operator") == "ge" and options.get("size") == 0
    if kind == "or" and isinstance(options, list):
        return any(always_matches(part) for part in options)
    if kind == "and" and isinstance(options, list):
        return all(always_matches(part) for part in options)
    if kind == "not":
        return never_matches(options)
    return False


def never_matches(statement: object) -> bool:
    if not isinstance(statement, dict) or len(statement) != 1:
        return False
    ((kind, options),) = statement.items()
    if kind == "size_constraint" and isinstance(options, dict):
        return options.get("comparison_operator") == "lt" and options.get("size") == 0
    if kind == "not":
        return always_matches(options)
    return False
