"""The rule file: at most one web ACL with its rules, and the tables of rule groups, IP sets and
regex pattern sets the other documents fill."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from wafproxy.config.aws_import.actions import ResponseBodies, convert_action
from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import Document, Kind, aws_namespace, join_path
from wafproxy.config.aws_import.model import ImportResult, Out, SearchStringEncoding
from wafproxy.config.aws_import.rules import check_immunity, convert_rules

REFUSED = {
    "AssociationConfig": "wafproxy's body inspection limit is inspect_body_bytes in the service "
    "config",
    "DataProtectionConfig": "configure redaction in the service config's logging section",
    "OnSourceDDoSProtectionConfig": "wafproxy has no counterpart",
    "PreProcessFirewallManagerRuleGroups": "export Firewall Manager rule groups as rule groups",
    "PostProcessFirewallManagerRuleGroups": "export Firewall Manager rule groups as rule groups",
}
WEB_ACL_KEYS = [
    "Description",
    "Rules",
    "LabelNamespace",
    "CustomResponseBodies",
    "CaptchaConfig",
    "ChallengeConfig",
    *REFUSED,
]
WEB_ACL_DROPPED = [
    "Id",
    "ARN",
    "VisibilityConfig",
    "Capacity",
    "ManagedByFirewallManager",
    "RetrofittedByFirewallManager",
    "TokenDomains",
    "ApplicationConfig",
]


def convert_documents(docs: list[Document], encoding: SearchStringEncoding) -> ImportResult:
    ctx = Context(docs, encoding)
    bodies = ResponseBodies()
    acls = [d for d in ctx.docs if d.kind is Kind.WEB_ACL]
    if len(acls) > 1:
        ctx.doc = acls[1]
        raise ctx.error(
            acls[1].path,
            f"a rule file holds one web ACL; {acls[0].name!r} from {acls[0].file} is the first",
        )
    acl = _web_acl(ctx, bodies, acls[0]) if acls else {}
    tables = {
        "rule_groups": _named_table(ctx, Kind.RULE_GROUP, partial(_rule_group, ctx, bodies)),
        "ip_sets": _named_table(ctx, Kind.IP_SET, partial(_ip_set, ctx)),
        "regex_pattern_sets": _named_table(ctx, Kind.REGEX_SET, partial(_regex_set, ctx)),
    }
    out = {k: v for k, v in acl.items() if k != "rules"}
    if bodies.bodies:
        out["custom_response_bodies"] = bodies.bodies
    if "rules" in acl:
        out["rules"] = acl["rules"]
    out.update({key: table for key, table in tables.items() if table})
    return ImportResult(out, tuple(ctx.warnings))


def _named_table(ctx: Context, kind: Kind, convert: Callable[[Document], Out]) -> Out:
    table: Out = {}
    for doc in ctx.docs:
        if doc.kind is kind:
            ctx.doc = doc
            if doc.name in table:
                raise ctx.error(
                    join_path(doc.path, "Name"), f"a second {kind.value} named {doc.name!r}"
                )
            table[doc.name] = convert(doc)
    return table


def _web_acl(ctx: Context, bodies: ResponseBodies, doc: Document) -> Out:
    ctx.doc = doc
    path = doc.path
    f = ctx.fields(doc.body, path, ["Name", "DefaultAction"], WEB_ACL_KEYS, WEB_ACL_DROPPED)
    ctx.refuse(f, path, REFUSED)
    check_immunity(ctx, f, path)
    out: Out = {"web_acl": doc.name}
    _describe_into(ctx, out, f, path)
    ctx.text(f.get("LabelNamespace", ""), join_path(path, "LabelNamespace"))
    namespace = aws_namespace(doc, "webacl")
    if namespace:
        out["label_namespace"] = namespace.rstrip(":")
    p = join_path(path, "DefaultAction")
    out["default_action"] = convert_action(ctx, f["DefaultAction"], p, ("Allow", "Block"))
    bodies.add(ctx, f.get("CustomResponseBodies"), join_path(path, "CustomResponseBodies"))
    if "Rules" in f:
        out["rules"] = convert_rules(ctx, f["Rules"], join_path(path, "Rules"))
    return out


def _rule_group(ctx: Context, bodies: ResponseBodies, doc: Document) -> Out:
    path = doc.path
    f = ctx.fields(
        doc.body,
        path,
        ["Name"],
        ["Capacity", "Rules", "Description", "LabelNamespace", "CustomResponseBodies"],
        ["Id", "ARN", "VisibilityConfig", "AvailableLabels", "ConsumedLabels"],
    )
    ctx.text(f.get("LabelNamespace", ""), join_path(path, "LabelNamespace"))
    out: Out = {}
    _describe_into(ctx, out, f, path)
    if "Capacity" in f:
        out["capacity"] = ctx.integer(f["Capacity"], join_path(path, "Capacity"))
    bodies.add(ctx, f.get("CustomResponseBodies"), join_path(path, "CustomResponseBodies"))
    out["rules"] = convert_rules(ctx, f.get("Rules", []), join_path(path, "Rules"))
    return out


def _ip_set(ctx: Context, doc: Document) -> Out:
    f = ctx.fields(
        doc.body,
        doc.path,
        ["Name", "Addresses"],
        ["Description", "IPAddressVersion"],
        ["Id", "ARN"],
    )
    if "IPAddressVersion" in f:
        ctx.choice(f["IPAddressVersion"], join_path(doc.path, "IPAddressVersion"), ("IPV4", "IPV6"))
    out: Out = {}
    _describe_into(ctx, out, f, doc.path)
    out["addresses"] = ctx.texts(f["Addresses"], join_path(doc.path, "Addresses"))
    return out


def _regex_set(ctx: Context, doc: Document) -> Out:
    path = doc.path
    f = ctx.fields(
        doc.body, path, ["Name", "RegularExpressionList"], ["Description"], ["Id", "ARN"]
    )
    out: Out = {}
    _describe_into(ctx, out, f, path)
    regexes = ctx.items(f["RegularExpressionList"], join_path(path, "RegularExpressionList"))
    out["regular_expressions"] = [
        ctx.text(ctx.fields(item, p, ["RegexString"])["RegexString"], join_path(p, "RegexString"))
        for p, item in regexes
    ]
    return out


def _describe_into(ctx: Context, out: Out, f: Mapping[str, object], path: str) -> None:
    text = ctx.text(f.get("Description", ""), join_path(path, "Description"))
    if text:
        out["description"] = text
