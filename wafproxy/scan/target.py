"""What a check is given: one endpoint of one scanned resource, and the tools to probe it.

The same upstream is scanned twice when the proxy is in front of it: ``direct`` (the upstream's
own address) and ``via_proxy`` (the proxy's listener, with a Host header that selects the
route). Findings carry the upstream as their resource either way, so the two runs fold into one
finding that tells whether the proxy already hides the weakness.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wafproxy.findings.model import Finding
from wafproxy.scan.client import Probe, ScanClient
from wafproxy.scan.ports import PortSpec

MAX_SEEN = 200


class Via(enum.Enum):
    DIRECT = "direct"
    PROXY = "via_proxy"


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: ``base_url`` (scheme://host:port), the path prefix the checks work
    under, and the Host header to send (None: the URL's)."""

    base_url: str
    base_path: str = "/"
    host_header: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass
class ScanTarget:
    resource: str
    endpoint: Endpoint
    client: ScanClient
    via: Via = Via.DIRECT
    ports: tuple[PortSpec, ...] = ()
    skip_ports: frozenset[int] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)
    """Check options: ``advisories`` (AdvisoryDB), ``tls_ca_file``, …"""
    _cache: dict[str, Probe | None] = field(default_factory=dict)
    _seen: list[Probe] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    """Random per scan: nonexistent paths for soft-404 baselines, canary markers."""

    @property
    def via_proxy(self) -> bool:
        return self.via is Via.PROXY

    def url(self, path: str) -> str:
        """``path`` (relative to the scan's base path, may carry a query) as an absolute URL."""
        base = self.endpoint.base_path.rstrip("/")
        return self.endpoint.base_url.rstrip("/") + base + "/" + path.lstrip("/")

    def path_of(self, path: str) -> str:
        return self.endpoint.base_path.rstrip("/") + "/" + path.lstrip("/")

    async def fetch(
        self, path: str, method: str = "GET", headers: Sequence[tuple[str, str]] = ()
    ) -> Probe | None:
        sent = list(headers)
        if self.endpoint.host_header is not None:
            sent.append(("Host", self.endpoint.host_header))
        probe = await self.client.fetch(method, self.url(path), sent)
        if probe is not None and len(self._seen) < MAX_SEEN:
            self._seen.append(probe)
        return probe

    def cached_probes(self) -> list[Probe]:
        """Every response this scan received so far (the first MAX_SEEN): later checks look
        for versions and cookies in what earlier checks fetched."""
        return list(self._seen)

    async def get(self, path: str) -> Probe | None:
        """GET, memoised for the scan: the home page is read by several checks, sent once."""
        if path not in self._cache:
            self._cache[path] = await self.fetch(path)
        return self._cache[path]

    async def home(self) -> Probe | None:
        """The base page, following up to three same-origin redirects."""
        path = "/"
        for _ in range(4):
            probe = await self.get(path)
            if probe is None or probe.status not in (301, 302, 303, 307, 308):
                return probe
            location = probe.header("Location") or ""
            parts = urlsplit(location)
            if parts.netloc and parts.netloc != urlsplit(probe.url).netloc:
                return probe
            next_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            base = self.endpoint.base_path.rstrip("/")
            path = next_path[len(base) :] if base and next_path.startswith(base) else next_path
        return probe

    def finding(
        self,
        *,
        check: str,
        type: str,
        subject: str,
        title: str,
        description: str,
        severity: float,
        remediation: str,
        evidence: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> Finding:
        return Finding.new(
            type=type,
            title=title,
            description=description,
            severity=severity,
            resource=self.resource,
            subject=subject,
            source="scan",
            check=check,
            evidence=evidence,
            remediation=remediation,
            details=details,
        )
