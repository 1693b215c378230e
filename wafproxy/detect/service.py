"""DetectService: observations in, findings and decisions out, off the request path.

The proxy hands every finished request over as an ``Observation`` with ``offer`` (a
``put_nowait`` into a bounded queue: a full queue drops and counts, the request never waits).
One consumer task runs every detector on each observation; a detector that raises is logged and
counted and the task carries on. Findings whose subject is a trusted address are dropped (and
trusted clients are not observed at all: GuardDuty's trusted IP lists work the same way);
the rest go to the remediation (an IP set decision) and then, with the decision in their
details, to ``FindingsService.offer``.

Workers: every worker process runs its own detect service and sees only the connections the
kernel gave it, so per-client windows and baselines count that worker's share of a client's
traffic (about 1/N of it); thresholds hold for one worker's view. Decisions are shared through
the state backend: with ``state.backend: memory`` other workers see a new IP set entry within
the memory backend's poll interval (0.25 s, SQLite data_version), with Redis within its poll
interval (0.25 s) on every host; the worker that decided enforces it on its very next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from wafproxy.acl.ipset import IpSet, build_ip_set
from wafproxy.acl.model import ActionKind, Verdict
from wafproxy.detect.config import DecisionAction, DetectConfig
from wafproxy.detect.detector import Detector, build_detectors
from wafproxy.detect.login import CLIENT_CLOSED, LoginRoutes, LoginWatch
from wafproxy.detect.observation import Observation
from wafproxy.detect.remediation import Decision, Remediator
from wafproxy.findings.model import Finding
from wafproxy.findings.service import FindingsService
from wafproxy.proxy_headers import header_value
from wafproxy.state import SharedState

if TYPE_CHECKING:
    from wafproxy.proxy import Exchange
    from wafproxy.upstream import Outcome

log = logging.getLogger("wafproxy.detect")
BATCH = 64
GATHER_SECONDS = 0.02
"""How long a drained consumer waits: decisions still land well within a second."""
"""Observations handled between two yields to the event loop (requests share the loop)."""
GAUGE_SECONDS = 1.0
OTHER = "other"
ACTION_NAMES = {kind: kind.value.upper() for kind in ActionKind}
Clock = Callable[[], float]


class DetectMetrics:
    def __init__(self, registry: CollectorRegistry, detectors: Sequence[str] = ()) -> None:
        self.observations = Counter(
            "wafproxy_detect_observations",
            "Observations the detectors processed.",
            registry=registry,
        )
        self.dropped = Counter(
            "wafproxy_detect_dropped",
            "Observations dropped because the detection queue was full.",
            registry=registry,
        )
        self.findings = Counter(
            "wafproxy_detect_findings",
            "Findings raised, by detector, type and severity.",
            ["detector", "type", "severity"],
            registry=registry,
        )
        self.errors = Counter(
            "wafproxy_detect_errors",
            "Detector calls that raised (a bug; the detector keeps running), and failures "
            "building an observation (detector 'edge').",
            ["detector"],
            registry=registry,
        )
        self.state_keys = Gauge(
            "wafproxy_detect_state_keys",
            "Per-key entries each detector holds (bounded by its max_keys).",
            ["detector"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.queue = Gauge(
            "wafproxy_detect_queue",
            "Observations waiting for the detectors.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.decisions = Counter(
            "wafproxy_detect_decisions",
            "Remediation decisions written to the detect IP sets, by action.",
            ["action"],
            registry=registry,
        )
        self.decision_errors = Counter(
            "wafproxy_detect_decision_errors",
            "Decisions that could not be written (the shared state was unavailable).",
            registry=registry,
        )
        for action in DecisionAction:
            self.decisions.labels(action.value)
        for name in detectors:
            self.errors.labels(name)
            self.state_keys.labels(name)


class DetectService:
    def __init__(
        self,
        detectors: Sequence[Detector],
        findings: FindingsService,
        *,
        queue_size: int = 10_000,
        trusted: IpSet | None = None,
        login_routes: LoginRoutes | None = None,
        remediator: Remediator | None = None,
        metrics: DetectMetrics | None = None,
    ) -> None:
        self.detectors = tuple(detectors)
        self.findings = findings
        self.queue_size = queue_size
        self.trusted = trusted if trusted is not None and trusted.size else None
        self.login_routes = login_routes if login_routes and login_routes.routes else None
        self.remediator = remediator
        self.metrics = metrics
        self.dropped = 0
        self.errors = 0
        self._queue: asyncio.Queue[Observation] | None = None
        self._task: asyncio.Task[None] | None = None
        self._gauges_at = 0.0
        self._edge_failed = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.ensure_future(self._consume())

    async def stop(self) -> None:
        """Stop the consumer, then handle what is still queued (findings before the findings
        service stops)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            batch = [queue.get_nowait() for _ in range(min(BATCH, queue.qsize()))]
            await self._handle(batch)

    async def idle(self) -> None:
        """Wait until every observation offered so far is handled (tests, benchmarks)."""
        if self._queue is not None:
            await self._queue.join()

    # -- the way in ------------------------------------------------------------------------------
    def offer(self, obs: Observation) -> bool:
        """Queue without waiting; False when dropped (queue full or not started)."""
        queue = self._queue
        try:
            if queue is None:
                raise asyncio.QueueFull
            queue.put_nowait(obs)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.dropped.inc()
            return False
        return True

    def login_watch(self, method: str, path: str) -> LoginWatch | None:
        routes = self.login_routes
        return None if routes is None else routes.watch(method, path)

    def observe_exchange(
        self,
        ex: Exchange,
        outcome: Outcome,
        watch: LoginWatch | None,
        latency: float,
        now: float,
    ) -> None:
        """The proxy's hook after a request finished. Never raises into the request path."""
        try:
            self.offer(observation_of(ex, outcome, watch, latency, now))
        except Exception:
            self.errors += 1
            if self.metrics is not None:
                self.metrics.errors.labels("edge").inc()
            if not self._edge_failed:  # once: a bug here would otherwise log every request
                self._edge_failed = True
                log.exception("detect: building an observation failed")

    # -- the consumer ----------------------------------------------------------------------------
    async def _consume(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._handle(batch)
            except Exception:  # the task must outlive anything one batch does
                log.exception("detect: handling %d observations failed", len(batch))
            finally:
                for _ in batch:
                    queue.task_done()
            # A drained queue: let observations gather for a moment. Detectors run over a
            # batch at a time then, instead of between every two requests, where their tables
            # and code would push the request path's out of the CPU caches.
            await asyncio.sleep(GATHER_SECONDS if len(batch) < BATCH else 0)

    async def _handle(self, batch: Sequence[Observation]) -> None:
        found = self.run_detectors(batch)
        if self.metrics is not None:
            self.metrics.observations.inc(len(batch))
        for finding in found:
            decided = await self._remediate(finding)
            self.findings.offer([with_decision(finding, decided)])
        self._refresh_gauges()

    def run_detectors(self, batch: Sequence[Observation]) -> list[Finding]:
        """Every detector on every observation of the batch; trusted clients skipped and
        findings about trusted addresses dropped."""
        trusted = self.trusted
        out: list[Finding] = []
        for obs in batch:
            if trusted is not None and obs.client_ip in trusted:
                continue
            for detector in self.detectors:
                try:
                    for finding in detector.observe(obs):
                        if trusted is None or finding.subject not in trusted:
                            out.append(finding)
                            self._count(detector, finding)
                except Exception:
                    self._detector_failed(detector)
        return out

    def _count(self, detector: Detector, finding: Finding) -> None:
        if self.metrics is not None:
            kind = finding.type if finding.type in detector.finding_types else OTHER
            self.metrics.findings.labels(detector.name, kind, finding.band.value).inc()

    def _detector_failed(self, detector: Detector) -> None:
        self.errors += 1
        if self.metrics is not None:
            self.metrics.errors.labels(detector.name).inc()
        log.exception("detect: detector %s failed", detector.name)

    async def _remediate(self, finding: Finding) -> Decision | None:
        if self.remediator is None:
            return None
        try:
            decision = await self.remediator.apply(finding, finding.last_seen)
        except Exception as exc:
            log.warning("detect: decision for finding %s failed: %s", finding.id, exc)
            if self.metrics is not None:
                self.metrics.decision_errors.inc()
            return None
        if decision is not None and self.metrics is not None:
            self.metrics.decisions.labels(decision.action.value).inc()
        return decision

    def _refresh_gauges(self) -> None:
        moment = time.monotonic()
        if self.metrics is None or moment - self._gauges_at < GAUGE_SECONDS:
            return
        self._gauges_at = moment
        for detector in self.detectors:
            with contextlib.suppress(Exception):
                self.metrics.state_keys.labels(detector.name).set(detector.state_keys())
        self.metrics.queue.set(self._queue.qsize() if self._queue is not None else 0)


def with_decision(finding: Finding, decision: Decision | None) -> Finding:
    if decision is None:
        return finding
    details: dict[str, Any] = dict(finding.details)
    details["decision"] = {
        "action": decision.action.value,
        "ip_set": decision.set_name,
        "address": decision.address,
        "ttl": decision.ttl,
        "expires": finding.last_seen + decision.ttl,
        "repeat": decision.repeat,
    }
    return replace(finding, details=details)


# -- observations ----------------------------------------------------------------------------------
def observation_of(
    ex: Exchange,
    outcome: Outcome,
    watch: LoginWatch | None,
    latency: float,
    now: float,
) -> Observation:
    wreq, verdict = ex.wreq, ex.verdict
    status = CLIENT_CLOSED if outcome.client_gone else outcome.status
    action, rule, labels = _judged(verdict, status)
    obs = Observation(
        time=now,
        request_id=ex.request_id,
        client_ip=wreq.client_ip if wreq is not None else ex.request.peer,
        method=ex.request.method,
        host=ex.host,
        route=ex.route,
        path=wreq.uri_path if wreq is not None else ex.target.partition("?")[0],
        status=status,
        bytes_in=wreq.body_size if wreq is not None else 0,
        bytes_out=outcome.bytes_out,
        latency=latency,
        user_agent=header_value(ex.headers, "user-agent"),
        action=action,
        terminating_rule=rule,
        labels=labels,
    )
    if watch is None:
        return obs
    return replace(
        obs,
        username=watch.username(wreq),
        login_failed=watch.failed(status, outcome.location, blocked=action == "BLOCK"),
    )


def _judged(verdict: Verdict | None, status: int) -> tuple[str, str, tuple[str, ...]]:
    """(action, terminating rule, labels); no verdict: the body could not be read (refused
    before the web ACL ran) or the client went away while it was being read."""
    if verdict is not None:
        return ACTION_NAMES[verdict.action], verdict.terminating_rule, verdict.labels
    if status == CLIENT_CLOSED:
        return "ALLOW", "", ()
    return "BLOCK", "wafproxy:bad_request", ()


# -- building --------------------------------------------------------------------------------------
def trusted_set(config: DetectConfig) -> IpSet:
    return build_ip_set("detect.trusted_ips", [str(n) for n in config.trusted_ips])


def build_detect_service(
    config: DetectConfig,
    findings: FindingsService,
    state: SharedState | None,
    registry: CollectorRegistry | None,
    detectors: Sequence[Detector] | None = None,
) -> DetectService:
    """``detectors``: None builds the configured ones (reading threat-list files: call off the
    event loop)."""
    if detectors is None:
        detectors = build_detectors(config.detectors, config.base)
    trusted = trusted_set(config)
    remediation = config.remediation
    remediator = None
    if remediation.enabled and state is not None:
        remediator = Remediator(remediation, state, trusted)
    names = [d.name for d in detectors]
    return DetectService(
        detectors,
        findings,
        queue_size=config.queue_size,
        trusted=trusted,
        login_routes=LoginRoutes(config.login_routes),
        remediator=remediator,
        metrics=DetectMetrics(registry, names) if registry is not None else None,
    )
