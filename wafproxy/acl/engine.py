"""evaluate(acl, request) -> Verdict, with AWS WAF's semantics.

Rules run by priority; a rule group runs inline in its own order. The first terminating action
(allow / block) ends evaluation; count records the match and goes on; labels added by earlier rules
are visible to later ones. A group reference with ``override_action: count`` turns the group's
terminating result into a count and evaluation continues after the group.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from wafproxy.acl.memo import MAX_VALUE, chain_memo
from wafproxy.acl.model import (
    DEFAULT_ACTION,
    ActionKind,
    EvalContext,
    Field,
    FieldScans,
    GeoResolver,
    OverrideAction,
    Oversize,
    Rule,
    RuleAction,
    RuleGroup,
    RuleMatch,
    Transform,
    Verdict,
    WebAcl,
)
from wafproxy.acl.prefilter import CANDIDATE_SETS, SLOT_SHIFT
from wafproxy.acl.prefilter import applies as prefilter_applies
from wafproxy.request import WafRequest, arg_values

if TYPE_CHECKING:
    from wafproxy.acl.ipset import IpSet
    from wafproxy.acl.model import RateView
    from wafproxy.acl.prefilter import Prefilter, Trigger

log = logging.getLogger("wafproxy.engine")


def evaluate(
    acl: WebAcl,
    req: WafRequest,
    *,
    geo: GeoResolver | None = None,
    state: object | None = None,
    now: float = 0.0,
    ctx: EvalContext | None = None,
    rate: RateView | None = None,
    ip_sets: Mapping[str, IpSet] | None = None,
) -> Verdict:
    """Never raises: an internal error yields ``acl.on_error`` with ``Verdict.error`` set.

    ``rate`` counts and answers rate-based rules (without one they never match); ``ip_sets``
    holds the current entries of dynamic IP sets. ``now`` is the clock both use.
    """
    if ctx is None:
        if not acl.rules:
            return acl.default_verdict
        ctx = EvalContext(
            acl=acl, geo=geo or acl.geo, state=state, now=now, rate=rate, ip_sets=ip_sets or {}
        )
    matches: list[RuleMatch] = []
    try:
        decided = _run(_top_rules(acl, req, ctx), req, ctx, matches)
    except Exception as exc:  # a bug must not take the proxy down or let the request slip by
        log.debug("evaluation error", exc_info=True)
        return Verdict(
            action=acl.on_error,
            terminating_rule="Evaluation_Error",
            labels=tuple(ctx.labels),
            matches=tuple(matches),
            error=f"{type(exc).__name__}: {exc}",
            rate_based=tuple(ctx.rate_matches),
        )
    if decided is None and not (matches or ctx.labels or ctx.oversize or ctx.rate_matches):
        return acl.default_verdict  # nothing matched: the usual request
    headers = tuple(ctx.inserted)
    if decided is None:
        return Verdict(
            action=acl.default_action.kind,
            terminating_rule=DEFAULT_ACTION,
            response=acl.default_action.response,
            insert_headers=headers + acl.default_action.insert_headers,
            labels=tuple(ctx.labels),
            matches=tuple(matches),
            oversize_fields=tuple(ctx.oversize),
            rate_based=tuple(ctx.rate_matches),
        )
    rule, action, group = decided
    return Verdict(
        action=action.kind,
        terminating_rule=rule.name,
        terminating_rule_type=rule.type,
        terminating_group=group,
        response=action.response,
        insert_headers=headers + action.insert_headers,
        labels=tuple(ctx.labels),
        matches=tuple(matches),
        oversize_fields=tuple(ctx.oversize),
        rate_based=tuple(ctx.rate_matches),
    )


Decision = tuple[Rule, RuleAction, "str | None"]


def _run(
    rules: Sequence[Rule], req: WafRequest, ctx: EvalContext, matches: list[RuleMatch]
) -> Decision | None:
    for rule in rules:
        if rule.group is not None:
            decided = _run_group(rule, req, ctx, matches)
            if decided is not None:
                return decided
            continue
        assert rule.statement is not None and rule.action is not None
        matched = rule.statement.matches(req, ctx)
        if ctx.trace is not None:
            ctx.trace("rule", (rule.group_name, rule, matched))
        if not matched:
            continue
        ctx.labels.extend(rule.labels)
        matches.append(RuleMatch(rule.name, rule.action.kind, rule.group_name, rule.type))
        if rule.action.terminating:
            return rule, rule.action, rule.group_name
        ctx.inserted.extend(rule.action.insert_headers)
        ctx.score += rule.action.score
    return None


def _run_group(
    rule: Rule, req: WafRequest, ctx: EvalContext, matches: list[RuleMatch]
) -> Decision | None:
    group = rule.group
    assert group is not None
    rules = group.rules
    if group.prefilter is not None:
        rules = _possible(req, ctx, group.prefilter, rules)
        if not rules:
            return None  # no rule can match: nothing to scope down either
    if group.scope_down is not None and not group.scope_down.matches(req, ctx):
        if ctx.trace is not None:
            ctx.trace("scope_down", (rule, False))
        return None
    decided = _run(rules, req, ctx, matches)
    if decided is None:
        return None
    ctx.labels.extend(rule.labels)
    if rule.override_action is OverrideAction.COUNT:
        matches.append(RuleMatch(rule.name, ActionKind.COUNT, None, rule.type))
        return None
    _, action, _ = decided
    return rule, action, group.name


def _top_rules(acl: WebAcl, req: WafRequest, ctx: EvalContext) -> tuple[Rule, ...]:
    if acl.quiet is None and acl.prefilter is None:
        return acl.rules  # nothing to choose by the scans: no first pass over the fields
    if not may_skip_rules(req, ctx):
        return acl.rules
    found = _found(req, ctx)
    walk = acl.walks.get(found)
    if walk is None:
        walk = _keep(acl.walks, found, _walk(acl, req, ctx, found))
    return walk


def _walk(
    acl: WebAcl, req: WafRequest, ctx: EvalContext, found: frozenset[int]
) -> tuple[Rule, ...]:
    """The rules that can match a request that found these atoms, in order, with every group
    that could not end the evaluation replaced by its rules that can match: a walk of a few
    statements instead of a call or two per group."""
    quiet = acl.quiet
    if quiet is not None and quiet.atoms.isdisjoint(found):
        top = quiet.rules
    elif acl.prefilter is not None:
        top = _possible(req, ctx, acl.prefilter, acl.rules)
    else:
        top = acl.rules
    walk: list[Rule] = []
    for rule in top:
        group = rule.group
        if group is None:
            walk.append(rule)
            continue
        rules = group.rules
        if group.prefilter is not None:
            rules = _possible(req, ctx, group.prefilter, rules)
        if _never_decides(group, rules):
            walk.extend(rules)
        else:
            walk.append(rule)
    return tuple(walk)


def _never_decides(group: RuleGroup, rules: tuple[Rule, ...]) -> bool:
    """Whether these rules of the group can end no evaluation (none is terminating and the
    group has no scope-down): then the web ACL's walk may take them instead of the group,
    their matches naming the group. A terminating match inside a group is reported as the
    group reference (its name, type, labels and override), which an inline walk would not do."""
    return group.scope_down is None and all(
        rule.group is None and rule.action is not None and not rule.action.terminating
        for rule in rules
    )


def _found(req: WafRequest, ctx: EvalContext) -> frozenset[int]:
    """What every scan of the web ACL found in this request (``_every_hit``, once)."""
    found = ctx.found
    if found is None:
        found = ctx.found = _every_hit(req, ctx)
    return found


def _keep(
    cache: dict[frozenset[int], tuple[Rule, ...]], found: frozenset[int], rules: tuple[Rule, ...]
) -> tuple[Rule, ...]:
    """``rules`` remembered for ``found`` in a cache of at most CANDIDATE_SETS entries."""
    if len(cache) >= CANDIDATE_SETS:
        cache.clear()
    cache[found] = rules
    return rules


def _possible(
    req: WafRequest, ctx: EvalContext, pf: Prefilter, rules: tuple[Rule, ...]
) -> tuple[Rule, ...]:
    """The rules that can match this request, in order (all of them when it cannot be told)."""
    if not may_skip_rules(req, ctx):
        return rules
    found = _found(req, ctx)
    if pf.quick.isdisjoint(found) and not pf.rest_triggered:
        return pf.untriggered  # the common case, without a per-rule look
    return _candidates(req, ctx, pf, rules)


def may_skip_rules(req: WafRequest, ctx: EvalContext) -> bool:
    """Whether the prefilter decides which rules run, which scans every field first."""
    allowed = ctx.prefilter
    if allowed is None:
        allowed = ctx.prefilter = prefilter_applies(req, ctx)
    return allowed


def _candidates(
    req: WafRequest, ctx: EvalContext, pf: Prefilter, rules: tuple[Rule, ...]
) -> tuple[Rule, ...]:
    """The group's rules that can match this request, in order (acl/prefilter.py)."""
    found = _found(req, ctx)
    known = pf.by_found.get(found)
    if known is not None:
        return known
    if not pf.quick.isdisjoint(found):
        pairs: Iterable[tuple[Rule, Trigger | None]] = zip(rules, pf.triggers, strict=True)
    elif not pf.rest_triggered:
        return pf.untriggered
    else:
        pairs = pf.rest
    chosen = tuple(
        rule
        for rule, trigger in pairs
        if trigger is None or all(not clause.isdisjoint(found) for clause in trigger)
    )
    return _keep(pf.by_found, found, chosen)


