"""FIELDS: the parts of a request a statement inspects (AWS WAF's FieldToMatch).

A field is a frozen value with four members:

- ``key``: canonical text naming the field and all its options (options at their default left
  out, so a plain body is ``body``). Equal configurations give equal keys: the engine caches
  extracted values and groups match atoms by key.
- ``extract(req)``: the strings to inspect, a tuple (maybe empty). Never raises on any request.
- ``oversize(req)``: None when the component was inspected whole, else the configured
  OversizeHandling (body, json_body, headers, cookies, header_order, body arguments).
- ``forced(req)``: None to inspect the values normally; True / False for a forced match / no match.
  Only json_body forces, for an invalid body with ``invalid_fallback_behavior: match / no_match``.

The engine applies oversize handling first (MATCH / NO_MATCH decide without looking further),
then ``forced``, then matches the extracted values.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import Literal, Protocol

from wafproxy.acl import bodies
from wafproxy.acl.bodies import memo
from wafproxy.acl.model import Field, Oversize
from wafproxy.config.source import Node
from wafproxy.lazy import lazy
from wafproxy.registry import Registry
from wafproxy.request import Header, WafRequest

MAX_ITEMS = 200
MAX_BYTES = 8192
"""AWS WAF inspects at most the first 200 headers / cookies and 8 KB of their names and values."""


class RequestField(Field, Protocol):
    def forced(self, req: WafRequest) -> bool | None: ...


FieldFactory = Callable[[Node], RequestField]
FIELDS: Registry[FieldFactory] = Registry("field")


def compile_field(node: Node) -> RequestField:
    """The field named by the value of a ``field:`` key: a bare name or a one-key mapping."""
    name, options = node.single_key("field")
    if name not in FIELDS:
        raise node.error(FIELDS.unknown(name))
    return FIELDS[name](options)


class Scope(enum.Enum):
    ALL = "all"
    KEY = "key"
    VALUE = "value"


class Fallback(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    EVALUATE_AS_STRING = "evaluate_as_string"


@dataclass(frozen=True)
class Visible:
    """Headers or cookies as far as AWS WAF's limits reach, and whether there were more."""

    pairs: tuple[Header, ...]
    oversize: bool

    @lazy
    def folded_names(self) -> tuple[str, ...]:
        """The names lower-cased, once per request for every header field that picks by name."""
        return tuple([name.lower() for name, _ in self.pairs])


def limit_pairs(pairs: Sequence[Header]) -> Visible:
    if len(pairs) <= MAX_ITEMS and sum(map(len, chain.from_iterable(pairs))) <= MAX_BYTES:
        return Visible(tuple(pairs), False)
    kept: list[Header] = []
    used = 0
    for name, value in pairs[:MAX_ITEMS]:
        room = MAX_BYTES - used - len(name)
        if room <= 0:
            break
        kept.append((name, value[:room]))
        used += len(name) + len(value)
        if len(value) > room:
            break
    return Visible(tuple(kept), True)


def _visible_headers(req: WafRequest) -> Visible:
    return limit_pairs(req.headers)


def _visible_cookies(req: WafRequest) -> Visible:
    return limit_pairs(req.cookies)


def visible_headers(req: WafRequest) -> Visible:
    return memo(req, "_wafproxy_headers_visible", _visible_headers)


def visible_cookies(req: WafRequest) -> Visible:
    return memo(req, "_wafproxy_cookies_visible", _visible_cookies)


def query_names(req: WafRequest) -> tuple[Header, ...]:
    """Query arguments as (URL-decoded lower-cased name, raw value)."""
    return memo(req, "_wafproxy_query_names", _query_names)


def _query_names(req: WafRequest) -> tuple[Header, ...]:
    return bodies.fold_names(req.query_args)


# -- field values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Whole:
    """A field that is always inspected whole and never forced."""

    def oversize(self, req: WafRequest) -> Oversize | None:
        return None

    def forced(self, req: WafRequest) -> bool | None:
        return None


@dataclass(frozen=True)
class Attribute(_Whole):
    """uri_path, query_string, method: one request attribute."""

    attribute: Literal["uri_path", "query_string", "method"]

    @cached_property
    def key(self) -> str:
        return self.attribute

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        value: str = getattr(req, self.attribute)
        return (value,)


