"""A lean HTTP/1.1 server connection: llhttp (httptools) parses, one task per connection
serves its requests in order, a ``Reply`` writes the answer.

Why: behind aiohttp's server the proxy's own edge costs about as much per request as the whole
bare proxy it is measured against. On a plain protocol with llhttp a hello-world answer costs a
quarter of what it costs on aiohttp's low-level server, and a proxy hop with wafproxy's upstream
client half of wafproxy's (bench/RESULTS.md, 2026-11-30 05:50). This module is that protocol with
what a public listener needs: limits on the request head (431), a deadline for the head and an
idle limit between requests (one sweep per server, not a timer per request), 400 for what does
not parse, bodies with bounded buffering (reading pauses above ``body_high_water``), pipelined
requests answered in order, and upgrades handed over with their transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

log = logging.getLogger("wafproxy")

Header = tuple[str, str]
MAX_PIPELINED = 16
"""Parsed requests waiting behind the one being served before reading pauses."""


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = 16 * 1024
    """Request line plus every header name and value (a bigger head gets a 431)."""
    max_headers: int = 100
    header_timeout: float = 10.0
    """Seconds from a connection or a request's first byte until its head has arrived."""
    keepalive_timeout: float = 75.0
    """Seconds a connection may sit idle between requests."""
    body_high_water: int = 256 * 1024
    """Body bytes buffered before reading from the client pauses."""


class _HeadTooLarge(Exception):
    pass


class MalformedBody(Exception):
    """The request body broke its framing (a bad chunk size, say): raised by its reader. A
    handler that lets it through gets the client a 400."""


class Body:
    """A request body as it arrives. ``read`` and ``chunks`` wait for bytes; the connection
    pauses reading while more than the high water mark is buffered."""

    def __init__(
        self, conn: Connection, expected: int | None, continue_first: bool = False
    ) -> None:
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

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self._next(-1):
            yield data

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
            try:
                await self._waiter
            finally:
                self._waiter = None
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


@dataclass(eq=False)
class Request:
    method: str
    target: str
    """The request-target as sent (path and query, still percent-encoded)."""
    version: str
    """"HTTP/1.1" or "HTTP/1.0"."""
    raw_headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    upgrade: bool
    peer: str
    scheme: str
    """"https" on a TLS listener, else "http"."""
    body: Body


