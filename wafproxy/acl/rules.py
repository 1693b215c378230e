"""Rule lists -> Rule values, with rule group and managed rule group references expanded.

A group reference compiles the group's rules into the referencing ACL (their atoms join the
ACL's scan plan), applies ``rule_action_overrides`` and keeps the group as one Rule whose
``group`` the engine evaluates in the group's own order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from wafproxy.acl.actions import compile_action
from wafproxy.acl.model import (
    ActionKind,
    OverrideAction,
    Rule,
    RuleAction,
    RuleGroup,
    RuleType,
    Statement,
)
from wafproxy.acl.prefilter import build_prefilter
from wafproxy.config.source import Node
from wafproxy.errors import ConfigError

if TYPE_CHECKING:
    from wafproxy.acl.compile import Compiler

RULE_KEYS = [
    "name", "priority", "statement", "action", "override_action", "rule_labels", "description",
    "severity", "paranoia_level",
    "visibility_config",
]  # fmt: skip
GROUP_STATEMENTS = ("rule_group", "managed_rule_group")
QUALIFIED_PREFIXES = ("awswaf:", "wafproxy:", "webacl:", "rulegroup:")


def compile_rule_list(
    node: Node | None, c: Compiler, namespace: str, *, in_group: bool
) -> tuple[Rule, ...]:
    if node is None:
        return ()
    try:
        items = node.seq()
    except ConfigError as exc:
        c.sources.errors.append(exc)
        return ()
    outer, c.namespace = c.namespace, namespace
    try:
        return _compile_items(items, c, namespace, in_group=in_group)
    finally:
        c.namespace = outer


def _compile_items(
    items: list[Node], c: Compiler, namespace: str, *, in_group: bool
) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    names: dict[str, Node] = {}
    items = [item for item in items if _within_paranoia(item, c.max_paranoia)]
    priorities: dict[int, Node] = {}
    for item in items:
        try:
            rule = compile_rule(item, c, namespace, in_group=in_group)
            _check_unique(item, rule, names, priorities)
            rules.append(rule)
        except ConfigError as exc:
            c.sources.errors.append(exc)
    return tuple(sorted(rules, key=lambda r: r.priority))


def _check_unique(item: Node, rule: Rule, names: dict[str, Node], prios: dict[int, Node]) -> None:
    opts = item.map()
    if rule.name in names:
        raise opts["name"].error(
            f"duplicate rule name {rule.name!r} (first at {names[rule.name].mark})"
        )
    if rule.priority in prios:
        first = prios[rule.priority]
        raise opts["priority"].error(f"duplicate priority {rule.priority} (first at {first.mark})")
    names[rule.name] = opts["name"]
    prios[rule.priority] = opts["priority"]


def compile_rule(node: Node, c: Compiler, namespace: str, *, in_group: bool) -> Rule:
    opts = node.fields(required=["name", "priority", "statement"], optional=RULE_KEYS)
    name = _rule_name(opts["name"])
    priority = opts["priority"].int(0)
    severity, paranoia_level = _metadata(opts)
    labels = qualified_labels(opts.get("rule_labels"), namespace)
    kind, _ = opts["statement"].single_key("statement")
    if kind in GROUP_STATEMENTS:
        if in_group:
            raise opts["statement"].error(f"a rule group cannot contain a {kind} statement")
        if "action" in opts:
            raise opts["action"].error("a rule group reference takes override_action, not action")
        return _group_rule(name, priority, labels, opts, c)
    if "override_action" in opts:
        raise opts["override_action"].error("override_action is only for rule group references")
    if "action" not in opts:
        raise node.error("missing required key 'action'")
    action = compile_action(opts["action"], c.sources.bodies)
    c.rate_rule = name if kind == "rate_based" else None
    try:
        statement = c.statement(opts["statement"])
    finally:
        c.rate_rule = None
    rule_type = RuleType.RATE_BASED if kind == "rate_based" else RuleType.REGULAR
    return Rule(
        name,
        priority,
        statement,
        action=action,
        labels=labels,
        type=rule_type,
        capacity=statement.capacity,
        severity=severity,
        paranoia_level=paranoia_level,
    )


SEVERITIES = ["critical", "high", "medium", "low"]


def _within_paranoia(item: Node, max_level: int) -> bool:
    """Rules above the reference's paranoia level are left out before they compile, so their
    patterns never join the scan plan."""
    level = item.map().get("paranoia_level") if item.is_map else None
    return level is None or not isinstance(level.value, int) or level.value <= max_level


def _metadata(opts: dict[str, Node]) -> tuple[str, int]:
    """A managed rule's severity (its anomaly score) and paranoia level (1 = fewest false
    positives ... 4 = most detections)."""
    severity = opts["severity"].one_of(SEVERITIES) if "severity" in opts else "critical"
    level = opts["paranoia_level"].int(1, 4) if "paranoia_level" in opts else 1
    return severity, level


def _rule_name(node: Node) -> str:
    name = node.str()
    if not name or len(name) > 128 or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise node.expected("a rule name of 1-128 letters, digits, '-', '_' and '.'")
    return name


def qualified_labels(node: Node | None, namespace: str) -> tuple[str, ...]:
    """Labels get the namespace of their origin; managed groups ("") write them in full."""
    if node is None:
        return ()
    out = []
    for item in node.seq():
        label = item.map()["name"].str() if item.is_map else item.str()
        if not label or any(not part for part in label.split(":")):
            raise item.expected("a label such as attack:sqli (no empty parts)")
        if not namespace and not label.startswith("wafproxy:"):
            raise item.expected("a managed rule label starting with 'wafproxy:'")
        out.append(f"{namespace}:{label}" if namespace else label)
    return tuple(out)


def _group_rule(
    name: str, priority: int, labels: tuple[str, ...], opts: dict[str, Node], c: Compiler
) -> Rule:
    override = OverrideAction.NONE
    if "override_action" in opts:
        override = OverrideAction(opts["override_action"].one_of(["none", "count"]))
    kind, ref = opts["statement"].single_key("statement")
    group = _managed_group(ref, c) if kind == "managed_rule_group" else _custom_group(ref, c)
    rule_type = RuleType.MANAGED_RULE_GROUP if group.managed else RuleType.GROUP
    capacity = sum(r.capacity for r in group.rules)
    return Rule(
        name,
        priority,
        None,
        override_action=override,
        labels=labels,
        group=group,
        type=rule_type,
        capacity=capacity,
    )


def _custom_group(node: Node, c: Compiler) -> RuleGroup:
    opts = node.fields(
        required=["ref"], optional=["rule_action_overrides", "paranoia_level", "mode"]
    )
    name = opts["ref"].str()
    if name not in c.sources.groups:
        from wafproxy.acl.compile import _missing

        raise opts["ref"].error(_missing("rule group", name, c.sources.groups))
    c.sources.used_groups.add(name)
    root = c.sources.groups[name]
    rules = _group_rules(root.map().get("rules"), c, name, f"rulegroup:{name}", opts)
    rules = _apply_overrides(rules, opts.get("rule_action_overrides"), c)
    _check_capacity(root, rules)
    return RuleGroup(name=name, rules=rules, prefilter=build_prefilter(rules))


def _managed_group(node: Node, c: Compiler) -> RuleGroup:
    opts = node.fields(
        required=["name"],
        optional=[
            "version", "scope_down_statement", "rule_action_overrides", "vendor_name",
            "paranoia_level", "mode",
        ],
    )  # fmt: skip
    name = opts["name"].str()
    if name not in c.sources.managed:
        from wafproxy.acl.compile import _missing

        raise opts["name"].error(_missing("managed rule group", name, c.sources.managed))
    root = c.sources.managed[name].map()
    version = root["version"].str() if "version" in root else ""
    if "version" in opts and opts["version"].str() != version:
        wanted = opts["version"].str()
        raise opts["version"].error(
            f"managed rule group {name!r} is shipped at version {version!r}, not {wanted!r}"
        )
    scope_down: Statement | None = None
    if "scope_down_statement" in opts:
        scope_down = c.statement(opts["scope_down_statement"])
    rules = _group_rules(root.get("rules"), c, name, "", opts)
    rules = _apply_overrides(rules, opts.get("rule_action_overrides"), c)
    return RuleGroup(
        name=name,
        rules=rules,
        managed=True,
        version=version,
        scope_down=scope_down,
        prefilter=build_prefilter(rules),
    )


def _group_rules(
    node: Node | None, c: Compiler, name: str, namespace: str, opts: dict[str, Node]
) -> tuple[Rule, ...]:
    """The group's rules at the reference's ``paranoia_level`` (managed groups default to 1,
    custom groups to 4: all their rules) in the reference's ``mode``."""
    default_level = 1 if not namespace else 4
    level = opts["paranoia_level"].int(1, 4) if "paranoia_level" in opts else default_level
    mode = opts["mode"].one_of(MODES) if "mode" in opts else "first_match"
    outer, c.group = c.group, name
    outer_level, c.max_paranoia = c.max_paranoia, level
    try:
        rules = compile_rule_list(node, c, namespace, in_group=True)
    finally:
        c.group = outer
        c.max_paranoia = outer_level
    if mode == "anomaly_scoring":
        rules = tuple(_scoring(rule) for rule in rules)
    return tuple(replace(rule, group_name=name) for rule in rules)