@dataclass(frozen=True)
class SingleHeader(_Whole):
    name: str
    """Lower-cased."""

    @cached_property
    def key(self) -> str:
        return f"single_header:{_esc(self.name)}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return req.header_map.get(self.name, ())


@dataclass(frozen=True)
class SingleQueryArgument(_Whole):
    name: str
    """Lower-cased."""

    @cached_property
    def key(self) -> str:
        return f"single_query_argument:{_esc(self.name)}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return tuple([v for n, v in query_names(req) if n == self.name])


@dataclass(frozen=True)
class AllQueryArguments(_Whole):
    excluded: frozenset[str] = frozenset()
    """Lower-cased names (compared URL-decoded) whose values are left out."""

    @cached_property
    def key(self) -> str:
        return "all_query_arguments" + _excluded_key(self.excluded)

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        if self.excluded:
            return tuple([v for n, v in query_names(req) if n not in self.excluded])
        return tuple([v for _, v in req.query_args])


@dataclass(frozen=True)
class _BodyBased:
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
class Body(_BodyBased):
    @cached_property
    def key(self) -> str:
        return f"body{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return (req.body_text,)


@dataclass(frozen=True)
class AllBodyArguments(_BodyBased):
    excluded: frozenset[str] = frozenset()
    """Lower-cased names (urlencoded ones compared URL-decoded) whose values are left out."""

    @cached_property
    def key(self) -> str:
        return f"all_body_arguments{_excluded_key(self.excluded)}{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        if self.excluded:
            named = bodies.named_body_arguments(req)
            return tuple([v for n, v in named if n not in self.excluded])
        return tuple([v for _, v in bodies.body_arguments(req)])


def _excluded_key(names: frozenset[str]) -> str:
    return f":excluded={_join(names)}" if names else ""


@dataclass(frozen=True)
class SingleBodyArgument(_BodyBased):
    name: str
    """Lower-cased."""

    @cached_property
    def key(self) -> str:
        return f"single_body_argument:{_esc(self.name)}{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return tuple([v for n, v in bodies.named_body_arguments(req) if n == self.name])


@dataclass(frozen=True)
class JsonBody(_BodyBased):
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
        pattern = "all" if self.paths is None else f"included={_join(self.paths)}"
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


@dataclass(frozen=True)
class NamePattern:
    """AWS's match pattern for headers / cookies: all, or included / excluded names."""

    mode: Literal["all", "included", "excluded"]
    names: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return "all" if self.mode == "all" else f"{self.mode}={_join(self.names)}"

    def pick(self, visible: Visible, fold_case: bool) -> Sequence[Header]:
        if self.mode == "all":
            return visible.pairs
        keep = self.mode == "included"
        names = visible.folded_names if fold_case else [n for n, _ in visible.pairs]
        chosen = self.names
        if keep and chosen.isdisjoint(names):
            return ()  # the usual answer for a few named headers
        return [pair for pair, n in zip(visible.pairs, names, strict=True) if (n in chosen) is keep]


_VISIBLE = {"headers": visible_headers, "cookies": visible_cookies}


@dataclass(frozen=True)
class Pairs:
    """headers or cookies: names and/or values of the visible ones the pattern picks."""

    kind: Literal["headers", "cookies"]
    pattern: NamePattern
    scope: Scope
    handling: Oversize

    @cached_property
    def key(self) -> str:
        return (
            f"{self.kind}:{self.pattern.key}:scope={self.scope.value}"
            f":oversize={self.handling.value}"
        )

    def oversize(self, req: WafRequest) -> Oversize | None:
        return self.handling if _VISIBLE[self.kind](req).oversize else None

    def forced(self, req: WafRequest) -> bool | None:
        return None

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        picked = self.pattern.pick(_VISIBLE[self.kind](req), self.kind == "headers")
        if self.scope is Scope.KEY:
            return tuple([n for n, _ in picked])
        if self.scope is Scope.VALUE:
            return tuple([v for _, v in picked])
        return tuple([item for pair in picked for item in pair])


