"""A request body as it arrives, read by the handler while the connection feeds it."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class BodyOwner(Protocol):
    """What a body needs of its connection."""

    loop: asyncio.AbstractEventLoop

    def buffered(self, change: int) -> None: ...

    def write(self, data: bytes) -> None: ...

    def waiting(self, body: Body | None) -> None:
        """``body``'s reader waits for bytes (None: it got them); the connection's sweep fails
        it with BodyTimeout if none come for ``body_timeout`` seconds."""


class MalformedBody(Exception):
    """The request body broke its framing (a bad chunk size, say): raised by its reader. A
    handler that lets it through gets the client a 400."""


class BodyTimeout(Exception):
    """No byte of the request body came for ``body_timeout`` seconds: raised by its reader."""


class Body:
    """A request body as it arrives. ``read`` and ``next_chunk`` wait for bytes; the connection
    pauses reading while more than the high water mark is buffered."""

    def __init__(self, conn: BodyOwner, expected: int | None, continue_first: bool = False) -> None:
        self._conn = conn
        self.expected = expected
        """The Content-Length, None for a chunked body."""
        self._continue = continue_first and expected != 0
        """``Expect: 100-continue``: the client waits for a 100 before it sends the body, which
        goes out on the first read (a request answered without reading its body gets none)."""
        self._chunks: deque[bytes] = deque()
        self._done = expected == 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def awaiting_continue(self) -> bool:
        """The client waits for a 100 (Expect: 100-continue) that was not sent yet."""
        return self._continue

    @property
    def complete(self) -> bool:
        """Every byte has arrived and been read."""
        return self._done and not self._chunks

    async def read(self, limit: int = -1) -> bytes:
        """Up to ``limit`` bytes (all when negative) or fewer at the end; b"" once consumed."""
        out = bytearray()
        while limit < 0 or len(out) < limit:
            data = await self._next(-1 if limit < 0 else limit - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    async def next_chunk(self) -> bytes:
        """The next bytes as they arrived; b"" at the end."""
        return await self._next(-1)

    async def _next(self, limit: int) -> bytes:
        if self._continue:
            self._continue = False
            self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            self._waiter = self._conn.loop.create_future()
            self._conn.waiting(self)
            try:
                await self._waiter
            finally:
                self._waiter = None
                self._conn.waiting(None)
        data = self._chunks.popleft()
        if 0 <= limit < len(data):
            self._chunks.appendleft(data[limit:])
            data = data[:limit]
        self._conn.buffered(-len(data))
        return data

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._conn.buffered(len(data))
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if not self._done:
            self._error = exc
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