def _every_hit(req: WafRequest, ctx: EvalContext) -> frozenset[int]:
    """Every scan of the web ACL, as ``atom_key`` numbers (the scans are cached per request
    and remembered per value, so this is what evaluating every rule would scan anyway)."""
    found: set[int] = set()
    values = ctx.values  # field_values(req, ctx, scans.field, (), ()) without a call per field
    headers = req.header_map
    for raw_key, header, extract, get, scans in ctx.acl.hit_plan:
        # written without a look first: it mostly runs before any rule, and extracting again
        # gives equal values
        raw = values[raw_key] = extract(req) if header is None else headers.get(header, ())
        if not raw:
            continue
        for value in raw:
            keys = get(value)
            if keys is None:
                found.update(_field_hits(req, ctx, scans, raw))
                break
            if keys:
                found.update(keys)
    for arg_parts, scans in ctx.acl.part_plan:
        parts = arg_parts(req)
        if parts is None:  # not parts of one string (a JSON body's arguments)
            raw = values[scans.raw_key] = scans.field.extract(req)
            found.update(_hits_by_key(req, ctx, scans, raw, by_part=False))
        elif parts:
            found.update(_hits_by_key(req, ctx, scans, parts, by_part=True))
    return frozenset(found)


def _hits_by_key(
    req: WafRequest, ctx: EvalContext, scans: FieldScans, keys: Sequence[str], by_part: bool
) -> Collection[int]:
    """What the field's slots found in its values, remembered per value, or with ``by_part``
    per raw ``name=value`` part (a form's warm path then neither splits a part nor hashes a
    value); found by the scans when a key is not remembered."""
    get = (scans.found_by_part if by_part else scans.found).table.get
    found: set[int] = set()
    for key in keys:
        hits = get(key)
        if hits is None:
            if by_part:
                return _new_part_hits(req, ctx, scans, keys)
            return _field_hits(req, ctx, scans, keys)
        if hits:
            found.update(hits)
    return found


