"""Statement -> statement: the dispatch over AWS's statement types, and the statements that nest
statements (and, or, not, rate-based and managed rule group scope-downs) or name rules and
labels (rule group references, label matches)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wafproxy.config.aws_import.actions import RULE_ACTIONS, convert_action
from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import Kind, join_path
from wafproxy.config.aws_import.ip_statements import (
    asn_match,
    forwarded_ip_config,
    geo_match,
    ip_set_reference,
)
from wafproxy.config.aws_import.match_statements import (
    byte_match,
    regex_match,
    regex_pattern_set,
    size_constraint,
    sqli_match,
    xss_match,
)
from wafproxy.config.aws_import.model import Out

MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet": "wafproxy-core",
    "AWSManagedRulesSQLiRuleSet": "wafproxy-sqli",
    "AWSManagedRulesKnownBadInputsRuleSet": "wafproxy-known-bad-inputs",
    "AWSManagedRulesLinuxRuleSet": "wafproxy-rce",
    "AWSManagedRulesUnixRuleSet": "wafproxy-rce",
    "AWSManagedRulesPHPRuleSet": "wafproxy-php",
    "AWSManagedRulesAdminProtectionRuleSet": "wafproxy-admin-protection",
    "AWSManagedRulesAmazonIpReputationList": "wafproxy-ip-reputation",
    "AWSManagedRulesAnonymousIpList": "wafproxy-anonymous-ip",
}
REFUSED_IN_MANAGED = {"ManagedRuleGroupConfigs": "wafproxy's managed groups take no configuration"}


def _rate_based(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value,
        path,
        ["Limit", "AggregateKeyType"],
        ["EvaluationWindowSec", "ScopeDownStatement", "ForwardedIPConfig", "CustomKeys"],
    )
    key_type = ctx.choice(
        f["AggregateKeyType"],
        join_path(path, "AggregateKeyType"),
        ("IP", "FORWARDED_IP", "CONSTANT", "CUSTOM_KEYS"),
    )
    if key_type == "custom_keys" or "CustomKeys" in f:
        raise ctx.error(join_path(path, "CustomKeys"), "importing custom_keys is not supported yet")
    out: Out = {
        "limit": ctx.integer(f["Limit"], join_path(path, "Limit")),
        "aggregate_key_type": key_type,
    }
    if "EvaluationWindowSec" in f:
        window = join_path(path, "EvaluationWindowSec")
        out["evaluation_window_sec"] = ctx.integer(f["EvaluationWindowSec"], window)
    if "ScopeDownStatement" in f:
        scope = join_path(path, "ScopeDownStatement")
        out["scope_down_statement"] = convert_statement(ctx, f["ScopeDownStatement"], scope)
    if "ForwardedIPConfig" in f:
        fwd = join_path(path, "ForwardedIPConfig")
        out["forwarded_ip_config"] = forwarded_ip_config(ctx, f["ForwardedIPConfig"], fwd, False)
    return {"rate_based": out}


def _label_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["Scope", "Key"])
    scope = ctx.choice(f["Scope"], join_path(path, "Scope"), ("LABEL", "NAMESPACE"))
    key = _label_key(ctx, ctx.text(f["Key"], join_path(path, "Key")), join_path(path, "Key"))
    return {"label_match": {"scope": scope, "key": key}}


def _label_key(ctx: Context, key: str, path: str) -> str:
    for aws, ours in ctx.label_prefixes:
        if key.startswith(aws):
            return ours + key[len(aws) :]
    if key.startswith("awswaf:managed:"):
        ctx.warn(
            path,
            f"{key!r} is a label of an AWS managed rule group; wafproxy's "
            "managed groups add wafproxy:... labels instead, so this never matches",
        )
    return key


def _combine(ctx: Context, value: object, path: str, name: str) -> Out:
    f = ctx.fields(value, path, ["Statements"])
    parts = ctx.items(f["Statements"], join_path(path, "Statements"))
    return {name: [convert_statement(ctx, item, p) for p, item in parts]}


def _not(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["Statement"])
    return {"not": convert_statement(ctx, f["Statement"], join_path(path, "Statement"))}


def _rule_group_reference(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["ARN"], ["ExcludedRules", "RuleActionOverrides"])
    out: Out = {"ref": ctx.resolve(f["ARN"], Kind.RULE_GROUP, join_path(path, "ARN"))}
    overrides = _rule_action_overrides(ctx, f, path)
    if overrides:
        out["rule_action_overrides"] = overrides
    return {"rule_group": out}


def _rule_action_overrides(ctx: Context, f: Mapping[str, object], path: str) -> Out:
    out: Out = {}
    for p, item in ctx.items(f.get("ExcludedRules", []), join_path(path, "ExcludedRules")):
        out[ctx.text(ctx.fields(item, p, ["Name"])["Name"], join_path(p, "Name"))] = "count"
    for p, item in ctx.items(
        f.get("RuleActionOverrides", []), join_path(path, "RuleActionOverrides")
    ):
        o = ctx.fields(item, p, ["Name", "ActionToUse"])
        name = ctx.text(o["Name"], join_path(p, "Name"))
        action = convert_action(ctx, o["ActionToUse"], join_path(p, "ActionToUse"), RULE_ACTIONS)
        if out.get(name, action) != action:
            raise ctx.error(p, f"rule {name!r} is both excluded and overridden to {action}")
        out[name] = action
    return out


def _managed_rule_group(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value,
        path,
        ["VendorName", "Name"],
        [
            "Version",
            "ExcludedRules",
            "ScopeDownStatement",
            "ManagedRuleGroupConfigs",
            "RuleActionOverrides",
        ],
    )
    ctx.refuse(f, path, REFUSED_IN_MANAGED)
    vendor = ctx.text(f["VendorName"], join_path(path, "VendorName"))
    name = ctx.text(f["Name"], join_path(path, "Name"))
    ours = MANAGED_GROUPS.get(name) if vendor == "AWS" else None
    if ours is None:
        raise ctx.error(
            join_path(path, "Name"),
            f"managed rule group {vendor}/{name} has no "
            f"wafproxy counterpart (known: {', '.join(MANAGED_GROUPS)})",
        )
    ctx.warn(
        path,
        f"{vendor}/{name} is replaced by wafproxy's {ours}: a similar scope, "
        f"not the same rules{_dropped_tuning(ctx, f, path)}",
    )
    out: Out = {"name": ours}
    if "ScopeDownStatement" in f:
        p = join_path(path, "ScopeDownStatement")
        out["scope_down_statement"] = convert_statement(ctx, f["ScopeDownStatement"], p)
    return {"managed_rule_group": out}


def _dropped_tuning(ctx: Context, f: Mapping[str, object], path: str) -> str:
    """What a managed group reference tuned that cannot carry over (rule names differ)."""
    notes = []
    if "Version" in f:
        notes.append(f"Version {ctx.text(f['Version'], join_path(path, 'Version'))!r}")
    for key in ("ExcludedRules", "RuleActionOverrides"):
        names = [
            ctx.text(ctx.mapping(item, p).get("Name"), join_path(p, "Name"))
            for p, item in ctx.items(f.get(key, []), join_path(path, key))
        ]
        if names:
            notes.append(f"{key} for {', '.join(names)}")
    return f"; dropped {'; '.join(notes)}" if notes else ""


def convert_statement(ctx: Context, value: object, path: str) -> Out:
    key, inner = ctx.one_key(value, path, "statement")
    p = join_path(path, key)
    if key not in _STATEMENTS:
        raise ctx.error(p, f"unknown statement {key!r}")
    return _STATEMENTS[key](ctx, inner, p)


_STATEMENTS: dict[str, Callable[[Context, object, str], Out]] = {
    "ByteMatchStatement": byte_match,
    "RegexMatchStatement": regex_match,
    "RegexPatternSetReferenceStatement": regex_pattern_set,
    "SizeConstraintStatement": size_constraint,
    "SqliMatchStatement": sqli_match,
    "XssMatchStatement": xss_match,
    "GeoMatchStatement": geo_match,
    "AsnMatchStatement": asn_match,
    "IPSetReferenceStatement": ip_set_reference,
    "LabelMatchStatement": _label_match,
    "AndStatement": lambda ctx, v, p: _combine(ctx, v, p, "and"),
    "OrStatement": lambda ctx, v, p: _combine(ctx, v, p, "or"),
    "NotStatement": _not,
    "RuleGroupReferenceStatement": _rule_group_reference,
    "ManagedRuleGroupStatement": _managed_rule_group,
    "RateBasedStatement": _rate_based,
}
