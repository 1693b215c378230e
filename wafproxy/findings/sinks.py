"""Where findings go besides the store: a JSON lines file, a webhook, Prometheus.

Sinks are told about *notable* changes only (a new finding, a reopened one, a closed one, a
change of severity band), not every repeat: a path probe seen ten thousand times is one
webhook call, not ten thousand. A sink that fails logs and counts; it never raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from wafproxy.findings.model import Finding, Severity

log = logging.getLogger("wafproxy.findings")
OTHER = "other"
MAX_LABEL_VALUES = 64


class Sink(Protocol):
    name: str
    min_severity: Severity

    async def emit(self, findings: Sequence[Finding]) -> None: ...

    async def close(self) -> None: ...


class JsonLinesSink:
    """One JSON object per line (the finding's ``to_dict``), appended; the file is opened per
    batch so log rotation by rename needs no signal."""

    name = "file"

    def __init__(self, path: Path, min_severity: Severity = Severity.INFORMATIONAL) -> None:
        self.path = path
        self.min_severity = min_severity

    async def emit(self, findings: Sequence[Finding]) -> None:
        lines = "".join(json.dumps(f.to_dict(), sort_keys=True) + "\n" for f in findings)
        if lines:
            await asyncio.to_thread(self._append, lines)

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(text)

    async def close(self) -> None:
        return None


class WebhookError(Exception):
    pass


class WebhookSink:
    """POST ``{"findings": [...]}`` as JSON. Connection errors, timeouts, 429 and 5xx are
    retried ``retries`` times with exponential backoff and jitter; other statuses are final."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        min_severity: Severity = Severity.INFORMATIONAL,
    ) -> None:
        self.url = url
        self.headers = tuple(headers)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.min_severity = min_severity
        self.attempts = 0
        self._session: aiohttp.ClientSession | None = None

    async def emit(self, findings: Sequence[Finding]) -> None:
        if not findings:
            return
        body = json.dumps({"findings": [f.to_dict() for f in findings]}).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt))
            self.attempts += 1
            if await self._post(body):
                return
        raise WebhookError(f"webhook {self.url}: gave up after {self.retries + 1} attempts")

    def _delay(self, attempt: int) -> float:
        base: float = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)

    async def _post(self, body: bytes) -> bool:
        """True when delivered; False when worth retrying. Raises WebhookError when final."""
        session = self._client()
        headers = {"Content-Type": "application/json", **dict(self.headers)}
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                if response.status < 300:
                    return True
                if response.status == 429 or response.status >= 500:
                    return False
                raise WebhookError(f"webhook {self.url}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("webhook %s: %s", self.url, exc)
            return False

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class LabelBound:
    """Admits the first ``limit`` distinct values of a label, then maps the rest to ``other``:
    finding types and check names come from registries, but a bound costs nothing."""

    def __init__(self, known: Sequence[str] = (), limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.values: set[str] = set(known)

    def __call__(self, value: str) -> str:
        if value in self.values:
            return value
        if len(self.values) < self.limit:
            self.values.add(value)
            return value
        return OTHER


class FindingsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.observed = Counter(
            "wafproxy_findings_observed",
            "Finding observations (repeats included) by type and severity.",
            ["type", "severity"],
            registry=registry,
        )
        self.active = Gauge(
            "wafproxy_findings_active",
            "Active findings by check (or detector) and severity.",
            ["check", "severity"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.sink_errors = Counter(
            "wafproxy_findings_sink_errors",
            "Findings batches a sink failed to deliver.",
            ["sink"],
            registry=registry,
        )
        self.dropped = Counter(
            "wafproxy_findings_dropped",
            "Findings dropped because the findings queue was full.",
            registry=registry,
        )
        self.types = LabelBound()
        self.checks = LabelBound()
        self._exported: set[tuple[str, str]] = set()
        for name in ("file", "webhook"):
            self.sink_errors.labels(sink=name)

    def observe(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.observed.labels(self.types(finding.type), finding.band.value).inc()

    def set_active(self, counts: dict[tuple[str, Severity], int]) -> None:
        """Replace the gauge values; label pairs that dropped to zero are set to zero."""
        current: dict[tuple[str, str], int] = {}
        for (check, band), n in counts.items():
            key = (self.checks(check or "unknown"), band.value)
            current[key] = current.get(key, 0) + n
        for key in self._exported | set(current):
            self.active.labels(*key).set(current.get(key, 0))
        self._exported |= set(current)
