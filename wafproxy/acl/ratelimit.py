"""rate_based: AWS WAF's RateBasedStatement. The statement computes the aggregation key; the
counting lives behind ``EvalContext.rate`` (wafproxy.state), so the engine stays pure.

As in AWS WAF: only requests that match the scope-down statement are counted; a request missing
any custom key component (or, with a forwarded IP, the header) is neither counted nor limited;
requests are counted while they are being limited, so a client stays limited until its rate in
the window falls below the limit. The statement matches when the key is over the limit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Protocol

from wafproxy.acl.engine import field_values
from wafproxy.acl.fields import Attribute, SingleHeader, SingleQueryArgument
from wafproxy.acl.forwarded import ForwardedIp, compile_forwarded_ip, request_ips
from wafproxy.acl.model import (
    EvalContext,
    Field,
    Oversize,
    RateMatch,
    RateRule,
    Rule,
    Statement,
    WebAcl,
)
from wafproxy.acl.transforms._bytes import to_bytes
from wafproxy.config.source import Node
from wafproxy.request import WafRequest

if TYPE_CHECKING:
    from wafproxy.acl.compile import Chain, Compiler

KEY_TYPES = ["ip", "forwarded_ip", "constant", "custom_keys"]
WINDOWS = (60, 120, 300, 600)
DEFAULT_WINDOW = 300
MAX_LIMIT = 2_000_000_000
MAX_CUSTOM_KEYS = 5
MAX_COMPONENT_CHARS = 128
"""A longer key component is stored as its SHA-256 (bounded memory whatever clients send)."""
CUSTOM_KEY_COST = 30
TRANSFORM_COST = 10
LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:")


# -- key components -----------------------------------------------------------------------------
class KeyPart(Protocol):
    @property
    def kind(self) -> str:
        """The AWS log name (HEADER, COOKIE, ...)."""
        ...

    @property
    def name(self) -> str: ...

    def value(self, req: WafRequest, ctx: EvalContext, ip: str | None) -> str | None:
        """The component's value, or None when the request lacks it."""
        ...


@dataclass(frozen=True)
class CookieValue:
    """The values of the cookies with exactly this name (a field for the transform cache)."""

    name: str

    @cached_property
    def key(self) -> str:
        return f"rate_cookie:{self.name}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return tuple(v for n, v in req.cookies if n == self.name)

    def oversize(self, req: WafRequest) -> Oversize | None:
        return None

    def forced(self, req: WafRequest) -> bool | None:
        return None


@dataclass(frozen=True)
class FieldPart:
    kind: str
    name: str
    field: Field
    chain: Chain
    empty_is_missing: bool = False

    def value(self, req: WafRequest, ctx: EvalContext, ip: str | None) -> str | None:
        values = field_values(req, ctx, self.field, self.chain.names, self.chain.fns)
        if not values or (self.empty_is_missing and not values[0]):
            return None
        return values[0] if len(values) == 1 else ", ".join(values)


@dataclass(frozen=True)
class LabelPart:
    namespace: str
    kind: str = "LABEL_NAMESPACE"

    @property
    def name(self) -> str:
        return self.namespace

    def value(self, req: WafRequest, ctx: EvalContext, ip: str | None) -> str | None:
        found = sorted({label for label in ctx.labels if label.startswith(self.namespace)})
        return ",".join(found) if found else None


@dataclass(frozen=True)
class IpPart:
    kind: str
    """IP (the client address) or FORWARDED_IP (from forwarded_ip_config)."""
    name: str = ""

    def value(self, req: WafRequest, ctx: EvalContext, ip: str | None) -> str | None:
        return ip if ip is not None else canonical_ip(req.client_ip)