@dataclass(frozen=True)
class HeaderOrder:
    handling: Oversize

    @cached_property
    def key(self) -> str:
        return f"header_order:oversize={self.handling.value}"

    def oversize(self, req: WafRequest) -> Oversize | None:
        return self.handling if visible_headers(req).oversize else None

    def forced(self, req: WafRequest) -> bool | None:
        return None

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return (":".join([n for n, _ in visible_headers(req).pairs]),)


# -- options -----------------------------------------------------------------------------------
def _esc(text: str) -> str:
    """Key-safe text: the separators of keys escaped."""
    for char, code in (("%", "%25"), (",", "%2C"), (":", "%3A"), ("=", "%3D")):
        text = text.replace(char, code)
    return text


def _join(names: Iterable[str]) -> str:
    return ",".join(sorted(_esc(n) for n in names))


def _options(
    node: Node, required: Sequence[str] = (), optional: Sequence[str] = ()
) -> dict[str, Node]:
    if node.value is None:
        if required:
            raise node.error(f"missing required key {required[0]!r}")
        return {}
    if not required and not optional:
        _empty(node, "no options")
        return {}
    return node.fields(required, optional)


def _oversize(opts: dict[str, Node]) -> Oversize:
    node = opts.get("oversize_handling")
    return Oversize.CONTINUE if node is None else Oversize(node.one_of(_ONE_OF_OVERSIZE))


_ONE_OF_OVERSIZE = [o.value for o in Oversize]


def _name(node: Node) -> str:
    name = node.str()
    if not name.strip():
        raise node.expected("a non-empty name")
    return name.lower()


def _excluded_arguments(opts: dict[str, Node]) -> frozenset[str]:
    node = opts.get("excluded_arguments")
    if node is None:
        return frozenset()
    items = node.seq()
    if not items:
        raise node.expected("at least one argument name")
    return frozenset(_name(item) for item in items)


def _scope(node: Node) -> Scope:
    return Scope(node.one_of([s.value for s in Scope]))


def _empty(node: Node, what: str = "an empty mapping {}") -> None:
    if node.value is not None and node.value != {}:
        raise node.expected(what)


def _name_pattern(node: Node, what: str, fold_case: bool) -> NamePattern:
    included, excluded = f"included_{what}", f"excluded_{what}"
    items = node.fields(optional=["all", included, excluded])
    if len(items) != 1:
        raise node.expected(f"exactly one of all, {included}, {excluded}")
    ((which, child),) = items.items()
    if which == "all":
        _empty(child)
        return NamePattern("all")
    names: list[str] = child.str_list()  # annotated: Node.str shadows str in source.py
    if not names:
        raise child.expected(f"at least one name in {which}")
    folded = frozenset(n.lower() if fold_case else n for n in names)
    return NamePattern("included" if which == included else "excluded", folded)


def _json_paths(node: Node) -> tuple[str, ...] | None:
    items = node.fields(optional=["all", "included_paths"])
    if len(items) != 1:
        raise node.expected("exactly one of all, included_paths")
    if "all" in items:
        _empty(items["all"])
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


# -- the registry ------------------------------------------------------------------------------
@FIELDS.register("uri_path")
def uri_path(node: Node) -> RequestField:
    """The URI path as sent (still percent-encoded), without the query string.

    ```yaml
    field: uri_path
    ```
    """
    _options(node)
    return Attribute("uri_path")


@FIELDS.register("query_string")
def query_string(node: Node) -> RequestField:
    """The raw query string, without the leading '?'.

    ```yaml
    field: query_string
    ```
    """
    _options(node)
    return Attribute("query_string")


@FIELDS.register("method")
def method(node: Node) -> RequestField:
    """The HTTP method as sent.

    ```yaml
    field: method
    ```
    """
    _options(node)
    return Attribute("method")


@FIELDS.register("single_header")
def single_header(node: Node) -> RequestField:
    """The values of one header (name case-insensitive), every occurrence; none if missing.

    ```yaml
    field: {single_header: {name: user-agent}}
    ```
    """
    return SingleHeader(_name(_options(node, ["name"])["name"]))


@FIELDS.register("single_query_argument")
def single_query_argument(node: Node) -> RequestField:
    """The raw values of the query arguments with this name (compared URL-decoded, ignoring case).

    ```yaml
    field: {single_query_argument: {name: id}}
    ```
    """
    return SingleQueryArgument(_name(_options(node, ["name"])["name"]))


