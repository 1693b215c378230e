"""The statements about the client address (IP set, geo and ASN matches) and the
ForwardedIPConfig they, and rate-based rules, may take it from."""

from __future__ import annotations

from collections.abc import Mapping

from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import Kind, join_path
from wafproxy.config.aws_import.fields import FALLBACK
from wafproxy.config.aws_import.model import Out


def geo_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["CountryCodes"], ["ForwardedIPConfig"])
    out: Out = {"country_codes": ctx.texts(f["CountryCodes"], join_path(path, "CountryCodes"))}
    return {"geo_match": _with_forwarded(ctx, out, f, path)}


def asn_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["AsnList"], ["ForwardedIPConfig"])
    numbers = [
        ctx.integer(item, p) for p, item in ctx.items(f["AsnList"], join_path(path, "AsnList"))
    ]
    return {"asn_match": _with_forwarded(ctx, {"asn_list": numbers}, f, path)}


def _with_forwarded(ctx: Context, out: Out, f: Mapping[str, object], path: str) -> Out:
    ctx.warn(
        path,
        "geo_match / asn_match need geo_database / asn_database (MaxMind .mmdb "
        "files) in the web ACL: add them before loading this file",
    )
    if "ForwardedIPConfig" in f:
        out["forwarded_ip_config"] = forwarded_ip_config(
            ctx, f["ForwardedIPConfig"], join_path(path, "ForwardedIPConfig"), False
        )
    return out


def forwarded_ip_config(ctx: Context, value: object, path: str, with_position: bool) -> Out:
    f = ctx.fields(value, path, ["HeaderName", "FallbackBehavior", *(["Position"] * with_position)])
    out: Out = {
        "header_name": ctx.text(f["HeaderName"], join_path(path, "HeaderName")),
        "fallback_behavior": ctx.choice(
            f["FallbackBehavior"], join_path(path, "FallbackBehavior"), FALLBACK
        ),
    }
    if with_position:
        out["position"] = ctx.choice(
            f["Position"], join_path(path, "Position"), ("FIRST", "LAST", "ANY")
        )
    return out


def ip_set_reference(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["ARN"], ["IPSetForwardedIPConfig"])
    out: Out = {"ref": ctx.resolve(f["ARN"], Kind.IP_SET, join_path(path, "ARN"))}
    if "IPSetForwardedIPConfig" in f:
        p = join_path(path, "IPSetForwardedIPConfig")
        out["forwarded_ip_config"] = forwarded_ip_config(ctx, f["IPSetForwardedIPConfig"], p, True)
    return {"ip_set": out}
