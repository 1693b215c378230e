"""ACTIONS registry: allow, block (custom response), count.

``action: block`` or ``action: {block: {custom_response: {...}}}``; see docs/rule-language.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wafproxy.acl.model import ActionKind, CustomResponse, RuleAction
from wafproxy.config.source import Node
from wafproxy.registry import Registry
from wafproxy.request import Header

ActionFactory = Callable[[Node, Mapping[str, CustomResponse]], RuleAction]
ACTIONS: Registry[ActionFactory] = Registry("action")

INSERTED_HEADER_PREFIX = "x-wafproxy-"
CONTENT_TYPES = {
    "text/plain": "text/plain",
    "text/html": "text/html",
    "application/json": "application/json",
    "TEXT_PLAIN": "text/plain",
    "TEXT_HTML": "text/html",
    "APPLICATION_JSON": "application/json",
}
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@ACTIONS.register("allow")
def allow(node: Node, bodies: Mapping[str, CustomResponse]) -> RuleAction:
    """Let the request through, optionally adding headers for the upstream.

    ``action: {allow: {custom_request_handling: {insert_headers: [{name: checked, value: "1"}]}}}``
    """
    return RuleAction(ActionKind.ALLOW, insert_headers=_request_handling(node))


@ACTIONS.register("count")
def count(node: Node, bodies: Mapping[str, CustomResponse]) -> RuleAction:
    """Record the match and go on with the next rule (labels are still added).

    ``action: count``
    """
    return RuleAction(ActionKind.COUNT, insert_headers=_request_handling(node))


@ACTIONS.register("block")
def block(node: Node, bodies: Mapping[str, CustomResponse]) -> RuleAction:
    """Answer the client directly (403 unless a custom response says otherwise).

    ```yaml
    action: {block: {custom_response: {response_code: 429, custom_response_body_key: slow-down}}}
    ```
    """
    if node.value is None:
        return RuleAction(ActionKind.BLOCK)
    opts = node.fields(optional=["custom_response"])
    if "custom_response" not in opts:
        return RuleAction(ActionKind.BLOCK)
    return RuleAction(ActionKind.BLOCK, response=custom_response(opts["custom_response"], bodies))


def custom_response(node: Node, bodies: Mapping[str, CustomResponse]) -> CustomResponse:
    opts = node.fields(
        required=["response_code"], optional=["custom_response_body_key", "response_headers"]
    )
    status = opts["response_code"].int(200, 599)
    headers = _headers(opts["response_headers"]) if "response_headers" in opts else ()
    body = b""
    content_type = "text/plain"
    if "custom_response_body_key" in opts:
        key_node = opts["custom_response_body_key"]
        key = key_node.str()
        if key not in bodies:
            raise key_node.error(f"no custom_response_bodies entry named {key!r}")
        body = bodies[key].body
        content_type = bodies[key].content_type
    return CustomResponse(status=status, headers=headers, body=body, content_type=content_type)


def response_body(node: Node) -> CustomResponse:
    """One entry of ``custom_response_bodies``: ``{content_type: text/html, content: "..."}``."""
    opts = node.fields(required=["content"], optional=["content_type"])
    ctype = "text/plain"
    if "content_type" in opts:
        ctype = CONTENT_TYPES[opts["content_type"].one_of(list(CONTENT_TYPES))]
    return CustomResponse(body=opts["content"].str().encode("utf-8"), content_type=ctype)


def compile_action(node: Node, bodies: Mapping[str, CustomResponse]) -> RuleAction:
    name, options = node.single_key("action")
    if name not in ACTIONS:
        raise (node if node.is_scalar else options).error(ACTIONS.unknown(name))
    return ACTIONS[name](options, bodies)


def _request_handling(node: Node) -> tuple[Header, ...]:
    if node.value is None:
        return ()
    opts = node.fields(optional=["custom_request_handling"])
    if "custom_request_handling" not in opts:
        return ()
    inner = opts["custom_request_handling"].fields(required=["insert_headers"])
    return tuple(
        (INSERTED_HEADER_PREFIX + name.lower(), value)
        for name, value in _headers(inner["insert_headers"])
    )


def _headers(node: Node) -> tuple[Header, ...]:
    out: list[Header] = []
    for item in node.seq():
        opts = item.fields(required=["name", "value"])
        name = opts["name"].str()
        if not name or not set(name) <= _TOKEN_CHARS:
            raise opts["name"].expected("a header name of letters, digits, '-' and '_'")
        value = opts["value"].str()
        if "\r" in value or "\n" in value:
            raise opts["value"].error("header values cannot contain line breaks")
        out.append((name, value))
    return tuple(out)
