"""The compiled values the engine walks, and the per-request EvalContext.

Everything here except EvalContext is immutable: a reload compiles a new WebAcl and the proxy
swaps one reference.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import field as _new_field  # for classes with an attribute named field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from wafproxy.acl.memo import MAX_VALUE, Memo
from wafproxy.request import Header, WafRequest

if TYPE_CHECKING:
    from wafproxy.acl.attacks import Detection
    from wafproxy.acl.ipset import IpSet
    from wafproxy.acl.matchers import JointScan, MatchGroup
    from wafproxy.acl.prefilter import Prefilter, QuietPlan

Transform = Callable[[str], str]
DEFAULT_ACTION = "Default_Action"
"""``terminating_rule`` when no rule decided, as in AWS WAF logs."""


class Oversize(enum.Enum):
    """AWS's OversizeHandling: what a statement does when a field was too big to inspect whole."""

    CONTINUE = "continue"
    MATCH = "match"
    NO_MATCH = "no_match"


class Field(Protocol):
    """A request component. ``key`` identifies it for caching and atom grouping."""

    @property
    def key(self) -> str: ...

    def extract(self, req: WafRequest) -> Sequence[str]: ...

    def oversize(self, req: WafRequest) -> Oversize | None:
        """None when the field was inspected whole; else the configured handling."""
        ...

    def forced(self, req: WafRequest) -> bool | None:
        """True/False when the field decides without inspection (json_body's
        invalid_fallback_behavior); None to inspect the values."""
        ...


class Statement(Protocol):
    def matches(self, req: WafRequest, ctx: EvalContext) -> bool: ...

    @property
    def capacity(self) -> int: ...


class ActionKind(enum.Enum):
    ALLOW = "allow"
    BLOCK = "block"
    COUNT = "count"

    @property
    def terminating(self) -> bool:
        return self is not ActionKind.COUNT


@dataclass(frozen=True)
class CustomResponse:
    status: int = 403
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    content_type: str = "text/plain"


@dataclass(frozen=True)
class RuleAction:
    kind: ActionKind
    insert_headers: tuple[Header, ...] = ()
    """allow / count: headers added to the request sent upstream (``x-wafproxy-<name>``)."""
    response: CustomResponse | None = None
    """block: the custom response, or None for the plain 403."""
    score: int = 0
    """count in anomaly-scoring mode: what a match adds to the request's anomaly score."""

    @property
    def terminating(self) -> bool:
        return self.kind.terminating


class RuleType(enum.Enum):
    REGULAR = "REGULAR"
    RATE_BASED = "RATE_BASED"
    GROUP = "GROUP"
    MANAGED_RULE_GROUP = "MANAGED_RULE_GROUP"


class OverrideAction(enum.Enum):
    NONE = "none"
    COUNT = "count"


@dataclass(frozen=True)
class RuleGroup:
    """A compiled rule group (custom or managed) as one reference sees it (overrides applied)."""

    name: str
    rules: tuple[Rule, ...]
    managed: bool = False
    version: str = ""
    scope_down: Statement | None = None
    prefilter: Prefilter | None = None
    """The rules' triggers (acl/prefilter.py); None: every rule is always evaluated."""


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    statement: Statement | None
    """None only for group references, which evaluate ``group`` instead."""
    action: RuleAction | None = None
    override_action: OverrideAction | None = None
    labels: tuple[str, ...] = ()
    """Fully qualified labels added when the rule matches."""
    group: RuleGroup | None = None
    type: RuleType = RuleType.REGULAR
    capacity: int = 1
    severity: str = "critical"
    """critical / high / medium / low: the anomaly score a match adds in scoring mode."""
    paranoia_level: int = 1
    """1 (fewest false positives) .. 4 (most detections): a group reference's
    ``paranoia_level`` leaves out the rules above it."""
    group_name: str | None = None
    """The rule group this rule belongs to (None for a web ACL's own rules): where its match
    is reported."""


@dataclass(frozen=True)
class ScanInput:
    """What a MatchGroup scans: a field through a transformation chain."""

    field: Field
    names: tuple[str, ...]
    fns: tuple[Transform, ...]
    patterns: tuple[str | Detection, ...] = ()
    """The regex or detection of each atom, by atom id (for ``explain``)."""


