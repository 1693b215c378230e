"""The statements that inspect a FieldToMatch after TextTransformations: byte, regex, regex
pattern set, size, SQLi and XSS matches."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import Kind, join_path
from wafproxy.config.aws_import.fields import field_to_match, text_transformations
from wafproxy.config.aws_import.model import Out, SearchStringEncoding


def _inspect(
    ctx: Context, name: str, f: Mapping[str, object], path: str, options: Out, ref: str = ""
) -> Out:
    """A statement over FieldToMatch with TextTransformations."""
    out: Out = {"ref": ref} if ref else {}
    out["field"] = field_to_match(ctx, f["FieldToMatch"], join_path(path, "FieldToMatch"))
    out.update(options)
    chain = text_transformations(
        ctx, f["TextTransformations"], join_path(path, "TextTransformations")
    )
    if chain:
        out["transforms"] = chain
    return {name: out}


def byte_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value,
        path,
        ["FieldToMatch", "TextTransformations", "PositionalConstraint"],
        ["SearchString", "SearchStringBase64"],
    )
    constraint = ctx.choice(
        f["PositionalConstraint"],
        join_path(path, "PositionalConstraint"),
        ("EXACTLY", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CONTAINS_WORD"),
    )
    options: Out = {"constraint": constraint, "value": _search_string(ctx, f, path)}
    return _inspect(ctx, "byte_match", f, path, options)


def regex_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["RegexString", "FieldToMatch", "TextTransformations"])
    regex = ctx.text(f["RegexString"], join_path(path, "RegexString"))
    return _inspect(ctx, "regex_match", f, path, {"regex": regex})


def regex_pattern_set(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["ARN", "FieldToMatch", "TextTransformations"])
    ref = ctx.resolve(f["ARN"], Kind.REGEX_SET, join_path(path, "ARN"))
    return _inspect(ctx, "regex_pattern_set", f, path, {}, ref)


def size_constraint(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(
        value, path, ["FieldToMatch", "ComparisonOperator", "Size", "TextTransformations"]
    )
    operator = ctx.choice(
        f["ComparisonOperator"],
        join_path(path, "ComparisonOperator"),
        ("EQ", "NE", "LE", "LT", "GE", "GT"),
    )
    options: Out = {
        "comparison_operator": operator,
        "size": ctx.integer(f["Size"], join_path(path, "Size")),
    }
    return _inspect(ctx, "size_constraint", f, path, options)


def sqli_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["FieldToMatch", "TextTransformations"], ["SensitivityLevel"])
    options: Out = {}
    if "SensitivityLevel" in f:
        p = join_path(path, "SensitivityLevel")
        options["sensitivity_level"] = ctx.choice(f["SensitivityLevel"], p, ("LOW", "HIGH"))
    return _inspect(ctx, "sqli_match", f, path, options)


def xss_match(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["FieldToMatch", "TextTransformations"])
    return _inspect(ctx, "xss_match", f, path, {})


def _search_string(ctx: Context, f: Mapping[str, object], path: str) -> str:
    if "SearchStringBase64" in f:
        p = join_path(path, "SearchStringBase64")
        value = _from_base64(ctx, ctx.text(f["SearchStringBase64"], p), p, hint=False)
        plain = f.get("SearchString", value)
        if ctx.text(plain, join_path(path, "SearchString")) != value:
            raise ctx.error(path, "SearchString and SearchStringBase64 disagree")
        return value
    if "SearchString" not in f:
        raise ctx.error(path, "missing required key 'SearchString'")
    p = join_path(path, "SearchString")
    text = ctx.text(f["SearchString"], p)
    encoding = ctx.encoding
    if encoding is SearchStringEncoding.AUTO:
        encoding = SearchStringEncoding.BASE64 if ctx.doc.path else SearchStringEncoding.TEXT
        if encoding is SearchStringEncoding.TEXT:
            _warn_if_base64(ctx, text, p)
    if encoding is SearchStringEncoding.BASE64:
        return _from_base64(ctx, text, p, hint=ctx.encoding is SearchStringEncoding.AUTO)
    return text


def _from_base64(ctx: Context, text: str, path: str, *, hint: bool) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        more = (
            (
                "; get-* output carries SearchString base64-encoded: if this document has it "
                "as plain text, import with the search string encoding 'text'"
            )
            if hint
            else ""
        )
        raise ctx.error(path, f"{text!r} is not base64-encoded UTF-8 text{more}") from exc


def _warn_if_base64(ctx: Context, text: str, path: str) -> None:
    if len(text) < 8 or len(text) % 4:
        return
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return
    if decoded.isprintable():
        ctx.warn(
            path,
            f"{text!r} looks base64-encoded (it decodes to {decoded!r}) but is "
            "taken as plain text, as in a bare object; use the encoding 'base64' if "
            "it is encoded",
        )