def _new_part_hits(
    req: WafRequest, ctx: EvalContext, scans: FieldScans, parts: Sequence[str]
) -> frozenset[int]:
    """``_hits_by_key`` by part when some parts are not remembered: only their values are
    split off and go through each slot's group (remembered per value there, or scanned); the
    other parts' answers give the rest. Each slot's hits go to the context, as ``group_hits``
    of the whole field would have found them, and each new part's answer to the part memo."""
    memo = scans.found_by_part
    get = memo.table.get
    known: set[int] = set()
    new_parts: list[str] = []
    for part in parts:
        keys = get(part)
        if keys is None:
            new_parts.append(part)
        elif keys:
            known.update(keys)
    new_values = arg_values(new_parts)
    found: set[int] = set()
    tables: list[tuple[int, Mapping[str, frozenset[int]]]] = []
    for slot in scans.slots:
        base = slot << SLOT_SHIFT
        group = ctx.acl.match_groups[slot]
        hits = ctx.hits.get(slot)
        if hits is None:
            fresh = group.scan_remembering(new_values, ctx.acl.scan_inputs[slot].fns)
            before = [key - base for key in known if key >> SLOT_SHIFT == slot]
            hits = ctx.hits[slot] = fresh.union(before) if before else fresh
        found.update([base | atom for atom in hits])
        tables.append((base, group.answers))
    kept: list[str] = []
    answers: list[frozenset[int]] = []
    for part, value in zip(new_parts, new_values, strict=True):
        answer = _remembered_answer(value, tables)
        if answer is not None:
            kept.append(part)
            answers.append(answer)
    if kept:
        memo.put_all(kept, answers)
    return frozenset(found)


