"""Every Prometheus metric of the proxy, built against an injected CollectorRegistry.

Labels come only from config-bounded sets (route, ACL and rule names) or from the fixed sets
below; never from request data (IPs, paths), so a hostile client cannot blow up cardinality.

Multiprocess mode (``--workers N``): when ``PROMETHEUS_MULTIPROC_DIR`` is set *before*
prometheus_client is first imported, every metric writes to a per-process mmap file in that
directory and :meth:`Metrics.exposition` sums all processes' files. The directory must be emptied
before the workers start (:func:`clear_multiprocess_dir`), and the parent should call
:func:`mark_process_dead` when a worker exits so its in-flight gauge stops counting. Create one
``Metrics`` per process: two instances in one process share the same files.

Per-request updates go through :meth:`Metrics.child`, which returns a *pending* value: plain
numbers on the event loop's thread, moved into prometheus_client's values by :meth:`Metrics.flush`.
Why: each prometheus_client update takes a lock (and in multiprocess mode writes an mmap), ~1 µs
a call and six calls a request. A read of the registry flushes first (a collector registered
ahead of the metrics), so a scrape of one process is exact; in multiprocess mode each process
also flushes every ``FLUSH_SECONDS``, which is how stale another worker's share of a scrape can be.
"""

from __future__ import annotations

import asyncio
import logging
import os
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from wafproxy.acl.model import Verdict

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format: what generate_latest writes and every Prometheus version reads."""

WAF_BUCKETS = (
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
)  # fmt: skip
UPSTREAM_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

UPSTREAM_ERROR_KINDS = ("connect", "timeout", "reset", "protocol")
BODY_OVERSIZE_KINDS = ("inspect", "reject")
RELOAD_RESULTS = ("success", "error")
BAD_REQUEST_REASONS = ("malformed", "header_too_large", "timeout", "body_too_large")
FLUSH_SECONDS = 1.0

log = logging.getLogger(__name__)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def multiprocess_dir() -> Path:
    return Path(os.environ[MULTIPROC_ENV])


def clear_multiprocess_dir() -> None:
    """Remove stale per-process files left by a previous run (call before forking workers)."""
    for db in multiprocess_dir().glob("*.db"):
        db.unlink(missing_ok=True)


def mark_process_dead(pid: int) -> None:
    """A worker exited: drop its live gauge values (in-flight requests) from the aggregate."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid, str(multiprocess_dir()))  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if multiprocess_enabled():
            _check_multiprocess_setup()
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Pending] = {}
        reg = self.registry
        reg.register(_FlushOnCollect(self))
        self.requests = Counter(
            "wafproxy_requests",
            "Requests by final WAF action.",
            ["route", "acl", "action"],
            registry=reg,
        )
        self.rule_matches = Counter(
            "wafproxy_rule_matches",
            "Rules that matched (count rules included).",
            ["acl", "rule", "action"],
            registry=reg,
        )
        self.waf_seconds = Histogram(
            "wafproxy_waf_evaluation_seconds",
            "Time spent evaluating the web ACL.",
            ["acl"],
            buckets=WAF_BUCKETS,
            registry=reg,
        )
        self.upstream_seconds = Histogram(
            "wafproxy_upstream_seconds",
            "Time from forwarding to upstream response headers.",
            ["route"],
            buckets=UPSTREAM_BUCKETS,
            registry=reg,
        )
        self.upstream_errors = Counter(
            "wafproxy_upstream_errors",
            "Failed upstream exchanges by kind.",
            ["route", "kind"],
            registry=reg,
        )
        self.in_flight = Gauge(
            "wafproxy_in_flight_requests",
            "Requests being handled now.",
            ["route"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.body_oversize = Counter(
            "wafproxy_body_oversize",
            "Bodies over inspect_body_bytes (inspect) or max_body_bytes (reject, answered 413).",
            ["route", "kind"],
            registry=reg,
        )
        self.config_reloads = Counter(
            "wafproxy_config_reloads", "Config reloads by result.", ["result"], registry=reg
        )
        self.evaluation_errors = Counter(
            "wafproxy_evaluation_errors",
            "Rule evaluation errors (on_error decided).",
            ["acl"],
            registry=reg,
        )
        self.decision_log_dropped = Counter(
            "wafproxy_decision_log_dropped",
            "Decision log lines dropped (queue full or write failed).",
            registry=reg,
        )
        self.bad_requests = Counter(
            "wafproxy_bad_requests",
            "Requests refused before the WAF by reason.",
            ["reason"],
            registry=reg,
        )
        self._prime_fixed_labels()

    def _prime_fixed_labels(self) -> None:
        """Export zeros for the fixed label sets so rate() and alerts work from the start."""
        for result in RELOAD_RESULTS:
            self.config_reloads.labels(result=result)
        for reason in BAD_REQUEST_REASONS:
            self.bad_requests.labels(reason=reason)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)`` as a pending value (see the module's docstring),
        remembered: the label sets here are bounded by the config."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = _pending(metric.labels(*labels))
        return found

    def flush(self) -> None:
        """Move every pending update into prometheus_client's values. Call it on the thread
        that updates (the event loop's)."""
        for pending in list(self._children.values()):
            pending.flush()

    async def flush_periodically(self, seconds: float = FLUSH_SECONDS) -> None:
        """Until cancelled; flushes once more on the way out."""
        try:
            while True:
                await asyncio.sleep(seconds)
                self.flush()
        finally:
            self.flush()

    def observe_verdict(self, route: str, acl: str, verdict: Verdict, seconds: float) -> None:
        """``_value_``: an Enum's ``value`` is a property in Python code, read every request."""
        self.child(self.requests, route, acl, verdict.action._value_).inc()
        for match in verdict.matches:
            self.child(self.rule_matches, acl, match.rule, match.action._value_).inc()
        self.child(self.waf_seconds, acl).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) for GET /metrics; all worker processes summed in multiprocess
        mode. In multiprocess mode this reads every worker's file: run it off the event loop."""
        if not multiprocess_enabled():
            return generate_latest(self.registry), CONTENT_TYPE
        aggregate = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregate, path=str(multiprocess_dir()))  # type: ignore[no-untyped-call]
        return generate_latest(aggregate), CONTENT_TYPE