@lru_cache(maxsize=8192)
def canonical_ip(text: str) -> str:
    """One spelling per address (``::FFFF:1.2.3.4`` and ``1.2.3.4`` count together)."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return text
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def bounded(value: str) -> str:
    if len(value) <= MAX_COMPONENT_CHARS:
        return value
    digest = hashlib.sha256(to_bytes(value)).hexdigest()
    return f"sha256:{digest[:32]}"


# -- the statement ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateBased:
    rule: RateRule
    scope_down: Statement | None
    forwarded: ForwardedIp | None
    parts: tuple[KeyPart, ...]
    capacity: int

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        if self.scope_down is not None and not self.scope_down.matches(req, ctx):
            return False
        ip: str | None = None
        if self.forwarded is not None:
            ips = request_ips(req, self.forwarded)
            if ips is None:  # not an address: AWS's fallback behavior decides, nothing counted
                return self.forwarded.fallback_match
            if not ips:  # no header: the rule does not apply
                return False
            ip = canonical_ip(ips[0])
        found = self.aggregation_key(req, ctx, ip)
        if found is None or ctx.rate is None:
            return False
        key, components = found
        over = ctx.rate.hit(self.rule, key, ctx.now)
        if ctx.trace is not None:
            ctx.trace("rate", (self.rule, key, over))
        if over:
            ctx.rate_matches.append(RateMatch(self.rule, key, components))
        return over

    def aggregation_key(
        self, req: WafRequest, ctx: EvalContext, ip: str | None
    ) -> tuple[str, tuple[tuple[str, str, str], ...]] | None:
        """(key, custom components), or None when a component is missing."""
        kind = self.rule.key_type
        if kind == "IP":
            return canonical_ip(req.client_ip), ()
        if kind == "FORWARDED_IP":
            assert ip is not None
            return ip, ()
        if kind == "CONSTANT":
            return "", ()
        values: list[str] = []
        for part in self.parts:
            value = part.value(req, ctx, ip)
            if value is None:
                return None
            values.append(bounded(value))
        components = tuple((p.kind, p.name, v) for p, v in zip(self.parts, values, strict=True))
        return encode_key(values), components


def encode_key(values: Sequence[str]) -> str:
    """One component is its value; several are a JSON array (decode_key reverses both)."""
    if len(values) == 1:
        return values[0]
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def decode_key(statement: RateBased, key: str) -> list[dict[str, str]]:
    """The custom key components of a stored key, for the admin API."""
    if len(statement.parts) == 1:
        values = [key]
    else:
        try:
            loaded = json.loads(key)
        except ValueError:
            return []
        values = [str(v) for v in loaded] if isinstance(loaded, list) else []
    return [
        {"type": p.kind, "name": p.name, "value": v}
        for p, v in zip(statement.parts, values, strict=False)
    ]


def rate_statements(acl: WebAcl) -> Iterator[RateBased]:
    """Every rate-based rule of the web ACL, rule groups included, in evaluation order."""
    yield from _walk(acl.rules)


def _walk(rules: Sequence[Rule]) -> Iterator[RateBased]:
    for rule in rules:
        if rule.group is not None:
            yield from _walk(rule.group.rules)
        elif isinstance(rule.statement, RateBased):
            yield rule.statement


# -- compiling ----------------------------------------------------------------------------------
def compile_rate_based(node: Node, c: Compiler) -> Statement:
    rule_name = c.rate_rule
    c.rate_rule = None  # a rate_based (or any statement) nested below is not at the top level
    if rule_name is None:
        raise node.error("rate_based can only be the top-level statement of a rule")
    opts = node.fields(
        required=["limit"],
        optional=[
            "evaluation_window_sec",
            "aggregate_key_type",
            "custom_keys",
            "scope_down_statement",
            "forwarded_ip_config",
        ],
    )
    limit = opts["limit"].int(1, MAX_LIMIT)
    window = _window(opts.get("evaluation_window_sec"))
    key_type = "ip"
    if "aggregate_key_type" in opts:
        key_type = opts["aggregate_key_type"].one_of(KEY_TYPES)
    parts = _parts(node, opts, key_type, c)
    forwarded = _forwarded(node, opts, key_type, parts)
    if key_type == "constant" and "scope_down_statement" not in opts:
        raise node.error("aggregate_key_type constant needs a scope_down_statement")
    scope_down = None
    if "scope_down_statement" in opts:
        scope_down = c.statement(opts["scope_down_statement"])
    group = c.group
    rule = RateRule(
        id=f"{c.acl_name}/{group}/{rule_name}",
        name=rule_name,
        limit=limit,
        window=window,
        key_type=key_type.upper(),
        acl=c.acl_name,
        group=group,
    )
    capacity = 2 + (scope_down.capacity if scope_down else 0) + _parts_cost(parts)
    return RateBased(rule, scope_down, forwarded, parts, capacity)


def _window(node: Node | None) -> int:
    if node is None:
        return DEFAULT_WINDOW
    if isinstance(node.value, bool) or node.value not in WINDOWS:
        raise node.expected("one of 60, 120, 300, 600 (seconds)")
    return node.int()


def _forwarded(
    node: Node, opts: dict[str, Node], key_type: str, parts: tuple[KeyPart, ...]
) -> ForwardedIp | None:
    uses = key_type == "forwarded_ip" or any(p.kind == "FORWARDED_IP" for p in parts)
    if uses and "forwarded_ip_config" not in opts:
        raise node.error("a forwarded_ip aggregation key needs forwarded_ip_config")
    if not uses and "forwarded_ip_config" in opts:
        raise opts["forwarded_ip_config"].error(
            "forwarded_ip_config is only used with aggregate_key_type forwarded_ip or a "
            "forwarded_ip custom key"
        )
    return compile_forwarded_ip(opts.get("forwarded_ip_config"), with_position=False)


def _parts(node: Node, opts: dict[str, Node], key_type: str, c: Compiler) -> tuple[KeyPart, ...]:
    if key_type != "custom_keys":
        if "custom_keys" in opts:
            raise opts["custom_keys"].error("custom_keys needs aggregate_key_type: custom_keys")
        return ()
    if "custom_keys" not in opts:
        raise node.error("missing required key 'custom_keys' (aggregate_key_type is custom_keys)")
    items = opts["custom_keys"].seq()
    if not 1 <= len(items) <= MAX_CUSTOM_KEYS:
        raise opts["custom_keys"].expected(f"a list of 1 to {MAX_CUSTOM_KEYS} custom keys")
    parts: list[KeyPart] = []
    for item in items:
        part = _part(item, c)
        if part in parts:
            raise item.error("this custom key is listed twice")
        parts.append(part)
    if len(parts) == 1 and parts[0].kind in ("IP", "FORWARDED_IP"):
        raise items[0].error(
            "an ip or forwarded_ip custom key needs at least one other key (for the address "
            "alone use aggregate_key_type: ip or forwarded_ip)"
        )
    return tuple(parts)


CUSTOM_KEYS = [
    "header", "cookie", "query_argument", "query_string", "uri_path", "http_method",
    "label_namespace", "ip", "forwarded_ip",
]  # fmt: skip


def _part(node: Node, c: Compiler) -> KeyPart:
    kind, options = node.single_key("custom key")
    if kind not in CUSTOM_KEYS:
        import difflib

        close = difflib.get_close_matches(kind, CUSTOM_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = node if node.is_scalar else options
        raise where.error(f"unknown custom key {kind!r}; expected one of "
                          f"{', '.join(CUSTOM_KEYS)}{hint}")  # fmt: skip
    if options.value is None:  # a bare name: `- http_method`
        options = Node({}, options.mark, options.path)
    opts = options.fields(*_custom_key_fields(kind))
    if kind in ("ip", "forwarded_ip"):
        return IpPart(kind.upper())
    if kind == "label_namespace":
        return LabelPart(_namespace(opts["namespace"], c))
    chain = c.chain(opts.get("transforms"))
    if kind == "http_method":
        return FieldPart("HTTP_METHOD", "", Attribute("method"), chain)
    if kind == "query_string":
        return FieldPart("QUERY_STRING", "", Attribute("query_string"), chain, True)
    if kind == "uri_path":
        return FieldPart("URI_PATH", "", Attribute("uri_path"), chain, True)
    name = _key_name(opts["name"], kind)
    fields: dict[str, Field] = {
        "header": SingleHeader(name.lower()),
        "cookie": CookieValue(name),
        "query_argument": SingleQueryArgument(name.lower()),
    }
    return FieldPart(kind.upper(), name, fields[kind], chain)


def _custom_key_fields(kind: str) -> tuple[list[str], list[str]]:
    if kind in ("header", "cookie", "query_argument"):
        return ["name"], ["transforms"]
    if kind in ("query_string", "uri_path"):
        return [], ["transforms"]
    if kind == "label_namespace":
        return ["namespace"], []
    return [], []


def _key_name(node: Node, kind: str) -> str:
    name = node.str()
    if not name or len(name) > 64:
        raise node.expected(f"a {kind.replace('_', ' ')} name of 1 to 64 characters")
    return name


def _namespace(node: Node, c: Compiler) -> str:
    from wafproxy.acl.rules import QUALIFIED_PREFIXES

    namespace = node.str()
    if (
        not namespace.endswith(":")
        or len(namespace) > 1024
        or not set(namespace) <= LABEL_CHARS
        or "::" in namespace
    ):
        raise node.expected("a label namespace of letters, digits, '_', '-' and ':' ending in ':'")
    own = f"{c.namespace}:" if c.namespace else ""
    if namespace.startswith(QUALIFIED_PREFIXES) or (own and namespace.startswith(own)):
        return namespace
    return own + namespace


def _parts_cost(parts: Sequence[KeyPart]) -> int:
    cost = 0
    for part in parts:
        cost += CUSTOM_KEY_COST
        if isinstance(part, FieldPart):
            cost += TRANSFORM_COST * len(part.chain.names)
    return cost