@dataclass(frozen=True)
class WebAcl:
    name: str
    default_action: RuleAction
    rules: tuple[Rule, ...]
    match_groups: tuple[MatchGroup, ...] = ()
    """The scan plan: one multi-pattern matcher per (field, transformation chain)."""
    scan_inputs: tuple[ScanInput, ...] = ()
    """``scan_inputs[i]`` is what ``match_groups[i]`` scans."""
    joint_scans: tuple[JointScan | None, ...] = ()
    """By slot (empty when there are none): the JointScan a slot's long value may share with
    another slot's."""
    capacity: int = 0
    warnings: tuple[str, ...] = ()
    label_namespace: str = ""
    geo: GeoResolver | None = None
    on_error: ActionKind = ActionKind.BLOCK
    """What an evaluation error does (the request is blocked unless this says allow)."""
    prefilter: Prefilter | None = None
    """The web ACL's own rules' triggers (acl/prefilter.py), like a rule group's."""
    quiet: QuietPlan | None = None
    """The rules a request evaluates when none of the groups' quick clauses fired."""

    @cached_property
    def default_verdict(self) -> Verdict:
        """The answer when no rule matched (built once: a Verdict is immutable)."""
        default = self.default_action
        return Verdict(
            action=default.kind,
            terminating_rule=DEFAULT_ACTION,
            response=default.response,
            insert_headers=default.insert_headers,
        )

    @cached_property
    def walks(self) -> dict[frozenset[int], tuple[Rule, ...]]:
        """The rules a request evaluates, by the atoms its scans found (they depend on nothing
        else): filled by engine._top_rules as requests come, at most CANDIDATE_SETS."""
        return {}

    @cached_property
    def field_scans(self) -> tuple[FieldScans, ...]:
        """The scan slots grouped by the field they read (a field without values has no hits
        in any of its slots)."""
        by_key: dict[str, tuple[Field, list[int]]] = {}
        for slot, inp in enumerate(self.scan_inputs):
            by_key.setdefault(inp.field.key, (inp.field, []))[1].append(slot)
        return tuple(FieldScans(fld, tuple(slots), fld.key) for fld, slots in by_key.values())

    @cached_property
    def body_scans(self) -> tuple[FieldScans, ...]:
        """The ``field_scans`` of the whole body: one value, too long to be remembered once a
        form or a document is posted (acl/together.py)."""
        from wafproxy.acl.fields import Body

        return tuple(s for s in self.field_scans if isinstance(s.field, Body))

    @cached_property
    def hit_plan(self) -> tuple[HitProbe, ...]:
        """``field_scans`` as plain tuples for ``engine._every_hit``, which runs for every
        request: unpacking a tuple costs less than reading four attributes per field, and a
        single header is read from the request's header map without a call. Fields with
        ``arg_parts`` are in ``part_plan`` instead."""
        return tuple(
            self._hit_probe(scans)
            for scans in self.field_scans
            if not hasattr(scans.field, "arg_parts")
        )

    def _hit_probe(self, scans: FieldScans) -> HitProbe:
        get: Callable[[str], frozenset[int] | None] = scans.found.table.get
        if scans in self.body_scans:  # a body too long to be remembered is not hashed (a 2 KB
            get = _short_get(scans.found)  # form: ~7 k instructions) only to be missed
        return (
            scans.raw_key,
            getattr(scans.field, "single_header", None),
            scans.field.extract,
            get,
            scans,
        )

    @cached_property
    def part_plan(self) -> tuple[PartProbe, ...]:
        """The ``field_scans`` of fields whose values are the values of ``name=value`` parts
        (a query string's or a form's arguments), with their ``arg_parts``: ``_every_hit``
        looks their answers up by part, without splitting each part (RequestField docs)."""
        return tuple(
            (scans.field.arg_parts, scans)
            for scans in self.field_scans
            if hasattr(scans.field, "arg_parts")
        )


def _short_get(memo: Memo[frozenset[int]]) -> Callable[[str], frozenset[int] | None]:
    get, limit = memo.table.get, memo.limit

    def short_get(value: str) -> frozenset[int] | None:
        return get(value) if len(value) <= limit else None

    return short_get


HitProbe = tuple[
    str,
    "str | None",
    Callable[[WafRequest], Sequence[str]],
    Callable[[str], "frozenset[int] | None"],
    "FieldScans",
]
"""A field's key, its header name if it is one header, its ``extract``, the ``get`` of its
``FieldScans.found`` table (a Memo never replaces its table; for a whole body, one that does
not look up a value too long to be remembered), and its ``FieldScans``."""

PartProbe = tuple[Callable[[WafRequest], "Sequence[str] | None"], "FieldScans"]
"""A field's ``arg_parts`` and its ``FieldScans``."""


