"""STATEMENTS registry: each factory turns a YAML node into a frozen statement value.

Pattern statements (byte_match, regex_match, regex_pattern_set, and sqli_match / xss_match, whose
libinjection detection is an atom too) hold only AtomRefs: the actual matching happens once per
(field, transformation chain) in the scan plan (engine.atom_hit).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as _new_field  # SizeConstraint has an attribute named field
from functools import partial
from typing import TYPE_CHECKING

from wafproxy.acl.attacks import Detection
from wafproxy.acl.engine import atom_hit, field_values, forced_result, group_hits, may_force
from wafproxy.acl.forwarded import ForwardedIp, compile_forwarded_ip, request_ips
from wafproxy.acl.ipset import IpSet
from wafproxy.acl.matchers import Constraint, literal_regex
from wafproxy.acl.memo import MAX_VALUE, Memo
from wafproxy.acl.model import EvalContext, Field, GeoResolver, Statement
from wafproxy.acl.transforms._bytes import to_bytes
from wafproxy.acl.transforms.registry import apply_chain
from wafproxy.config.source import Node
from wafproxy.registry import Registry
from wafproxy.request import WafRequest

if TYPE_CHECKING:
    from wafproxy.acl.compile import AtomRef, Chain, Compiler

StatementFactory = Callable[[Node, "Compiler"], Statement]
STATEMENTS: Registry[StatementFactory] = Registry("statement")

TRANSFORM_COST = 10
CONSTRAINTS = ["contains", "exactly", "starts_with", "ends_with", "contains_word"]
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _is_word(value: str) -> bool:
    return set(value) <= _WORD_CHARS


def _cost(base: int, chain: Chain) -> int:
    return base + TRANSFORM_COST * len(chain.names)


# -- pattern statements -------------------------------------------------------------------------
@dataclass(frozen=True)
class PatternMatch:
    """All atoms of one statement share its field and chain, so they live in one MatchGroup
    (``slot``): a match is one set intersection, however many patterns the statement has."""

    field: Field
    chain: Chain
    slot: int
    atoms: frozenset[int]
    capacity: int
    check_forced: bool = True

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        if self.check_forced:
            forced = forced_result(req, ctx, self.field)
            if forced is not None:
                return forced
        if ctx.trace is not None:  # explain: the values this rule inspects, then each atom
            field_values(req, ctx, self.field, self.chain.names, self.chain.fns)
            return any([atom_hit(req, ctx, self.slot, atom) for atom in sorted(self.atoms)])
        return not group_hits(req, ctx, self.slot).isdisjoint(self.atoms)


def _pattern_match(fld: Field, chain: Chain, refs: Sequence[AtomRef], base_cost: int) -> Statement:
    (slot,) = {ref.slot for ref in refs}
    atoms = frozenset(r.atom for r in refs)
    return PatternMatch(fld, chain, slot, atoms, _cost(base_cost, chain), may_force(fld))


@STATEMENTS.register("byte_match")
def byte_match(node: Node, c: Compiler) -> Statement:
    """A string in a field, case-sensitive (add ``lowercase`` to ignore case).

    ```yaml
    byte_match: {field: uri_path, constraint: starts_with, value: /admin, transforms: [lowercase]}
    ```
    """
    opts = node.fields(required=["field", "constraint", "value"], optional=["transforms"])
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    constraint = Constraint(opts["constraint"].one_of(CONSTRAINTS))
    value = opts["value"].str()
    if not value:
        raise opts["value"].expected("a non-empty string")
    if constraint is Constraint.CONTAINS_WORD and not _is_word(value):
        raise opts["value"].expected("a word of letters, digits and '_' for contains_word")
    if len(value) > 200:
        raise opts["value"].expected("at most 200 characters")
    ref = c.atom(fld, chain, literal_regex(value, constraint), opts["value"])
    return _pattern_match(fld, chain, (ref,), 1)


@STATEMENTS.register("regex_match")
def regex_match(node: Node, c: Compiler) -> Statement:
    """An RE2 regular expression (no backreferences or lookaround) in a field.

    ``regex_match: {field: {single_header: {name: user-agent}}, regex: '(?i)sqlmap|nikto'}``
    """
    opts = node.fields(required=["field", "regex"], optional=["transforms"])
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    ref = c.atom(fld, chain, opts["regex"].str(), opts["regex"])
    return _pattern_match(fld, chain, (ref,), 3)


@STATEMENTS.register("regex_pattern_set")
def regex_pattern_set(node: Node, c: Compiler) -> Statement:
    """Any regex of a named set (``regex_pattern_sets:``) in a field.

    ``regex_pattern_set: {ref: bad-agents, field: {single_header: {name: user-agent}}}``
    """
    opts = node.fields(required=["ref", "field"], optional=["transforms"])
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    patterns = c.regex_set(opts["ref"])
    refs = tuple(c.atom(fld, chain, p, opts["ref"]) for p in patterns)
    return _pattern_match(fld, chain, refs, 25)


# -- value statements ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SizeConstraint:
    field: Field
    chain: Chain
    test: Callable[[int], bool]
    capacity: int
    whole_body: bool = False
    """A plain ``body``: the whole body's size (Content-Length), not just the inspected part."""
    check_forced: bool = True
    answers: Memo[bool] = _new_field(default_factory=Memo, repr=False, compare=False)

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        if self.whole_body:
            return self.test(req.body_size)
        if self.check_forced:
            forced = forced_result(req, ctx, self.field)
            if forced is not None:
                return forced
        if self.chain.names and ctx.trace is None:
            remembered = self._remembered(field_values(req, ctx, self.field, (), ()))
            if remembered is not None:
                return remembered
        values = field_values(req, ctx, self.field, self.chain.names, self.chain.fns)
        if not values:
            return self.test(0)
        return any(map(self._fits, values))

    def _fits(self, value: str) -> bool:
        return self.test(len(value) if value.isascii() else len(to_bytes(value)))

    def _remembered(self, raw: Sequence[str]) -> bool | None:
        """The answer per raw value, remembered: a header that every request sends (User-Agent,
        Host) would otherwise go through the chain's cache on every request. None for a value
        too long to remember: the request's chain cache answers (a scan of the same field and
        chain may already have filled it)."""
        if not raw:
            return self.test(0)
        get = self.answers.table.get
        for value in raw:
            answer = get(value)
            if answer is None:
                if len(value) > MAX_VALUE:
                    return None
                answer = self._fits(apply_chain(value, self.chain.fns))
                self.answers.put(value, answer)
            if answer:
                return True
        return False