def _field_hits(
    req: WafRequest, ctx: EvalContext, scans: FieldScans, raw: Sequence[str]
) -> frozenset[int]:
    """What every slot of the field found, remembering it per value for ``_every_hit``."""
    if one_long_value(raw):
        return _long_value_hits(req, ctx, scans, raw[0])
    found: set[int] = set()
    tables: list[tuple[int, Mapping[str, frozenset[int]]]] = []
    for slot in scans.slots:
        base = slot << SLOT_SHIFT  # prefilter.atom_key without a call per atom
        found.update([base | atom for atom in group_hits(req, ctx, slot)])
        tables.append((base, ctx.acl.match_groups[slot].answers))
    values: list[str] = []
    answers: list[frozenset[int]] = []
    known = scans.found.table.get
    for value in raw:
        if known(value) is None and (answer := _remembered_answer(value, tables)) is not None:
            values.append(value)
            answers.append(answer)
    if values:
        scans.found.put_all(values, answers)
    return frozenset(found)


def _remembered_answer(
    value: str, tables: Sequence[tuple[int, Mapping[str, frozenset[int]]]]
) -> frozenset[int] | None:
    """What every slot's group remembers for ``value``, as atom keys (``tables``: each slot's
    key base and its group's answers); None when one of them does not (too long to remember,
    or forgotten meanwhile)."""
    atoms: set[int] = set()
    for base, table in tables:
        hits = table.get(value)
        if hits is None:
            return None
        if hits:
            atoms.update([base | atom for atom in hits])
    return frozenset(atoms) if atoms else NOTHING


def _long_value_hits(
    req: WafRequest, ctx: EvalContext, scans: FieldScans, value: str
) -> frozenset[int]:
    """``_field_hits`` of a field whose one value is too long to be remembered (a form body,
    mostly): each slot's input is scanned as ``group_hits`` would, without its look-ups for a
    remembered answer, which a long value never has."""
    found: set[int] = set()
    for slot in scans.slots:
        slot_hits = long_slot_hits(req, ctx, slot, value)
        if slot_hits:
            base = slot << SLOT_SHIFT
            found.update([base | atom for atom in slot_hits])
    return frozenset(found)


def long_slot_hits(req: WafRequest, ctx: EvalContext, slot: int, value: str) -> frozenset[int]:
    """``group_hits`` of a slot whose field's one value, ``value``, is too long to be
    remembered: scanned once per request through the slot's chain, with no memo look-ups."""
    hits = ctx.hits.get(slot)
    if hits is None:
        inp = ctx.acl.scan_inputs[slot]
        if inp.names:
            value = field_values(req, ctx, inp.field, inp.names, inp.fns, remember=False)[0]
        hits = ctx.hits[slot] = _scan_long(req, ctx, slot, value)
    return hits


# -- helpers statements use ---------------------------------------------------------------------
def field_values(
    req: WafRequest,
    ctx: EvalContext,
    fld: Field,
    names: tuple[str, ...],
    fns: tuple[Transform, ...],
    *,
    remember: bool = True,
) -> Sequence[str]:
    """The field's values after the transformation chain, cached per request by chain prefix.

    ``remember``: also across requests, in the chain's memo. A scan passes False: its group's
    memo keeps each value's answer, so the chain's output would only be written, never read."""
    key = (fld.key, names) if names else fld.key  # a field's own values: its key, hashed once
    cached = ctx.values.get(key)
    if cached is not None:
        if ctx.trace is not None:
            ctx.trace("values", (fld.key, names, cached))
        return cached
    if not names:
        values: Sequence[str] = fld.extract(req)
    elif ctx.trace is None and remember:
        values = _transformed(req, ctx, fld, names, fns)
    else:  # explain shows every step, and a scan has its group memo: no chain memo
        previous = field_values(req, ctx, fld, names[:-1], fns[:-1], remember=remember)
        values = tuple(map(fns[-1], previous))
    ctx.values[key] = values
    if ctx.trace is not None:
        ctx.trace("values", (fld.key, names, values))
    return values


