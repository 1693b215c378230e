"""Per-key sums per interval judged against a learned baseline (request flood, response
volume, site traffic volume share this).

Each key's finished intervals feed its own EWMA. The interval in progress is judged as it
grows, so a flood is seen within the interval it starts in, against a limit fixed when the
interval opened (one comparison per observation). A key whose baseline is still warming up is
judged against the population of all keys' intervals (what a typical client of this site does
in an interval) once that is warm, else against an absolute ceiling: floods mostly come from
addresses never seen before, so "no baseline, no judgement" would be blind where it matters.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol

from wafproxy.detect.baseline import Ewma, IntervalSeries, alpha_for_span
from wafproxy.detect.bounded import BoundedTable

POPULATION_SPAN = 2000.0
"""Samples (finished key-intervals, all keys) the population baseline averages over."""
POPULATION_WARMUP = 200
FORGET_AFTER = 86_400.0
"""A key idle this long starts over (its baseline says little about it any more)."""


class Basis(enum.Enum):
    OWN = "own baseline"
    POPULATION = "site-wide per-client baseline"
    CEILING = "absolute ceiling"


@dataclass(frozen=True)
class RateRule:
    interval: float
    span: float
    warmup: int
    sigma: float
    min_ratio: float
    minimum: float
    """Never alarm below this sum per interval."""
    ceiling: float
    """The limit for a key with no warm baseline and no warm population (0: never judge)."""
    fill_gaps: int = 0
    """Empty intervals between two observations counted as zero samples (at most)."""
    population: bool = True


class RateSettings(Protocol):
    """The learning settings every rate detector has (its ``detect:`` options)."""

    @property
    def interval(self) -> float: ...
    @property
    def span(self) -> float: ...
    @property
    def warmup(self) -> int: ...
    @property
    def sigma(self) -> float: ...
    @property
    def min_ratio(self) -> float: ...


def rate_rule(
    settings: RateSettings,
    *,
    minimum: float,
    ceiling: float,
    fill_gaps: int = 0,
    population: bool = True,
) -> RateRule:
    return RateRule(
        interval=settings.interval,
        span=settings.span,
        warmup=settings.warmup,
        sigma=settings.sigma,
        min_ratio=settings.min_ratio,
        minimum=minimum,
        ceiling=ceiling,
        fill_gaps=fill_gaps,
        population=population,
    )


class RateState(IntervalSeries):
    __slots__ = ("basis", "first_id", "limit", "quiet_until")

    def __init__(self, bucket: int) -> None:
        super().__init__(bucket)
        self.limit = math.inf
        self.basis = Basis.CEILING
        self.first_id = ""
        self.quiet_until = 0.0


@dataclass(frozen=True)
class Spike:
    """An interval sum that crossed its key's limit."""

    key: str
    value: float
    limit: float
    basis: Basis
    mean: float
    std: float
    samples: int
    first_id: str
    interval_start: float


class KeyedRates:
    def __init__(self, rule: RateRule, max_keys: int, cooldown: float) -> None:
        self.rule = rule
        self.alpha = alpha_for_span(rule.span)
        self.cooldown = cooldown
        self.table: BoundedTable[RateState] = BoundedTable(max_keys, FORGET_AFTER)
        self.population = Ewma()
        self.population_alpha = alpha_for_span(POPULATION_SPAN)

    def add(
        self, key: str, now: float, amount: float, request_id: str
    ) -> tuple[RateState, Spike | None]:
        bucket = int(now // self.rule.interval)
        state = self.table.get(key, now)
        if state is None:
            state = self.table.put(key, RateState(bucket), now)
            self._open(state, request_id)
        elif bucket > state.bucket:
            self._close(state, bucket)
            self._open(state, request_id)
        state.count += amount
        if state.count < state.limit or now < state.quiet_until:
            return state, None
        state.quiet_until = now + self.cooldown
        return state, self._spike(key, state)

    def _close(self, state: RateState, bucket: int) -> None:
        finished = min(state.count, state.limit)
        state.advance(bucket, self.alpha, self.rule.fill_gaps, state.limit)
        if self.rule.population:
            self.population.add(finished, self.population_alpha)

    def _open(self, state: RateState, request_id: str) -> None:
        rule = self.rule
        state.first_id = request_id
        if state.n >= rule.warmup:
            state.basis = Basis.OWN
            state.limit = state.threshold(rule.sigma, rule.min_ratio, rule.minimum)
        elif rule.population and self.population.n >= POPULATION_WARMUP:
            state.basis = Basis.POPULATION
            state.limit = self.population.threshold(rule.sigma, rule.min_ratio, rule.minimum)
        else:
            state.basis = Basis.CEILING
            state.limit = max(rule.ceiling, rule.minimum) if rule.ceiling > 0 else math.inf

    def _spike(self, key: str, state: RateState) -> Spike:
        base = state if state.basis is Basis.OWN else self.population
        return Spike(
            key=key,
            value=state.count,
            limit=state.limit,
            basis=state.basis,
            mean=base.mean if state.basis is not Basis.CEILING else 0.0,
            std=base.std if state.basis is not Basis.CEILING else 0.0,
            samples=base.n if state.basis is not Basis.CEILING else 0,
            first_id=state.first_id,
            interval_start=state.bucket * self.rule.interval,
        )

    def __len__(self) -> int:
        return len(self.table)
