"""FindingsService: the store, the sinks and the metrics behind one small async API.

``publish`` is for the scanner (a batch per scan, awaited); ``offer`` is for the detectors: a
``put_nowait`` into a bounded queue drained by a background task, so nothing on the request
path ever waits for SQLite or a webhook. A full queue drops and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry

from wafproxy.findings.config import FindingsConfig, StoreBackend
from wafproxy.findings.model import Finding, Status
from wafproxy.findings.sinks import FindingsMetrics, JsonLinesSink, Sink, WebhookSink
from wafproxy.findings.store import FindingQuery, FindingStore, Recorded, Store

log = logging.getLogger("wafproxy.findings")
QUEUE_SIZE = 10_000


class FindingsService:
    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink] = (),
        metrics: FindingsMetrics | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.store = store
        self.sinks = tuple(sinks)
        self.metrics = metrics
        self._queue: asyncio.Queue[Finding] | None = None
        self._queue_size = queue_size
        self._worker: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue(self._queue_size)
        self._worker = asyncio.ensure_future(self._drain())
        await self.refresh_gauges()

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._queue is not None and not self._queue.empty():
            pending = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
            await self.publish(pending)
        for sink in self.sinks:
            await sink.close()
        await asyncio.to_thread(self.store.close)

    # -- writing ---------------------------------------------------------------------------------
    def offer(self, findings: Iterable[Finding]) -> int:
        """Queue findings without waiting; returns how many were dropped (queue full or not
        started)."""
        dropped = 0
        for finding in findings:
            try:
                if self._queue is None:
                    raise asyncio.QueueFull
                self._queue.put_nowait(finding)
            except asyncio.QueueFull:
                dropped += 1
        if dropped and self.metrics is not None:
            self.metrics.dropped.inc(dropped)
        return dropped

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                await self.publish(batch)
            except Exception:  # the drain task must outlive one bad batch
                log.exception("recording %d findings failed", len(batch))

    async def publish(self, findings: Sequence[Finding]) -> Recorded:
        recorded = await asyncio.to_thread(self.store.record, list(findings))
        if self.metrics is not None:
            self.metrics.observe(findings)
        await self._notify([f for f in recorded.notable if f.status is not Status.ARCHIVED])
        await self.refresh_gauges()
        return recorded

    async def close_missing(
        self, source: str, resource: str, checks: Iterable[str], seen: Iterable[str]
    ) -> list[Finding]:
        closed = await asyncio.to_thread(
            self.store.close_missing, source, resource, list(checks), list(seen)
        )
        await self._notify(closed)
        await self.refresh_gauges()
        return closed

    async def set_status(self, finding_id: str, status: Status) -> Finding:
        changed = await asyncio.to_thread(self.store.set_status, finding_id, status)
        await self.refresh_gauges()
        return changed

    async def _notify(self, findings: Sequence[Finding]) -> None:
        for sink in self.sinks:
            wanted = [f for f in findings if f.band.rank >= sink.min_severity.rank]
            if not wanted:
                continue
            try:
                await sink.emit(wanted)
            except Exception as exc:  # a sink never fails the caller
                log.warning("findings sink %s failed: %s", sink.name, exc)
                if self.metrics is not None:
                    self.metrics.sink_errors.labels(sink.name).inc()

    async def refresh_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.set_active(await asyncio.to_thread(self.store.active_counts))

    # -- reading ---------------------------------------------------------------------------------
    async def query(self, q: FindingQuery) -> list[Finding]:
        return await asyncio.to_thread(self.store.query, q)

    async def count(self, q: FindingQuery) -> int:
        return await asyncio.to_thread(self.store.count, q)

    async def get(self, finding_id: str) -> Finding | None:
        return await asyncio.to_thread(self.store.get, finding_id)


def build_service(config: FindingsConfig, registry: CollectorRegistry | None) -> FindingsService:
    """Opens the store (creating the file). Call off the event loop."""
    store = open_store(config)
    sinks: list[Sink] = []
    if config.file is not None:
        sinks.append(JsonLinesSink(config.file, config.file_min_severity))
    if config.webhook is not None:
        w = config.webhook
        sinks.append(
            WebhookSink(
                w.url,
                headers=w.headers,
                timeout=w.timeout,
                retries=w.retries,
                backoff=w.backoff,
                min_severity=w.min_severity,
            )
        )
    metrics = FindingsMetrics(registry) if registry is not None else None
    return FindingsService(store, sinks, metrics)


def open_store(config: FindingsConfig) -> Store:
    """The configured store: the SQLite file, or the Redis shared by the fleet."""
    if config.backend is StoreBackend.REDIS:
        from wafproxy.findings.redis_store import RedisFindingStore

        return RedisFindingStore(
            config.redis,
            key_prefix=config.key_prefix,
            retention=config.retention,
            suppressions=config.suppressions,
        )
    return FindingStore(config.store, retention=config.retention, suppressions=config.suppressions)
