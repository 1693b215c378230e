"""Actions (with custom responses and inserted request headers) and the custom response bodies
they name."""

from __future__ import annotations

from collections.abc import Sequence

from wafproxy.config.aws_import.context import Context
from wafproxy.config.aws_import.documents import join_path
from wafproxy.config.aws_import.model import Out

CONTENT_TYPES = {
    "TEXT_PLAIN": "text/plain",
    "TEXT_HTML": "text/html",
    "APPLICATION_JSON": "application/json",
}
RULE_ACTIONS = ("Allow", "Block", "Count")


def convert_action(ctx: Context, value: object, path: str, allowed: Sequence[str]) -> object:
    key, inner = ctx.one_key(value, path, f"action: {', '.join(allowed)}")
    p = join_path(path, key)
    if key in ("Captcha", "Challenge"):
        raise ctx.error(
            p,
            f"{key} actions are not supported: wafproxy has no CAPTCHA or "
            "challenge; change the rule to Block or Count before importing",
        )
    ctx.choice(key, path, allowed)
    name = key.lower()
    if key == "Block":
        f = ctx.fields(inner, p, optional=["CustomResponse"])
        if "CustomResponse" not in f:
            return name
        response = _custom_response(ctx, f["CustomResponse"], join_path(p, "CustomResponse"))
        return {name: {"custom_response": response}}
    f = ctx.fields(inner, p, optional=["CustomRequestHandling"])
    if "CustomRequestHandling" not in f:
        return name
    q = join_path(p, "CustomRequestHandling")
    handling = ctx.fields(f["CustomRequestHandling"], q, ["InsertHeaders"])
    headers = _header_list(ctx, handling["InsertHeaders"], join_path(q, "InsertHeaders"))
    ctx.warn(q, "inserted headers reach the upstream as x-wafproxy-<name>, not x-amzn-waf-<name>")
    return {name: {"custom_request_handling": {"insert_headers": headers}}}


def _custom_response(ctx: Context, value: object, path: str) -> Out:
    f = ctx.fields(value, path, ["ResponseCode"], ["CustomResponseBodyKey", "ResponseHeaders"])
    out: Out = {"response_code": ctx.integer(f["ResponseCode"], join_path(path, "ResponseCode"))}
    if "CustomResponseBodyKey" in f:
        p = join_path(path, "CustomResponseBodyKey")
        out["custom_response_body_key"] = ctx.text(f["CustomResponseBodyKey"], p)
    if "ResponseHeaders" in f:
        out["response_headers"] = _header_list(
            ctx, f["ResponseHeaders"], join_path(path, "ResponseHeaders")
        )
    return out


def _header_list(ctx: Context, value: object, path: str) -> list[object]:
    out: list[object] = []
    for p, item in ctx.items(value, path):
        f = ctx.fields(item, p, ["Name", "Value"])
        out.append(
            {
                "name": ctx.text(f["Name"], join_path(p, "Name")),
                "value": ctx.text(f["Value"], join_path(p, "Value")),
            }
        )
    return out


class ResponseBodies:
    """The CustomResponseBodies of the web ACL and of every rule group, in one table: in
    wafproxy the names are global."""

    def __init__(self) -> None:
        self.bodies: dict[str, Out] = {}
        self.files: dict[str, str] = {}

    def add(self, ctx: Context, value: object, path: str) -> None:
        if value is None:
            return
        for key, body in ctx.mapping(value, path).items():
            p = join_path(path, key)
            f = ctx.fields(body, p, ["ContentType", "Content"])
            ctype = ctx.choice(f["ContentType"], join_path(p, "ContentType"), list(CONTENT_TYPES))
            entry: Out = {
                "content_type": CONTENT_TYPES[ctype.upper()],
                "content": ctx.text(f["Content"], join_path(p, "Content")),
            }
            if self.bodies.get(key, entry) != entry:
                raise ctx.error(
                    p,
                    f"custom response body {key!r} differs from the one in "
                    f"{self.files[key]}; the names are global in wafproxy",
                )
            self.bodies[key] = entry
            self.files.setdefault(key, ctx.doc.file)