SIZE_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "le": operator.ge,
    "lt": operator.gt,
    "ge": operator.le,
    "gt": operator.lt,
}
"""Each comparison with its operands swapped (``le``: bound >= n), so that
``partial(op, bound)`` tests a number without a Python-level call."""


def compare_with(node: Node, bound: int) -> Callable[[int], bool]:
    """``n <comparison_operator> bound`` as a one-argument test."""
    return partial(SIZE_OPERATORS[node.one_of(list(SIZE_OPERATORS))], bound)


@STATEMENTS.register("size_constraint")
def size_constraint(node: Node, c: Compiler) -> Statement:
    """Compares a field's size in bytes (after transformations) with a number.

    ``size_constraint: {field: query_string, comparison_operator: gt, size: 2048}``
    """
    opts = node.fields(required=["field", "comparison_operator", "size"], optional=["transforms"])
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    test = compare_with(opts["comparison_operator"], opts["size"].int(0, 21474836480))
    whole_body = fld.key == "body" and not chain.names
    return SizeConstraint(fld, chain, test, _cost(1, chain), whole_body, may_force(fld))


@STATEMENTS.register("sqli_match")
def sqli_match(node: Node, c: Compiler) -> Statement:
    """SQL injection (libinjection); ``sensitivity_level: high`` also sees comment-obfuscated SQL.

    ``sqli_match: {field: all_query_arguments, transforms: [url_decode, html_entity_decode]}``
    """
    opts = node.fields(required=["field"], optional=["transforms", "sensitivity_level"])
    level = (
        opts["sensitivity_level"].one_of(["low", "high"]) if "sensitivity_level" in opts else "low"
    )
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    high = level == "high"
    ref = c.detection(fld, chain, Detection.SQLI_HIGH if high else Detection.SQLI)
    return _pattern_match(fld, chain, [ref], 30 if high else 20)


@STATEMENTS.register("xss_match")
def xss_match(node: Node, c: Compiler) -> Statement:
    """Cross-site scripting (libinjection's HTML5 tokenizer).

    ``xss_match: {field: body, transforms: [html_entity_decode]}``
    """
    opts = node.fields(required=["field"], optional=["transforms"])
    fld = c.field(opts["field"])
    chain = c.chain(opts.get("transforms"))
    return _pattern_match(fld, chain, [c.detection(fld, chain, Detection.XSS)], 40)


# -- address statements -------------------------------------------------------------------------
@dataclass(frozen=True)
class IpSetMatch:
    ip_set: IpSet
    forwarded: ForwardedIp | None
    capacity: int = 1

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        if self.forwarded is None:
            return req.client_ip in self.ip_set  # the usual statement, without a tuple
        ips = request_ips(req, self.forwarded)
        if ips is None:
            return self.forwarded.fallback_match
        return any(ip in self.ip_set for ip in ips)


