"""Rules: name, priority, action or override action, labels and statement; and the CAPTCHA /
challenge immunity settings that rules and web ACLs may carry at their default only."""

from __future__ import annotations

from collections.abc import Mapping

from wafproxy.config.aws_import.actions import RULE_ACTIONS, convert_action
from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import join_path
from wafproxy.config.aws_import.model import Out
from wafproxy.config.aws_import.statements import convert_statement

DEFAULT_IMMUNITY_SECONDS = 300


def check_immunity(ctx: Context, f: Mapping[str, object], path: str) -> None:
    for key in ("CaptchaConfig", "ChallengeConfig"):
        if key not in f:
            continue
        p = join_path(path, key)
        config = ctx.fields(f[key], p, optional=["ImmunityTimeProperty"])
        if "ImmunityTimeProperty" not in config:
            continue
        q = join_path(p, "ImmunityTimeProperty")
        seconds = ctx.fields(config["ImmunityTimeProperty"], q, ["ImmunityTime"])
        if (
            ctx.integer(seconds["ImmunityTime"], join_path(q, "ImmunityTime"))
            != DEFAULT_IMMUNITY_SECONDS
        ):
            raise ctx.error(
                p,
                f"{key} with a non-default immunity time is not supported: "
                "wafproxy has no CAPTCHA or challenge actions",
            )


def convert_rules(ctx: Context, value: object, path: str) -> list[object]:
    return [_rule(ctx, item, p) for p, item in ctx.items(value, path)]


def _rule(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value,
        path,
        ["Name", "Priority", "Statement"],
        ["Action", "OverrideAction", "RuleLabels", "CaptchaConfig", "ChallengeConfig"],
        ["VisibilityConfig"],
    )
    check_immunity(ctx, f, path)
    out: Out = {
        "name": ctx.text(f["Name"], join_path(path, "Name")),
        "priority": ctx.integer(f["Priority"], join_path(path, "Priority")),
    }
    if "Action" in f:
        out["action"] = convert_action(ctx, f["Action"], join_path(path, "Action"), RULE_ACTIONS)
    if "OverrideAction" in f:
        p = join_path(path, "OverrideAction")
        key, inner = ctx.one_key(f["OverrideAction"], p, "override action: None or Count")
        ctx.choice(key, p, ("None", "Count"))
        ctx.empty(inner, join_path(p, key))
        out["override_action"] = key.lower()
    if f.get("RuleLabels"):
        out["rule_labels"] = [
            ctx.text(ctx.fields(item, p, ["Name"])["Name"], join_path(p, "Name"))
            for p, item in ctx.items(f["RuleLabels"], join_path(path, "RuleLabels"))
        ]
    out["statement"] = convert_statement(ctx, f["Statement"], join_path(path, "Statement"))
    return out