@FIELDS.register("all_query_arguments")
def all_query_arguments(node: Node) -> RequestField:
    """The raw values of every query argument.

    ```yaml
    field: all_query_arguments
    ```

    ```yaml
    field: {all_query_arguments: {excluded_arguments: [comment]}}
    ```

    Extension: ``excluded_arguments`` leaves out the arguments with these names (compared
    URL-decoded, ignoring case), so a rule can inspect every argument but one.
    """
    opts = _options(node, optional=["excluded_arguments"])
    return AllQueryArguments(_excluded_arguments(opts))


@FIELDS.register("body")
def body(node: Node) -> RequestField:
    """The inspected body prefix as text (oversize when the body is longer).

    ```yaml
    field: {body: {oversize_handling: match}}
    ```
    """
    return Body(_oversize(_options(node, optional=["oversize_handling"])))


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
    opts = _options(
        node, ["match_pattern", "match_scope"], ["invalid_fallback_behavior", "oversize_handling"]
    )
    fallback = opts.get("invalid_fallback_behavior")
    return JsonBody(
        handling=_oversize(opts),
        paths=_json_paths(opts["match_pattern"]),
        scope=_scope(opts["match_scope"]),
        fallback=Fallback.EVALUATE_AS_STRING
        if fallback is None
        else Fallback(fallback.one_of([f.value for f in Fallback])),
    )


def _pairs(node: Node, kind: Literal["headers", "cookies"]) -> RequestField:
    opts = _options(node, ["match_pattern", "match_scope", "oversize_handling"])
    pattern = _name_pattern(opts["match_pattern"], kind, fold_case=kind == "headers")
    return Pairs(kind, pattern, _scope(opts["match_scope"]), _oversize(opts))


@FIELDS.register("headers")
def headers(node: Node) -> RequestField:
    """Header names and/or values (names matched ignoring case). Only the first 200 headers and
    8 KB of names and values are inspected; more is oversize.

    ```yaml
    field:
      headers:
        match_pattern: {excluded_headers: [cookie, authorization]}
        match_scope: all
        oversize_handling: no_match
    ```
    """
    return _pairs(node, "headers")


@FIELDS.register("cookies")
def cookies(node: Node) -> RequestField:
    """Cookie names and/or values (names matched exactly). Only the first 200 cookies and 8 KB
    of names and values are inspected; more is oversize.

    ```yaml
    field:
      cookies:
        match_pattern: {included_cookies: [session, token]}
        match_scope: value
        oversize_handling: continue
    ```
    """
    return _pairs(node, "cookies")


@FIELDS.register("header_order")
def header_order(node: Node) -> RequestField:
    """One value: the header names as sent, in order, joined by ':' (``Host:User-Agent:Accept``).

    ```yaml
    field: {header_order: {oversize_handling: match}}
    ```
    """
    return HeaderOrder(_oversize(_options(node, ["oversize_handling"])))


@FIELDS.register("all_body_arguments")
def all_body_arguments(node: Node) -> RequestField:
    """Extension: the body's argument values, by Content-Type: urlencoded fields (raw),
    multipart fields (file parts give their file name), JSON scalars.

    ```yaml
    field: all_body_arguments
    ```

    ```yaml
    field: {all_body_arguments: {excluded_arguments: [body]}}
    ```

    ``excluded_arguments`` leaves out the arguments with these names (ignoring case; urlencoded
    names compared URL-decoded; JSON: members with that name at any depth).
    """
    opts = _options(node, optional=["oversize_handling", "excluded_arguments"])
    return AllBodyArguments(_oversize(opts), _excluded_arguments(opts))


@FIELDS.register("single_body_argument")
def single_body_argument(node: Node) -> RequestField:
    """Extension: the values of the body arguments with this name (ignoring case; urlencoded
    names compared URL-decoded). JSON: scalars of members with that name at any depth.

    ```yaml
    field: {single_body_argument: {name: password}}
    ```
    """
    opts = _options(node, ["name"], ["oversize_handling"])
    return SingleBodyArgument(_oversize(opts), _name(opts["name"]))