class Reply:
    """The answer to one request: ``send`` a whole response, or ``start`` / ``write`` / ``end``
    a streamed one (Content-Length when given, else chunked on HTTP/1.1)."""

    def __init__(self, conn: Connection, request: Request) -> None:
        self._conn = conn
        self._head_only = request.method == "HEAD"
        self.keep_alive = request.keep_alive
        """False once the connection is to close after this answer."""
        self.started = False
        self.finished = False
        self._chunked = False
        self._http10 = request.version == "HTTP/1.0"
        self.detached = False

    def send(self, status: int, headers: Sequence[Header], body: bytes, reason: str = "") -> None:
        """The whole response in one write (Content-Length is set here)."""
        head = self._head(status, reason, headers, len(body))
        self._conn.write(head if self._head_only or _bodiless(status) else head + body)
        self.started = self.finished = True

    async def start(
        self, status: int, headers: Sequence[Header], length: int | None, reason: str = ""
    ) -> None:
        if length is None and self._http10:
            self.keep_alive = False  # an HTTP/1.0 client reads to the end of the connection
        self._chunked = length is None and not self._http10 and not _bodiless(status)
        self._conn.write(self._head(status, reason, headers, length))
        self.started = True

    async def write(self, data: bytes) -> None:
        if not data or self._head_only:
            return
        if self._chunked:
            self._conn.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self._conn.write(data)
        await self._conn.drain()

    async def end(self) -> None:
        if self._chunked and not self._head_only:
            self._conn.write(b"0\r\n\r\n")
        self.finished = True

    def close_after(self) -> None:
        self.keep_alive = False

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Hand the connection over (an upgrade): its transport and the bytes after the head."""
        self.detached = self.finished = True
        return self._conn.detach()

    def _head(
        self, status: int, reason: str, headers: Sequence[Header], length: int | None
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason or _phrase(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if length is not None and not _bodiless(status):
            lines.append(f"Content-Length: {length}")
        elif length is None and not _bodiless(status) and not self._http10:
            lines.append("Transfer-Encoding: chunked")
        if not self.keep_alive:
            lines.append("Connection: close")
        elif self._http10:
            lines.append("Connection: keep-alive")
        return encode_head(lines)


def encode_head(lines: Sequence[str]) -> bytes:
    """A message head from its start line and header lines; ValueError if a line holds a CR or
    LF (a header would split the head: request smuggling, response splitting)."""
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise ValueError("a header name or value contains CR or LF")
    return (text + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _bodiless(status: int) -> bool:
    return status < 200 or status in (204, 304)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


Handler = Callable[[Request, Reply], Awaitable[None]]
ErrorHook = Callable[[str], None]


class Connection(asyncio.Protocol):
    """One client connection: parses requests and serves them in order with ``handler``."""

    def __init__(self, server: Http1Server) -> None:
        self.server = server
        self.loop = server.loop
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.scheme = "http"
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._url = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._current: Request | None = None
        """The request whose head or body is being parsed."""
        self._busy = False
        """A request is being served."""
        self.deadline: float | None = None
        """When the head being waited for is late (None: not waiting for a head)."""
        self.idle_since: float | None = None
        self._paused = False
        self._body_bytes = 0
        self._closing = False
        self._refusing = False
        """Bytes did not parse: what was queued before them is answered, then the end."""
        self._refusal: int | None = None
        """The status for a head that did not parse."""
        self._detached = False
        self._tail = b""
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = self.transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.scheme = "https" if self.transport.get_extra_info("sslcontext") else "http"
        self.deadline = self.loop.time() + self.limits.header_timeout
        self.server.connections.add(self)
        self._task = self.loop.create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.server.connections.discard(self)
        error = ConnectionResetError("client closed the connection")
        for request in (self._current, *self._queue):
            if request is not None:
                request.body.fail(error)
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(error)
        if self._task is not None and not self._busy:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._detached:
            self._tail += data
            return
        if self._refusing:
            return
        if self.deadline is None and not self._busy and self._current is None:
            self.deadline = self.loop.time() + self.limits.header_timeout
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._tail = data[upgrade.args[0] :] if upgrade.args else b""
            self._detached = True
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, "header_too_large")
            else:
                self._refuse(400, "malformed")
        except httptools.HttpParserError:
            self._refuse(400, "malformed")

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- llhttp callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = []
        self._head_bytes = 0
        if self.deadline is None:
            self.deadline = self.loop.time() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if len(self._headers) >= self.limits.max_headers:
            raise _HeadTooLarge
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        if parser.get_http_version() not in ("1.0", "1.1"):
            raise ValueError("not HTTP/1.x")  # llhttp takes "GET /" as HTTP/0.9
        expected = None
        chunked = False
        continue_first = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                expected = int(value)
            elif lowered == b"transfer-encoding":
                chunked = True
            elif lowered == b"expect" and value.lower() == b"100-continue":
                continue_first = parser.get_http_version() == "1.1"
        body = Body(self, None if chunked else (expected or 0), continue_first)
        request = Request(
            method=parser.get_method().decode("ascii"),
            target=self._url.decode("utf-8", "surrogateescape"),
            version="HTTP/" + parser.get_http_version(),
            raw_headers=self._headers,
            keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade(),
            peer=self.peer,
            scheme=self.scheme,
            body=body,
        )
        self.deadline = None
        self._current = request
        self._queue.append(request)
        if len(self._queue) > MAX_PIPELINED:
            self._pause()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.body.finish()
            self._current = None

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.limits.max_header_bytes:
            raise _HeadTooLarge

    # -- serving -------------------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while not self._closing:
                if not self._queue and self._refusing:
                    self._send_refusal()
                    return
                if not self._queue:
                    self.idle_since = self.loop.time()
                    self._wakeup = self.loop.create_future()
                    await self._wakeup
                    continue
                self.idle_since = None
                request = self._queue.popleft()
                if self._paused and len(self._queue) <= MAX_PIPELINED:
                    self._resume()
                if not await self._answer(request):
                    return
        except asyncio.CancelledError:
            pass
        finally:
            if not self._detached:
                self.close()

    async def _answer(self, request: Request) -> bool:
        """Serve one request; False when the connection is to close (or was handed over)."""
        reply = Reply(self, request)
        self._busy = True
        try:
            await self.server.handler(request, reply)
        except MalformedBody:
            if not reply.started:
                reply.close_after()
                reply.send(400, [("Content-Type", "text/plain")], b"400 Bad Request\n")
            return False
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.target[:200])
            if not reply.started:
                reply.close_after()
                reply.send(500, [("Content-Type", "text/plain")], b"500 Internal Server Error\n")
            return False
        finally:
            self._busy = False
        if reply.detached or request.upgrade:
            return False  # handed over, or an upgrade refused: the parser cannot go on
        # a body the handler left unread could be any size: closing beats reading it all
        return reply.finished and reply.keep_alive and request.body.complete and not self._closing

    def _refuse(self, status: int, reason: str) -> None:
        """Bytes that do not parse end the connection. Requests parsed before them are answered
        first; a bad head gets ``status``, a bad body fails that request's body reader (its
        handler answers)."""
        self.server.on_bad_request(reason)
        if self._current is not None:
            self._current.body.fail(MalformedBody("the request body does not parse"))
        else:
            self._refusal = status
        self._current = None
        self._refusing = True
        self._pause()
        self._wake()

    def _send_refusal(self) -> None:
        status = self._refusal
        if status is not None and self.transport is not None:
            text = f"{status} {_phrase(status)}\n".encode()
            head = (
                f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
            )
            self.write(head.encode() + text)

    # -- used by Body and Reply ----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def writelines(self, data: Sequence[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(data)

    async def drain(self) -> None:
        if self._closing:
            raise ConnectionResetError("client closed the connection")
        if self._write_paused:
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    def buffered(self, change: int) -> None:
        """Body bytes held for this connection's requests (pipelined ones included): reading
        pauses above the high water mark and resumes below half of it."""
        self._body_bytes += change
        if self._body_bytes > self.limits.body_high_water:
            self._pause()
        elif (
            self._body_bytes <= self.limits.body_high_water // 2
            and len(self._queue) <= MAX_PIPELINED
        ):
            self._resume()

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        assert self.transport is not None
        self._detached = True
        self.server.connections.discard(self)
        tail, self._tail = self._tail, b""
        return self.transport, tail

    def close(self) -> None:
        self._closing = True
        self._wake()
        if self.transport is not None and not self._detached:
            self.transport.close()

    @property
    def closing(self) -> bool:
        return self._closing

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self.transport is not None and not (self._closing or self._refusing):
            self._paused = False
            self.transport.resume_reading()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def check_deadlines(self, now: float) -> None:
        """Called by the server's sweep: a late head or a connection idle for too long ends."""
        if self.deadline is not None and now > self.deadline and not self._busy:
            self.server.on_bad_request("timeout")
            self.close()
        elif (
            self.idle_since is not None
            and self.deadline is None
            and now - self.idle_since > self.limits.keepalive_timeout
        ):
            self.close()


class Http1Server:
    """The protocol factory for ``loop.create_server``: one ``Connection`` per client, and one
    sweep for every connection's deadlines."""

    def __init__(
        self,
        handler: Handler,
        limits: ServerLimits,
        on_bad_request: ErrorHook = lambda reason: None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.on_bad_request = on_bad_request
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self._period = min(1.0, limits.header_timeout / 4, limits.keepalive_timeout / 4)
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
        ``timeout`` seconds later)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            if conn.idle_since is not None:
                conn.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.connections:
                    await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.close()