@dataclass(frozen=True)
class DynamicIpSetMatch:
    """A ``dynamic: true`` set: its run-time entries come from ``ctx.ip_sets`` (a snapshot of
    the shared state), plus any static addresses the set also lists."""

    name: str
    static: IpSet
    forwarded: ForwardedIp | None
    capacity: int = 1

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        dynamic = ctx.ip_sets.get(self.name)
        if self.forwarded is None:  # the usual statement, without a tuple
            ip = req.client_ip
            return ip in self.static or (dynamic is not None and ip in dynamic)
        ips = request_ips(req, self.forwarded)
        if ips is None:
            return self.forwarded.fallback_match
        if dynamic is None:
            return any(ip in self.static for ip in ips)
        return any(ip in self.static or ip in dynamic for ip in ips)


@STATEMENTS.register("ip_set")
def ip_set(node: Node, c: Compiler) -> Statement:
    """The client address (or a forwarded one) is in a named IP set (static, or ``dynamic: true``
    with entries added at run time through the admin API).

    ```yaml
    ip_set:
      ref: office
      forwarded_ip_config:
        {header_name: X-Forwarded-For, fallback_behavior: no_match, position: first}
    ```
    """
    opts = node.fields(required=["ref"], optional=["forwarded_ip_config"])
    fwd = compile_forwarded_ip(opts.get("forwarded_ip_config"), with_position=True)
    static = c.ip_set(opts["ref"])
    if c.is_dynamic_set(opts["ref"].str()):
        return DynamicIpSetMatch(opts["ref"].str(), static, fwd)
    return IpSetMatch(static, fwd)


@dataclass(frozen=True)
class GeoMatch:
    geo: GeoResolver
    values: frozenset[str]
    forwarded: ForwardedIp | None
    asn: bool
    capacity: int = 1

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        ips = request_ips(req, self.forwarded)
        if ips is None:
            assert self.forwarded is not None
            return self.forwarded.fallback_match
        origin = "forwardedip" if self.forwarded else "clientip"
        geo = ctx.geo or self.geo
        for ip in ips[:1]:
            if self.asn:
                number = geo.asn(ip)
                return number is not None and str(number) in self.values
            country = geo.country(ip)
            if country is None:
                return False
            label = f"awswaf:{origin}:geo:country:{country}"
            if label not in ctx.labels:
                ctx.labels.append(label)
            return country in self.values
        return False


@STATEMENTS.register("geo_match")
def geo_match(node: Node, c: Compiler) -> Statement:
    """The client's country (ISO 3166 alpha-2) from the web ACL's geo_database.

    Adds the label ``awswaf:clientip:geo:country:<CC>`` as AWS WAF does.
    ``geo_match: {country_codes: [NL, BE]}``
    """
    opts = node.fields(required=["country_codes"], optional=["forwarded_ip_config"])
    codes = opts["country_codes"].str_list()
    for code, item in zip(codes, opts["country_codes"].seq(), strict=False):
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise item.expected("a two-letter upper-case country code")
    fwd = compile_forwarded_ip(opts.get("forwarded_ip_config"), with_position=False)
    return GeoMatch(c.require_geo(node), frozenset(codes), fwd, asn=False)


@STATEMENTS.register("asn_match")
def asn_match(node: Node, c: Compiler) -> Statement:
    """The client's autonomous system number, from the web ACL's asn_database.

    ``asn_match: {asn_list: [64496, 64511]}``
    """
    opts = node.fields(required=["asn_list"], optional=["forwarded_ip_config"])
    numbers = [str(item.int(0, 4294967295)) for item in opts["asn_list"].seq()]
    fwd = compile_forwarded_ip(opts.get("forwarded_ip_config"), with_position=False)
    return GeoMatch(c.require_geo(node), frozenset(numbers), fwd, asn=True)


# -- labels and logic ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelMatch:
    key: str
    context: str
    """"" for a fully qualified key; else the namespace of the rule's ACL or group plus ':'."""
    namespace: bool
    capacity: int = 1

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        return any(self._matches(label) for label in ctx.labels)

    def _matches(self, label: str) -> bool:
        if not label.startswith(self.context):
            return False
        rest = label[len(self.context) :]
        if self.namespace:
            return rest.startswith(self.key)
        if not self.context:
            return rest == self.key
        return rest == self.key or rest.endswith(":" + self.key)


