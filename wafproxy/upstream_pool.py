"""The targets of one upstream: round robin with passive health, and the client TLS settings.

Requests go through the pool's own keep-alive connections (upstream_http, at most
``pool_size``); a WebSocket handshake opens a connection of its own (websocket.py).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from wafproxy.config.model import Target, Upstream
from wafproxy.upstream_http import ConnectionPool


@dataclass
class TargetHealth:
    target: Target
    fails: int = 0
    down_until: float = 0.0

    def up(self, now: float) -> bool:
        return self.down_until <= now


class UpstreamPool:
    """Round robin over targets; a target failing to connect ``max_fails`` times in a row is
    skipped for ``fail_timeout`` seconds (then tried again)."""

    def __init__(self, config: Upstream) -> None:
        self.config = config
        self.targets = [TargetHealth(t) for t in config.targets]
        self._next = 0
        self.tls = tls_context(config)
        self.connections = ConnectionPool(config.pool_size, config.connect_timeout, self.tls)

    def order(self, now: float) -> list[TargetHealth]:
        """Targets to try for one request: healthy ones in round-robin order, or all of them
        when none is healthy (better a try than a certain 502)."""
        start = self._next
        self._next = (self._next + 1) % len(self.targets)
        rotated = self.targets[start:] + self.targets[:start]
        healthy = [t for t in rotated if t.up(now)]
        return healthy or rotated

    def has_healthy_target(self, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        return any(t.up(moment) for t in self.targets)

    def failed(self, health: TargetHealth, now: float) -> None:
        health.fails += 1
        if health.fails >= self.config.max_fails:
            health.down_until = now + self.config.fail_timeout

    def succeeded(self, health: TargetHealth) -> None:
        health.fails = 0
        health.down_until = 0.0

    def adopt_health(self, old: UpstreamPool) -> None:
        """Keep what a reload did not change: the failure state of targets still listed."""
        known = {h.target: h for h in old.targets}
        for health in self.targets:
            if health.target in known:
                health.fails = known[health.target].fails
                health.down_until = known[health.target].down_until

    async def close(self) -> None:
        self.connections.close()


def tls_context(config: Upstream) -> ssl.SSLContext | None:
    """The client TLS settings for the upstream's https targets (None without any)."""
    if not any(t.scheme == "https" for t in config.targets):
        return None
    context = ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