def _transformed(
    req: WafRequest,
    ctx: EvalContext,
    fld: Field,
    names: tuple[str, ...],
    fns: tuple[Transform, ...],
) -> Sequence[str]:
    """The chain's output per value: remembered across requests, else computed from the
    request's cached shorter prefix of the chain."""
    raw = field_values(req, ctx, fld, (), ())
    memo = chain_memo(names)
    get = memo.table.get  # the dict's own get: this loop runs for every value of a request
    known = [get(value) for value in raw]
    if None not in known:
        return tuple(known)  # type: ignore[arg-type]
    previous = field_values(req, ctx, fld, names[:-1], fns[:-1])
    values = tuple(map(fns[-1], previous))
    memo.put_all(raw, values)
    return values


def may_force(fld: Field) -> bool:
    """False for fields that are always inspected whole (path, query, one header, ...): their
    statements skip the oversize / fallback checks on every request."""
    from wafproxy.acl.fields import _Whole

    return not isinstance(fld, _Whole)


def forced_result(req: WafRequest, ctx: EvalContext, fld: Field) -> bool | None:
    """True/False when oversize handling or an invalid-body fallback decides; None to inspect."""
    if ctx.prefilter:  # decided for this request: no part of it is oversize
        return fld.forced(req)
    handling = fld.oversize(req)
    if handling is not None:
        if fld.key not in ctx.oversize:
            ctx.oversize.append(fld.key)
        if handling is Oversize.MATCH:
            return True
        if handling is Oversize.NO_MATCH:
            return False
    return fld.forced(req)


NOTHING: frozenset[int] = frozenset()


def group_hits(req: WafRequest, ctx: EvalContext, slot: int) -> frozenset[int]:
    """The atoms of MatchGroup ``slot`` that match: scanned once per request, then remembered."""
    hits = ctx.hits.get(slot)
    if hits is None:
        group = ctx.acl.match_groups[slot]
        inp = ctx.acl.scan_inputs[slot]
        if ctx.trace is None:
            raw = field_values(req, ctx, inp.field, (), ())
            if one_long_value(raw):  # never remembered: no memo look-ups or bookkeeping for it
                return long_slot_hits(req, ctx, slot, raw[0])
            hits = group.remembered(raw) if raw else NOTHING
            if hits is None and len(raw) == 1:  # a path, a body, one header: the field's other
                # chains share this one's prefixes, cached for the request by field_values
                values = field_values(req, ctx, inp.field, inp.names, inp.fns, remember=False)
                hits = group.scan_remembering(raw, inp.fns, values)
            elif hits is None:  # arguments, cookies, headers: most are usually remembered
                hits = group.scan_remembering(raw, inp.fns)
        else:
            hits = group.scan(field_values(req, ctx, inp.field, inp.names, inp.fns))
        ctx.hits[slot] = hits
    return hits


def _scan_long(req: WafRequest, ctx: EvalContext, slot: int, value: str) -> frozenset[int]:
    """``value`` (the slot's input, too long to be remembered) scanned by the slot's group, or
    by its JointScan when the other slot's input is the same text (that slot's hits too)."""
    acl = ctx.acl
    joint = acl.joint_scans[slot] if acl.joint_scans else None
    both = None
    if joint is not None and joint.partner(slot) not in ctx.hits:
        inp = acl.scan_inputs[joint.partner(slot)]
        values = field_values(req, ctx, inp.field, inp.names, inp.fns, remember=False)
        if len(values) == 1 and values[0] == value:
            both = joint.scan(value)
    if joint is None or both is None:
        return acl.match_groups[slot].scan_one(value)
    ctx.hits[joint.first], ctx.hits[joint.second] = both
    return ctx.hits[slot]


def one_long_value(values: Sequence[str]) -> bool:
    """A field read whole (a body) whose value is too long for any memo to keep."""
    return len(values) == 1 and len(values[0]) > MAX_VALUE


def atom_hit(req: WafRequest, ctx: EvalContext, slot: int, atom: int) -> bool:
    hit = atom in group_hits(req, ctx, slot)
    if ctx.trace is not None:
        ctx.trace("atom", (slot, atom, hit))
    return hit