@STATEMENTS.register("label_match")
def label_match(node: Node, c: Compiler) -> Statement:
    """A label added by an earlier rule, as AWS WAF matches them: a fully qualified key must
    equal the label; any other key is looked up among the labels of the rule's own ACL or
    group, and may leave out leading namespaces (``sqli`` finds ``attack:sqli``).
    ``scope: namespace`` matches every label under the namespace.

    ``label_match: {scope: label, key: attack:sqli}``
    """
    from wafproxy.acl.rules import QUALIFIED_PREFIXES

    opts = node.fields(required=["scope", "key"])
    scope = opts["scope"].one_of(["label", "namespace"])
    key = opts["key"].str()
    if not key or any(not ch.isalnum() and ch not in "_-:" for ch in key):
        raise opts["key"].expected("a label of letters, digits, '_', '-' and ':'")
    own = f"{c.namespace}:" if c.namespace else ""
    qualified = key.startswith(QUALIFIED_PREFIXES) or (own and key.startswith(own))
    if scope == "namespace" and not key.endswith(":"):
        key += ":"
    return LabelMatch(key, "" if qualified else own, scope == "namespace")


@dataclass(frozen=True)
class AnomalyScore:
    test: Callable[[int], bool]
    capacity: int = 1

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        return self.test(ctx.score)


@STATEMENTS.register("anomaly_score")
def anomaly_score(node: Node, c: Compiler) -> Statement:
    """The request's anomaly score so far: the sum of the severity scores (critical 5, high 4,
    medium 3, low 2) of the rules that matched in managed groups referenced with
    ``mode: anomaly_scoring``. Put it in a rule after those groups to block at a threshold.

    ``anomaly_score: {comparison_operator: ge, score: 5}``
    """
    opts = node.fields(required=["comparison_operator", "score"])
    return AnomalyScore(compare_with(opts["comparison_operator"], opts["score"].int(0, 1000)))


@dataclass(frozen=True)
class AndStatement:
    parts: tuple[Statement, ...]
    capacity: int

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        for part in self.parts:  # noqa: SIM110 (a generator costs more; runs per request)
            if not part.matches(req, ctx):
                return False
        return True


@dataclass(frozen=True)
class OrStatement:
    parts: tuple[Statement, ...]
    capacity: int

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        for part in self.parts:  # noqa: SIM110 (a generator costs more; runs per request)
            if part.matches(req, ctx):
                return True
        return False


@dataclass(frozen=True)
class NotStatement:
    part: Statement
    capacity: int

    def matches(self, req: WafRequest, ctx: EvalContext) -> bool:
        return not self.part.matches(req, ctx)


def _parts(node: Node, c: Compiler) -> tuple[Statement, ...]:
    items = node.seq()
    if len(items) < 2:
        raise node.expected("a list of at least two statements")
    return tuple(c.statement(item) for item in items)


@STATEMENTS.register("and")
def and_(node: Node, c: Compiler) -> Statement:
    """Every statement matches.

    ```yaml
    and:
      - byte_match: {field: uri_path, constraint: starts_with, value: /admin}
      - not: {ip_set: {ref: office}}
    ```
    """
    parts = _parts(node, c)
    return AndStatement(parts, sum(p.capacity for p in parts))


@STATEMENTS.register("or")
def or_(node: Node, c: Compiler) -> Statement:
    """At least one statement matches.

    ```yaml
    or:
      - geo_match: {country_codes: [KP]}
      - ip_set: {ref: office}
    ```
    """
    parts = _parts(node, c)
    return OrStatement(parts, sum(p.capacity for p in parts))


@STATEMENTS.register("not")
def not_(node: Node, c: Compiler) -> Statement:
    """The statement does not match.

    ``not: {ip_set: {ref: office}}``
    """
    part = c.statement(node)
    return NotStatement(part, part.capacity)


@STATEMENTS.register("rate_based")
def rate_based(node: Node, c: Compiler) -> Statement:
    """Counts requests per aggregation key (the client address by default) over a sliding
    window and matches while the key is over ``limit``; only the top-level statement of a rule.
    Keys: ``ip``, ``forwarded_ip`` (with ``forwarded_ip_config``), ``constant`` (needs a
    ``scope_down_statement``) or ``custom_keys`` (header, cookie, query_argument, query_string,
    uri_path, http_method, label_namespace, ip, forwarded_ip). See docs/rate-limits.md.

    ```yaml
    rate_based:
      limit: 100
      evaluation_window_sec: 60
      aggregate_key_type: custom_keys
      custom_keys:
        - header: {name: x-api-key, transforms: [lowercase]}
        - http_method
      scope_down_statement:
        byte_match: {field: uri_path, constraint: starts_with, value: /api/}
    ```
    """
    from wafproxy.acl.ratelimit import compile_rate_based

    return compile_rate_based(node, c)


def _group_placeholder(kind: str) -> StatementFactory:
    def factory(node: Node, c: Compiler) -> Statement:
        raise node.error(f"{kind} can only be the top-level statement of a rule")

    factory.__doc__ = f"A {kind} reference; see docs/rule-language.md."
    return factory


STATEMENTS.add("rule_group", _group_placeholder("rule_group"))
STATEMENTS.add("managed_rule_group", _group_placeholder("managed_rule_group"))