@dataclass(frozen=True, eq=False)
class FieldScans:
    """Every scan of one field: the slots, and what all of them found in a value, remembered
    per raw value as ``prefilter.atom_key`` numbers (one lookup per value instead of one per
    slot)."""

    field: Field
    slots: tuple[int, ...]
    raw_key: str
    """The field's untransformed values' key in ``EvalContext.values`` (its key)."""
    found: Memo[frozenset[int]] = _new_field(default_factory=Memo, repr=False)
    found_by_part: Memo[frozenset[int]] = _new_field(
        default_factory=lambda: Memo(2 * MAX_VALUE), repr=False
    )
    """``found`` for a field with ``arg_parts``, remembered per raw ``name=value`` part (a
    value is a function of its part; a part holds a name too, hence the longer keys). A table
    of its own: a value of a JSON body may be spelt like a part of a form."""


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    action: ActionKind
    group: str | None = None
    type: RuleType = RuleType.REGULAR


@dataclass(frozen=True)
class RateRule:
    """One rate-based rule instance: what the state counts under, and how far."""

    id: str
    """``<acl>/<group>/<rule>`` (group empty for a web ACL's own rule): counters are per
    instance, as in AWS WAF (a rule group used by two web ACLs counts twice, separately)."""
    name: str
    limit: int
    window: int
    """evaluation_window_sec."""
    key_type: str = "IP"
    """AWS's AggregateKeyType: IP, FORWARDED_IP, CONSTANT or CUSTOM_KEYS."""
    acl: str = ""
    group: str = ""


class RateView(Protocol):
    """What the engine asks the shared state, synchronously (see wafproxy.state)."""

    def hit(self, rule: RateRule, key: str, now: float) -> bool:
        """Count one request for ``key`` under ``rule``; True when the key is over the limit."""
        ...


@dataclass(frozen=True)
class RateMatch:
    """A rate-based rule that acted on the request (the decision log's rateBasedRuleList)."""

    rule: RateRule
    key: str
    components: tuple[tuple[str, str, str], ...] = ()
    """Custom keys as (type, name, value), e.g. ("HEADER", "x-api-key", "abc")."""

    def log_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "rateBasedRuleId": self.rule.id,
            "rateBasedRuleName": self.rule.name,
            "limitKey": "CUSTOMKEYS" if self.rule.key_type == "CUSTOM_KEYS" else self.rule.key_type,
            "maxRateAllowed": self.rule.limit,
            "evaluationWindowSec": str(self.rule.window),
        }
        if self.components:
            entry["customValues"] = [
                {"key": kind, "name": name, "value": value} for kind, name, value in self.components
            ]
        return entry


@dataclass(frozen=True)
class Verdict:
    action: ActionKind
    """ALLOW or BLOCK: what happens to the request."""
    terminating_rule: str
    """The rule that decided, or ``Default_Action`` as in AWS WAF logs."""
    terminating_rule_type: RuleType = RuleType.REGULAR
    terminating_group: str | None = None
    response: CustomResponse | None = None
    insert_headers: tuple[Header, ...] = ()
    labels: tuple[str, ...] = ()
    matches: tuple[RuleMatch, ...] = ()
    """Every rule that matched, in evaluation order (count rules included)."""
    oversize_fields: tuple[str, ...] = ()
    error: str | None = None
    rate_based: tuple[RateMatch, ...] = ()
    """Rate-based rules whose key was over the limit (they matched)."""

    @property
    def blocked(self) -> bool:
        return self.action is ActionKind.BLOCK


class GeoResolver(Protocol):
    """Country and ASN of an address (a MaxMind-format database behind it)."""

    def country(self, ip: str) -> str | None: ...

    def asn(self, ip: str) -> int | None: ...


@dataclass(slots=True)
class EvalContext:
    """Per-request caches. Created by the engine for each request; never shared."""

    acl: WebAcl
    labels: list[str] = field(default_factory=list)
    values: dict[tuple[str, tuple[str, ...]] | str, Sequence[str]] = field(default_factory=dict)
    """A field's values by its key; through a transformation chain by (key, chain names)."""
    hits: dict[int, frozenset[int]] = field(default_factory=dict)
    oversize: list[str] = field(default_factory=list)
    inserted: list[Header] = field(default_factory=list)
    """Headers from matching count rules' custom request handling."""
    geo: GeoResolver | None = None
    state: object | None = None
    now: float = 0.0
    rate: RateView | None = None
    """The rate view of the shared state; None: rate-based rules count nothing and never match."""
    ip_sets: Mapping[str, IpSet] = field(default_factory=dict)
    """The current entries of the dynamic IP sets, by name (an immutable snapshot)."""
    rate_matches: list[RateMatch] = field(default_factory=list)
    score: int = 0
    """The anomaly score: the sum of the scores of the scoring rules that matched so far."""
    trace: Callable[[str, object], None] | None = None
    """``wafproxy explain`` sets this to see each step; None on the hot path."""
    prefilter: bool | None = None
    """Whether rules may be skipped by their triggers (acl/prefilter.py); None: not decided."""
    found: frozenset[int] | None = None
    """Every atom any scan found (``prefilter.atom_key`` numbers); None: not scanned yet."""
