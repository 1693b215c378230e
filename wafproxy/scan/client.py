"""The scanner's only way out: an HTTP client and a TCP prober that enforce the safety rules.

- safe methods only: GET, HEAD, OPTIONS and TRACE (the four RFC 9110 §9.2.1 defines as safe;
  TRACE is sent by one check, to see whether the server echoes it);
- only hosts on the allow-list (the configured upstreams, the proxy's own listener, or a target
  named on the command line); redirects are never followed automatically;
- a request budget per scan (every HTTP request and TCP connect counts) and a rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from wafproxy import __version__

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_BODY = 256 * 1024
USER_AGENT = f"wafproxy-scan/{__version__}"
DEFAULT_HEADERS = (("User-Agent", USER_AGENT), ("Accept", "*/*"))


class BudgetExhausted(Exception):
    """The scan used its request budget; the checks still running stop here."""


class NotAllowed(Exception):
    """A request to a host outside the allow-list, or with an unsafe method: a bug in a check."""


@dataclass(frozen=True)
class Probe:
    """One HTTP exchange as the checks see it (body cut at MAX_BODY bytes)."""

    method: str
    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool = False

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for n, v in self.headers if n.lower() == low), None)

    def header_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def evidence(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"


@dataclass(frozen=True)
class TlsInfo:
    version: str
    cipher: str
    certificate: bytes | None
    """The peer's certificate, DER."""


class RateLimiter:
    """At most ``rate`` starts per second, spread evenly (no bursts at a slow upstream)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.exhausted = False

    def take(self) -> None:
        if self.used >= self.limit:
            self.exhausted = True
            raise BudgetExhausted
        self.used += 1


class ScanClient:
    """Shared by every check of one scan (one budget, one rate limit)."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        *,
        budget: int = 500,
        rate: float = 10.0,
        timeout: float = 10.0,
    ) -> None:
        self.allowed_hosts = frozenset(h.lower().strip("[]") for h in allowed_hosts)
        self.budget = Budget(budget)
        self.limiter = RateLimiter(rate)
        self.timeout = timeout
        self.errors = 0
        self._session: aiohttp.ClientSession | None = None

    def allowed(self, host: str) -> bool:
        return host.lower().strip("[]") in self.allowed_hosts

    def _check(self, method: str, url: str) -> None:
        if method not in SAFE_METHODS:
            raise NotAllowed(f"method {method} is not a safe method")
        host = urlsplit(url).hostname or ""
        if not self.allowed(host):
            raise NotAllowed(f"host {host!r} is not on the scan allow-list")

    async def fetch(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Probe | None:
        """The response, or None when the exchange failed (refused, reset, timed out).
        ``url`` is sent as given (already percent-encoded)."""
        self._check(method, url)
        self.budget.take()
        await self.limiter.wait()
        given = {name.lower() for name, _ in headers}
        defaults = [(n, v) for n, v in DEFAULT_HEADERS if n.lower() not in given]
        sent = [*defaults, *headers]
        try:
            async with self._client().request(
                method, URL(url, encoded=True), headers=sent, allow_redirects=False
            ) as response:
                body = await response.content.read(MAX_BODY)
                truncated = not response.content.at_eof()
                raw = tuple(
                    (n.decode("latin-1"), v.decode("latin-1")) for n, v in response.raw_headers
                )
                return Probe(method, url, response.status, raw, body, truncated)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            self.errors += 1
            return None

    async def tcp_connect(self, host: str, port: int, timeout: float = 1.5) -> bool:
        """True when something accepts a TCP connection on host:port (closed at once)."""
        if not self.allowed(host):
            raise NotAllowed(f"host {host!r} is not on the scan allow-list")
        self.budget.take()
        await self.limiter.wait()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def tls_handshake(
        self, host: str, port: int, context: ssl.SSLContext, server_hostname: str | None
    ) -> TlsInfo | None:
        """Handshake with ``context``: what was negotiated, or None when the handshake fails.
        Raises ssl.SSLCertVerificationError when the context verifies and verification fails."""
        if not self.allowed(host):
            raise NotAllowed(f"host {host!r} is not on the scan allow-list")
        self.budget.take()
        await self.limiter.wait()
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, ssl=context, server_hostname=server_hostname or host
                ),
                self.timeout,
            )
        except ssl.SSLCertVerificationError:
            raise
        except (OSError, TimeoutError, ssl.SSLError):
            return None
        obj = writer.get_extra_info("ssl_object")
        info = None
        if isinstance(obj, ssl.SSLObject):
            cipher = obj.cipher()
            info = TlsInfo(obj.version() or "", cipher[0] if cipher else "", obj.getpeercert(True))
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return info

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=False, limit=4),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
