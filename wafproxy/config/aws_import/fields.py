"""FieldToMatch and TextTransformations: what a statement inspects, and how it is transformed
first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import join_path
from wafproxy.config.aws_import.model import Out

TRANSFORM_TYPES = (
    "NONE", "COMPRESS_WHITE_SPACE", "HTML_ENTITY_DECODE", "LOWERCASE", "CMD_LINE", "URL_DECODE",
    "BASE64_DECODE", "HEX_DECODE", "MD5", "REPLACE_COMMENTS", "ESCAPE_SEQ_DECODE",
    "SQL_HEX_DECODE", "CSS_DECODE", "JS_DECODE", "NORMALIZE_PATH", "NORMALIZE_PATH_WIN",
    "REMOVE_NULLS", "REPLACE_NULLS", "BASE64_DECODE_EXT", "URL_DECODE_UNI", "UTF8_TO_UNICODE",
)  # fmt: skip
BARE_FIELDS = {
    "UriPath": "uri_path",
    "QueryString": "query_string",
    "Method": "method",
    "AllQueryArguments": "all_query_arguments",
}
UNSUPPORTED_FIELDS = ("JA3Fingerprint", "JA4Fingerprint", "UriFragment")
OVERSIZE = ("CONTINUE", "MATCH", "NO_MATCH")
SCOPES = ("ALL", "KEY", "VALUE")
FALLBACK = ("MATCH", "NO_MATCH")


def field_to_match(ctx: Context, value: object, path: str) -> object:
    key, inner = ctx.one_key(value, path, "field to match")
    p = join_path(path, key)
    if key in BARE_FIELDS:
        ctx.empty(inner, p)
        return BARE_FIELDS[key]
    if key in ("SingleHeader", "SingleQueryArgument"):
        name = ctx.text(ctx.fields(inner, p, ["Name"])["Name"], join_path(p, "Name"))
        return {_snake_case(key): {"name": name}}
    if key == "Body":
        f = ctx.fields(inner, p, optional=["OversizeHandling"])
        return {"body": {"oversize_handling": _oversize(ctx, f, p)}} if f else "body"
    if key == "HeaderOrder":
        f = ctx.fields(inner, p, ["OversizeHandling"])
        return {"header_order": {"oversize_handling": _oversize(ctx, f, p)}}
    if key == "JsonBody":
        return {"json_body": _json_body(ctx, inner, p)}
    if key in ("Headers", "Cookies"):
        return {_snake_case(key): _headers_or_cookies(ctx, inner, p, key)}
    if key in UNSUPPORTED_FIELDS:
        raise ctx.error(p, f"the field {key} is not supported by wafproxy")
    raise ctx.error(p, f"unknown field to match {key!r}")


def _oversize(ctx: Context, f: Mapping[str, object], path: str) -> str:
    return ctx.choice(f["OversizeHandling"], join_path(path, "OversizeHandling"), OVERSIZE)


def _json_body(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value,
        path,
        ["MatchPattern", "MatchScope"],
        ["InvalidFallbackBehavior", "OversizeHandling"],
    )
    out: Out = {
        "match_pattern": _match_pattern(
            ctx, f["MatchPattern"], join_path(path, "MatchPattern"), ("IncludedPaths",)
        ),
        "match_scope": ctx.choice(f["MatchScope"], join_path(path, "MatchScope"), SCOPES),
    }
    if "InvalidFallbackBehavior" in f:
        out["invalid_fallback_behavior"] = ctx.choice(
            f["InvalidFallbackBehavior"],
            join_path(path, "InvalidFallbackBehavior"),
            (*FALLBACK, "EVALUATE_AS_STRING"),
        )
    if "OversizeHandling" in f:
        out["oversize_handling"] = _oversize(ctx, f, path)
    return out


def _headers_or_cookies(ctx: Context, value: object, path: str, key: str) -> Out:
    f = ctx.fields(value, path, ["MatchPattern", "MatchScope", "OversizeHandling"])
    lists = (f"Included{key}", f"Excluded{key}")
    return {
        "match_pattern": _match_pattern(
            ctx, f["MatchPattern"], join_path(path, "MatchPattern"), lists
        ),
        "match_scope": ctx.choice(f["MatchScope"], join_path(path, "MatchScope"), SCOPES),
        "oversize_handling": _oversize(ctx, f, path),
    }


def _match_pattern(ctx: Context, value: object, path: str, lists: Sequence[str]) -> Out:
    key, inner = ctx.one_key(value, path, f"match pattern: All, {', '.join(lists)}")
    p = join_path(path, key)
    if key == "All":
        ctx.empty(inner, p)
        return {"all": {}}
    if key not in lists:
        raise ctx.error(p, f"unknown match pattern {key!r}: expected All, {', '.join(lists)}")
    return {_snake_case(key): ctx.texts(inner, p)}


def text_transformations(ctx: Context, value: object, path: str) -> list[str]:
    chain: dict[int, str] = {}
    for p, item in ctx.items(value, path):
        f = ctx.fields(item, p, ["Priority", "Type"])
        priority = ctx.integer(f["Priority"], join_path(p, "Priority"))
        if priority in chain:
            raise ctx.error(
                join_path(p, "Priority"), f"two text transformations at priority {priority}"
            )
        chain[priority] = ctx.choice(f["Type"], join_path(p, "Type"), TRANSFORM_TYPES)
    return [chain[k] for k in sorted(chain) if chain[k] != "none"]


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
