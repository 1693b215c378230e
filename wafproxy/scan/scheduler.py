"""Scheduled scans inside the running proxy.

Every ``interval`` (plus or minus a random part of ``jitter``, so a fleet does not scan in
step), each upstream target used by a route is scanned directly and, when the proxy listens
in front of it, through the proxy with the route's Host and path prefix. The scan is a
background task with its own budget and rate limit: it shares nothing with requests but the
upstream pool's targets, and a failure is logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from wafproxy.config.runtime import BoundRoute, Runtime
from wafproxy.findings.service import FindingsService
from wafproxy.scan.config import ScanConfig
from wafproxy.scan.osv import AdvisoryDB, default_db_dir
from wafproxy.scan.report import Report
from wafproxy.scan.runner import ScanPlan, ScanResult, ScanSettings, run_scan
from wafproxy.scan.target import Endpoint

log = logging.getLogger("wafproxy.scan")
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ScanMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("wafproxy_scan_runs", "Scans of one upstream target by result.",
                            ["result"], registry=registry)  # fmt: skip
        self.requests = Counter("wafproxy_scan_requests", "Requests sent by the scanner.",
                                registry=registry)  # fmt: skip
        self.last_success = Gauge(
            "wafproxy_scan_last_success_timestamp_seconds",
            "When the last scan round finished without errors.",
            multiprocess_mode="max",
            registry=registry,
        )
        for result in ("ok", "partial", "error"):
            self.runs.labels(result=result)


ProxyAddress = tuple[str, str, int]
"""(scheme, host, port) of the proxy's first listener."""


def plans_for(
    runtime: Runtime, proxy: ProxyAddress | None, skip: Sequence[int] = ()
) -> list[ScanPlan]:
    """One plan per upstream target used by a route; the first route to a target decides the
    Host header and path prefix of the scan through the proxy."""
    plans: dict[str, ScanPlan] = {}
    for bound in runtime.routes:
        for target in bound.upstream.targets:
            if target.url in plans:
                continue
            plans[target.url] = ScanPlan(
                resource=target.url,
                direct=Endpoint(target.url),
                proxy=_proxy_endpoint(bound, proxy) if proxy is not None else None,
                skip_ports=frozenset(skip),
            )
    return list(plans.values())


def _proxy_endpoint(bound: BoundRoute, proxy: ProxyAddress) -> Endpoint:
    scheme, host, port = proxy
    name = WILDCARD_HOSTS.get(host, host)
    shown = f"[{name}]" if ":" in name else name
    route_host = bound.route.host
    if route_host == "*":
        header = None
    elif route_host.startswith("*."):
        header = "wafproxy-scan" + route_host[1:]
    else:
        header = route_host
    return Endpoint(f"{scheme}://{shown}:{port}", bound.route.path_prefix, header)


class ScanScheduler:
    def __init__(
        self,
        runtime: Callable[[], Runtime],
        config: ScanConfig,
        service: FindingsService | None,
        *,
        proxy_address: Callable[[], ProxyAddress | None] = lambda: None,
        skip_ports: Callable[[], Sequence[int]] = tuple,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.service = service
        self.proxy_address = proxy_address
        self.skip_ports = skip_ports
        self.metrics = ScanMetrics(registry) if registry is not None else None
        self.last_report: Report | None = None
        self.advisories = AdvisoryDB()
        """The database the last round used (its virtual patches feed the HTML report)."""
        self.rounds = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _wait(self, first: bool) -> float:
        jitter = random.uniform(-self.config.jitter, self.config.jitter)
        if first:
            return self.config.initial_delay + abs(jitter)
        return max(1.0, self.config.interval + jitter)

    async def _loop(self) -> None:
        first = True
        while True:
            await asyncio.sleep(self._wait(first))
            first = False
            try:
                await self.run_once()
            except Exception:  # the loop must survive anything one round does
                log.exception("scheduled scan failed")
                if self.metrics is not None:
                    self.metrics.runs.labels("error").inc()

    async def run_once(self) -> Report:
        """Scan every upstream target now (one round at a time)."""
        async with self._lock:
            db = self.advisories = await asyncio.to_thread(AdvisoryDB.load, [self._db_dir()])
            address = self.proxy_address() if self.config.through_proxy else None
            plans = plans_for(self.runtime(), address, self.skip_ports())
            results: list[ScanResult] = []
            for plan in plans:
                result = await run_scan(plan, ScanSettings.of(self.config), db, self.service)
                results.append(result)
                self._count(result)
            self.last_report = Report(tuple(results))
            self.rounds += 1
            if self.metrics is not None and all(not r.errors for r in results):
                self.metrics.last_success.set(time.time())
            log.info("scan round %d: %d target(s), %d finding(s)", self.rounds, len(results),
                     sum(len(r.findings) for r in results))  # fmt: skip
            return self.last_report

    def _db_dir(self) -> Path:
        return self.config.advisory_db or default_db_dir()

    def _count(self, result: ScanResult) -> None:
        if self.metrics is None:
            return
        self.metrics.requests.inc(result.requests)
        self.metrics.runs.labels("partial" if result.errors else "ok").inc()