MODES = ["first_match", "anomaly_scoring"]
SEVERITY_SCORES = {"critical": 5, "high": 4, "medium": 3, "low": 2}
"""As OWASP CRS scores them: with the usual threshold of 5 one critical match blocks."""


def _scoring(rule: Rule) -> Rule:
    """In anomaly-scoring mode a blocking rule counts and adds its severity's score instead."""
    if rule.action is None or rule.action.kind is not ActionKind.BLOCK:
        return rule
    return replace(rule, action=RuleAction(ActionKind.COUNT, score=SEVERITY_SCORES[rule.severity]))


def _apply_overrides(rules: tuple[Rule, ...], node: Node | None, c: Compiler) -> tuple[Rule, ...]:
    if node is None:
        return rules
    by_name = {r.name: r for r in rules}
    overrides: dict[str, RuleAction] = {}
    for rule_name, action_node in node.map().items():
        if rule_name not in by_name:
            raise action_node.error(f"the group has no rule named {rule_name!r}")
        overrides[rule_name] = compile_action(action_node, c.sources.bodies)
    return tuple(_replace_action(r, overrides[r.name]) if r.name in overrides else r for r in rules)


def _replace_action(rule: Rule, action: RuleAction) -> Rule:
    from dataclasses import replace

    return replace(rule, action=action)


def _check_capacity(root: Node, rules: tuple[Rule, ...]) -> None:
    items = root.map()
    if "capacity" not in items:
        return
    limit = items["capacity"].int(1)
    used = sum(r.capacity for r in rules)
    if used > limit:
        raise items["capacity"].error(
            f"the group's rules cost {used} capacity units; capacity is {limit}"
        )
