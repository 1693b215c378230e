"""Body fields: body (the inspected prefix as text) and json_body (the body parsed as JSON)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property

from wafproxy.acl import bodies
from wafproxy.acl.fields.options import Scope, empty, join, options, oversize, scope
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.acl.model import Oversize
from wafproxy.config.source import Node
from wafproxy.request import WafRequest


class Fallback(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    EVALUATE_AS_STRING = "evaluate_as_string"


@dataclass(frozen=True)
class BodyBased:
    """A field over the inspected body prefix: oversize when the body was longer."""

    handling: Oversize

    @property
    def suffix(self) -> str:
        """The key's oversize part; left out at the default (so a plain body's key is "body")."""
        return "" if self.handling is Oversize.CONTINUE else f":oversize={self.handling.value}"

    def oversize(self, req: WafRequest) -> Oversize | None:
        return self.handling if req.body_oversize else None

    def forced(self, req: WafRequest) -> bool | None:
        return None


@dataclass(frozen=True)
class Body(BodyBased):
    @cached_property
    def key(self) -> str:
        return f"body{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return (req.body_text,)


@dataclass(frozen=True)
class JsonBody(BodyBased):
    """The body parsed as JSON; keys and/or scalar values (numbers etc. as their JSON text).

    An empty body has nothing to inspect. A body that is not one valid JSON object or array
    (truncated, duplicate keys, deeper than bodies.MAX_JSON_DEPTH, ...) takes the fallback.
    """

    paths: tuple[str, ...] | None
    """Included JSON pointers (each selects its subtree); None for all."""
    scope: Scope
    fallback: Fallback

    @cached_property
    def key(self) -> str:
        pattern = "all" if self.paths is None else f"included={join(self.paths)}"
        fallback = (
            ""
            if self.fallback is Fallback.EVALUATE_AS_STRING
            else f":fallback={self.fallback.value}"
        )
        return f"json_body:{pattern}:scope={self.scope.value}{fallback}{self.suffix}"

    def forced(self, req: WafRequest) -> bool | None:
        if not req.body or not _invalid_json(req):
            return None
        return {Fallback.MATCH: True, Fallback.NO_MATCH: False}.get(self.fallback)

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        if not req.body:
            return ()
        if _invalid_json(req):
            return (req.body_text,) if self.fallback is Fallback.EVALUATE_AS_STRING else ()
        keys = self.scope is not Scope.VALUE
        values = self.scope is not Scope.KEY
        paths = self.paths
        prefixes = tuple(p + "/" for p in paths or ())
        out: list[str] = []
        for pointer, key, text in bodies.json_leaf_table(req):
            if paths is not None and pointer not in paths and not pointer.startswith(prefixes):
                continue
            if keys and key is not None:
                out.append(key)
            if values and text is not None:
                out.append(text)
        return tuple(out)


def _invalid_json(req: WafRequest) -> bool:
    return not isinstance(bodies.json_document(req), (dict, list))


def _json_paths(node: Node) -> tuple[str, ...] | None:
    items = node.fields(optional=["all", "included_paths"])
    if len(items) != 1:
        raise node.expected("exactly one of all, included_paths")
    if "all" in items:
        empty(items["all"])
        return None
    child = items["included_paths"]
    paths = child.str_list()
    if not paths:
        raise child.expected("at least one JSON pointer")
    for path in paths:
        if not _is_pointer(path):
            raise child.expected(
                f"JSON pointers like /a/0/b (RFC 6901), at most 512 long; {path!r}"
            )
    return tuple(sorted(set(paths)))


def _is_pointer(path: str) -> bool:
    if not path.startswith("/") or len(path) > 512:
        return False
    return all(chunk[:1] in ("0", "1") for chunk in path.split("~")[1:])


@FIELDS.register("body")
def body(node: Node) -> RequestField:
    """The inspected body prefix as text (oversize when the body is longer).

    ```yaml
    field: {body: {oversize_handling: match}}
    ```
    """
    return Body(oversize(options(node, optional=["oversize_handling"])))


@FIELDS.register("json_body")
def json_body(node: Node) -> RequestField:
    """The body as JSON: keys and/or scalar values, all or under the included JSON pointers.

    An invalid body (truncated, duplicate keys, not an object or array, nested deeper than 64)
    takes ``invalid_fallback_behavior``: ``match`` / ``no_match`` decide the statement,
    ``evaluate_as_string`` (the default, covering AWS's parse-as-far-as-possible) inspects
    the body text. An empty body has nothing to inspect.

    ```yaml
    field:
      json_body:
        match_pattern: {included_paths: [/user/name, /tags]}
        match_scope: value
        invalid_fallback_behavior: match
        oversize_handling: continue
    ```
    """
    opts = options(
        node, ["match_pattern", "match_scope"], ["invalid_fallback_behavior", "oversize_handling"]
    )
    fallback = opts.get("invalid_fallback_behavior")
    return JsonBody(
        handling=oversize(opts),
        paths=_json_paths(opts["match_pattern"]),
        scope=scope(opts["match_scope"]),
        fallback=Fallback.EVALUATE_AS_STRING
        if fallback is None
        else Fallback(fallback.one_of([f.value for f in Fallback])),
    )