class Pending(Protocol):
    def flush(self) -> None: ...


class _PendingCount:
    """A counter's or gauge's change since the last flush."""

    __slots__ = ("_delta", "_target")

    def __init__(self, target: Any) -> None:
        self._target = target
        self._delta = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self._delta += amount

    def dec(self, amount: float = 1.0) -> None:
        self._delta -= amount

    def flush(self) -> None:
        delta, self._delta = self._delta, 0.0
        if delta:
            self._target.inc(delta)


class _PendingObservations:
    """A histogram's observations since the last flush, counted per bucket as prometheus_client
    counts them (the first upper bound not below the amount)."""

    __slots__ = ("_bounds", "_counts", "_sum", "_target")

    def __init__(self, target: Any) -> None:
        self._target = target
        self._bounds: list[float] = list(target._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def flush(self) -> None:
        counts, self._counts = self._counts, [0] * len(self._bounds)
        total, self._sum = self._sum, 0.0
        if not any(counts):
            return
        self._target._sum.inc(total)
        for bucket, count in zip(self._target._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


def _pending(target: Any) -> _PendingCount | _PendingObservations:
    if isinstance(target, Histogram):
        return _PendingObservations(target)
    return _PendingCount(target)


class _FlushOnCollect:
    """Registered ahead of the metrics: whoever reads the registry sees every pending update."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        self._metrics.flush()
        return ()


def _check_multiprocess_setup() -> None:
    path = multiprocess_dir()
    if not path.is_dir():
        raise ValueError(f"{MULTIPROC_ENV}={path} is not a directory")
    if values.ValueClass is values.MutexValue:
        log.warning(
            "%s was set after prometheus_client was imported: this process's metrics stay "
            "in memory and are missing from the aggregate; set it before starting Python",
            MULTIPROC_ENV,
        )
