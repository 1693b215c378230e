"""Which rules of a group a request can possibly match, decided from the group scans alone.

A pattern statement matches only if one of its atoms is found by its (field, chain) scan; an
``and`` needs every part, an ``or`` any part. So a rule built from those has a *trigger*:
clauses of atoms, each of which must see one of its atoms found for the rule to match.
Statements without one (libinjection, sizes, labels, IP sets, geo, rate-based, ``not``, a
field whose oversize or invalid-body handling is ``match``) leave their rule always evaluated.

Per request, a group evaluates, in order, its untriggered rules and the rules whose every
clause fired; one quick check of the group's uncommon clauses merged usually leaves only a few
rules to look at. Skipping a rule that cannot match changes nothing, so the verdict is AWS's.
A request with an oversize part, and ``explain``, evaluate every rule (oversize fields are
logged as statements meet them).

A web ACL also has a *quiet plan*: its rules with every group reduced to the rules that can
match when none of the groups' quick clauses fired (groups left with no rule dropped). Most
requests are quiet, and then evaluation walks a dozen rules instead of every group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from wafproxy.acl.fields import Fallback, visible_cookies, visible_headers
from wafproxy.acl.model import EvalContext, Field, Oversize, Rule, Statement
from wafproxy.request import WafRequest

Clause = frozenset[int]
"""Atoms as ``atom_key(slot, atom)``: fires when any of them was found."""
Trigger = tuple[Clause, ...]
"""A rule can match only if every clause fires (an ``and`` contributes one per part)."""
COMMON_FIELDS = ("method", "header_order", "single_header:content-type")
CANDIDATE_SETS = 256
"""Fields whose atoms fire on ordinary requests (``and`` parts like "method is POST"): a
group's quick check uses another clause of a rule when it has one."""


@dataclass(frozen=True)
class Prefilter:
    quick: Clause
    """One uncommon clause of each rule that has one, merged: when it does not fire, only the
    ``rest`` can match."""
    triggers: tuple[Trigger | None, ...]
    """Per rule of the group, in order; None: always evaluated."""
    rest: tuple[tuple[Rule, Trigger | None], ...]
    """In order, the rules without a trigger or with only common clauses, and their triggers."""
    untriggered: tuple[Rule, ...]
    """The rules of ``rest`` without a trigger: all of ``rest`` when ``rest_triggered`` is
    False (then a quiet request needs no per-rule check at all)."""
    rest_triggered: bool
    by_found: dict[frozenset[int], tuple[Rule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """The candidates for a set of found atoms (they depend on nothing else), for the next
    request that finds the same: ordinary requests find the same few common atoms. At most
    CANDIDATE_SETS entries."""


@dataclass(frozen=True)
class _Part:
    clause: Clause
    common: bool


def build_prefilter(rules: Sequence[Rule]) -> Prefilter | None:
    """None when no rule of the group has a trigger (nothing to gain)."""
    parts = [_rule_parts(rule) for rule in rules]
    if all(p is None for p in parts):
        return None
    triggers = tuple(None if p is None else tuple(x.clause for x in p) for p in parts)
    chosen = [None if p is None else _chosen(p) for p in parts]
    quick = merge([c.clause for c in chosen if c is not None and not c.common])
    rest = tuple(
        (rule, trigger)
        for rule, trigger, c in zip(rules, triggers, chosen, strict=True)
        if c is None or c.common
    )
    untriggered = tuple(rule for rule, trigger in rest if trigger is None)
    return Prefilter(quick, triggers, rest, untriggered, len(untriggered) < len(rest))


@dataclass(frozen=True)
class QuietPlan:
    atoms: Clause
    """When none of these was found, ``rules`` decide exactly as the web ACL's rules do."""
    rules: tuple[Rule, ...]


def build_quiet_plan(rules: tuple[Rule, ...], top: Prefilter | None) -> QuietPlan | None:
    """None when it would leave nothing out. Groups whose every rule has a trigger of common
    clauses only (``rest_triggered``) keep their own per-request check."""
    atoms: list[Clause] = []
    if top is not None:
        if top.rest_triggered:
            return None
        atoms.append(top.quick)
        rules = top.untriggered
    planned: list[Rule] = []
    for rule in rules:
        group = rule.group
        pf = None if group is None else group.prefilter
        if group is None or pf is None or pf.rest_triggered:
            planned.append(rule)
            continue
        atoms.append(pf.quick)
        if pf.untriggered:
            quiet_group = replace(group, rules=pf.untriggered, prefilter=None)
            planned.append(replace(rule, group=quiet_group))
    if (
        top is None
        and len(planned) == len(rules)
        and all(a is b for a, b in zip(planned, rules, strict=True))
    ):
        return None
    return QuietPlan(merge(atoms), tuple(planned))


def _rule_parts(rule: Rule) -> list[_Part] | None:
    if rule.group is not None or rule.statement is None:
        return None
    return trigger_parts(rule.statement)


def trigger_parts(statement: Statement) -> list[_Part] | None:
    """The clauses that must all fire for ``statement`` to match; None: no such clause."""
    from wafproxy.acl.statements import AndStatement, OrStatement, PatternMatch  # a cycle

    if isinstance(statement, PatternMatch):
        if statement.check_forced and may_force_match(statement.field):
            return None
        common = statement.field.key.startswith(COMMON_FIELDS)
        clause = frozenset(atom_key(statement.slot, atom) for atom in statement.atoms)
        return [_Part(clause, common)]
    if isinstance(statement, AndStatement):
        found = [p for part in statement.parts for p in trigger_parts(part) or ()]
        return found or None
    if isinstance(statement, OrStatement):
        alternatives = [trigger_parts(p) for p in statement.parts]
        chosen = [_chosen(a) for a in alternatives if a is not None]
        if len(chosen) < len(alternatives):
            return None
        return [_Part(merge([c.clause for c in chosen]), any(c.common for c in chosen))]
    return None


def _chosen(parts: Sequence[_Part]) -> _Part:
    """The clause least likely to fire on an ordinary request, by a static guess."""
    return min(parts, key=lambda p: (p.common, len(p.clause)))


def may_force_match(fld: Field) -> bool:
    """True when the field can make a statement match without inspecting it."""
    return (
        getattr(fld, "handling", None) is Oversize.MATCH
        or getattr(fld, "fallback", None) is Fallback.MATCH
    )


def merge(clauses: Sequence[Clause]) -> Clause:
    return frozenset().union(*clauses)


SLOT_SHIFT = 24


def atom_key(slot: int, atom: int) -> int:
    """One number per atom of the whole web ACL (a slot has far fewer than 2**24 atoms)."""
    return slot << SLOT_SHIFT | atom


def applies(req: WafRequest, ctx: EvalContext) -> bool:
    """Whether this evaluation may skip rules (not while explaining, not for oversize parts)."""
    if ctx.trace is not None:
        return False
    return not (req.body_oversize or visible_headers(req).oversize or visible_cookies(req).oversize)
