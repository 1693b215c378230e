"""The protocol factory for the listener, and the sweep of its connections' deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wafproxy.http1.connection import Connection, Request, plain_error
from wafproxy.http1.reply import Reply
from wafproxy.request import Header


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = 16 * 1024
    """Request line plus every header name and value (a bigger head gets a 431)."""
    max_headers: int = 100
    header_timeout: float = 10.0
    """Seconds from a connection or a request's first byte until its head has arrived."""
    keepalive_timeout: float = 75.0
    """Seconds a connection may sit idle between requests."""
    body_timeout: float = 60.0
    """Seconds a handler reading the request body may wait for its next bytes (BodyTimeout)."""
    body_high_water: int = 256 * 1024
    """Body bytes buffered before reading from the client pauses."""
    linger_timeout: float = 5.0
    """Seconds to read and drop a body the handler answered without reading, so the client
    can read the answer (closing with its bytes unread would reset the connection)."""


Handler = Callable[[Request, Reply], Awaitable[None]]
ErrorHook = Callable[[str], None]
ErrorAnswer = Callable[[int], tuple[list[Header], bytes]]
"""Headers and body of the server's own answer with a status (400, 431, 500)."""


class Http1Server:
    """The protocol factory for ``loop.create_server``: one ``Connection`` per client, and one
    sweep for every connection's deadlines."""

    def __init__(
        self,
        handler: Handler,
        limits: ServerLimits,
        on_bad_request: ErrorHook = lambda reason: None,
        error_answer: ErrorAnswer = plain_error,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.on_bad_request = on_bad_request
        self.error_answer = error_answer
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self._period = min(
            1.0, limits.header_timeout / 4, limits.keepalive_timeout / 4, limits.body_timeout / 4
        )
        self._sweeper: asyncio.TimerHandle | None = self.loop.call_later(self._period, self._sweep)

    def __call__(self) -> Connection:
        return Connection(self)

    def _sweep(self) -> None:
        self._sweeper = self.loop.call_later(self._period, self._sweep)
        now = self.loop.time()
        for conn in list(self.connections):
            conn.check_deadlines(now)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections now, the others once their request is answered (at most
        ``timeout`` seconds later). A connection handed over (a WebSocket, say) ends now: it
        has no answer to finish."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            if conn.detached:
                conn.abort()
            elif conn.idle_since is not None:
                conn.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.connections:
                    await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
