"""Evaluating the requests that reached the engine together: their long bodies' scans first,
one scan group at a time, then each request's evaluation as usual.

Why: a body longer than memo.MAX_VALUE (a form, a document) is never remembered, so each request
scans it through Hyperscan databases of up to megabytes. Between two requests the rest of the
request path (sockets, parsing, the upstream hop) evicts those tables from the core's cache, and
the tables evict the path's own data: in the proxy, the default rules' scans of a 2 KB form cost
about four times what the same scans cost back to back (bench/RESULTS.md, 2026-11-30). Under
load several requests reach the engine in one event-loop iteration; scanning group by group
reads each database once for all of them. The evaluation itself is unchanged: it finds those
scans' hits in its context, as if it had scanned the body itself, and it would have (a request
whose rules the prefilter may skip scans every field before any rule runs). Other long values
(a long query string or Cookie header) are left to the evaluation: looking for them in every
field read whole cost more per request than it saved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from wafproxy.acl.engine import (
    evaluate,
    field_values,
    long_slot_hits,
    may_skip_rules,
    one_long_value,
)
from wafproxy.acl.model import EvalContext, Verdict, WebAcl
from wafproxy.request import WafRequest

if TYPE_CHECKING:
    from wafproxy.acl.ipset import IpSet
    from wafproxy.acl.model import RateView

log = logging.getLogger("wafproxy.engine")


@dataclass(frozen=True)
class Job:
    """One request to evaluate, with what ``evaluate`` would be given for it."""

    acl: WebAcl
    request: WafRequest
    now: float = 0.0
    rate: RateView | None = None
    ip_sets: Mapping[str, IpSet] | None = None


Result = tuple[Verdict, float]
"""The verdict and the seconds spent on this request (its share of the scans included)."""


def evaluate_together(jobs: Sequence[Job]) -> list[Result]:
    """``evaluate`` of each job, in order. Never raises."""
    contexts = [_context(job) for job in jobs]
    spent = [0.0] * len(jobs)
    if len(jobs) > 1:
        try:
            items = [(job.request, ctx) for job, ctx in zip(jobs, contexts, strict=True)]
            spent = scan_bodies(items)
        except Exception:  # a bug here must not cost a verdict: evaluate from scratch
            log.debug("scanning together failed", exc_info=True)
            contexts = [_context(job) for job in jobs]
    results: list[Result] = []
    for job, ctx, scanned in zip(jobs, contexts, spent, strict=True):
        begin = perf_counter()
        verdict = evaluate(job.acl, job.request, ctx=ctx)
        results.append((verdict, scanned + perf_counter() - begin))
    return results


def _context(job: Job) -> EvalContext | None:
    """What ``evaluate`` would make for the job; None for a web ACL without rules (its
    default verdict needs none)."""
    acl = job.acl
    if not acl.rules:
        return None
    return EvalContext(acl=acl, geo=acl.geo, now=job.now, rate=job.rate, ip_sets=job.ip_sets or {})


def scan_bodies(items: Sequence[tuple[WafRequest, EvalContext | None]]) -> list[float]:
    """Each scan group of the whole body, for every request whose evaluation would scan its
    body and whose body is too long to be remembered, one group at a time; the hits go to
    the request's context. The seconds spent per request (each group's scans timed together
    and shared evenly)."""
    spent = [0.0] * len(items)
    by_acl: dict[int, list[tuple[int, WafRequest, EvalContext]]] = {}
    for i, (req, ctx) in enumerate(items):
        if ctx is not None and ctx.acl.body_scans and may_skip_rules(req, ctx):
            by_acl.setdefault(id(ctx.acl), []).append((i, req, ctx))
    for members in by_acl.values():
        for scans in members[0][2].acl.body_scans:
            long = [
                (i, req, ctx, raw[0])
                for i, req, ctx in members
                if one_long_value(raw := field_values(req, ctx, scans.field, (), ()))
            ]
            for slot in scans.slots if long else ():
                begin = perf_counter()
                for _, req, ctx, value in long:
                    long_slot_hits(req, ctx, slot, value)
                share = (perf_counter() - begin) / len(long)  # one clock read per scan group
                for i, *_ in long:
                    spent[i] += share
    return spent
