"""The upstream hop's HTTP/1.1 client: a keep-alive pool per upstream, bodies streamed both ways.

Why not aiohttp's ClientSession here: a proxy forwards a request it has already parsed and
checked, so it needs none of what a general client does per request (URL objects, cookie jar,
auto headers, redirects, tracing, a response object graph). On the benchmark shapes the
ClientSession exchange cost more than everything else a bare proxy does; this client writes the
request head in one ``transport.write`` and parses the answer with llhttp (httptools), the
parser aiohttp itself uses. A WebSocket handshake takes a connection of its own (websocket.py).

Errors: ``ConnectFailed`` (nothing was sent; the pool's passive health counts it),
``TimeoutError`` (connect, read or total deadline), ``ConnectionResetError`` (the upstream went
away mid-exchange), ``UpstreamProtocolError`` (an answer that is not HTTP/1.x).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeVar, cast

import httptools

from wafproxy.config.model import Target
from wafproxy.http1 import encode_head
from wafproxy.request import Header

HIGH_WATER = 256 * 1024
"""Response bytes buffered before we stop reading from the upstream (bounded memory)."""
MAX_FIELD = 64 * 1024
MAX_HEAD = 1024 * 1024
IDLE_SECONDS = 15.0
"""A kept-alive connection idle longer than this is closed rather than reused."""
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


P = TypeVar("P", bound=asyncio.BaseProtocol)


class UpstreamProtocolError(Exception):
    """The upstream's answer is not valid HTTP/1.x."""


class ConnectFailed(Exception):
    """No connection to the target (refused, unreachable, DNS, connect timeout)."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("connect timeout" if timed_out else "connect failed")
        self.timed_out = timed_out


class _Stale(Exception):
    """A reused connection died before any byte of the answer came: safe to try once more."""


class BodySource(Protocol):
    def chunks(self) -> AsyncIterator[bytes]: ...

    def whole(self) -> bytes | None:
        """The entire body when it is already in hand (it then goes out with the head, in one
        write); None when it is still to come."""


class Timeouts:
    __slots__ = ("connect", "deadline", "read")

    def __init__(self, connect: float, read: float, total: float) -> None:
        self.connect = connect
        self.read = read
        self.deadline = time.monotonic() + total

    def next_wait(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("upstream total timeout")
        return min(self.read, left)


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection to a target and the exchange in progress on it."""

    def __init__(self, pool: ConnectionPool, target: Target) -> None:
        self.pool = pool
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.reusable = False
        self._closed = False
        self._can_write: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        """Made by its loop's create_connection. Kept: in Python 3.11 each
        get_running_loop() is a getpid() system call, and ``_wait`` runs once per exchange."""
        self._reset_exchange(head_only=False)

    def _reset_exchange(self, head_only: bool) -> None:
        self.head_only = head_only
        self.status = 0
        self.reason = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.framed = False
        self.got_bytes = False
        self.headers_done = False
        self.complete = False
        self.error: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.complete or self.error is not None:
            self._fail(UpstreamProtocolError("data after the end of the response"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(str(exc) or "malformed response"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.reusable = False
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if self.complete or self.error is not None:
            return
        if self.headers_done and not self.framed and not self.head_only:
            self._finish()  # a body delimited by the connection's end
            return
        if not self.got_bytes:
            self._fail(_Stale())
        else:
            self._fail(ConnectionResetError("upstream closed the connection mid-response"))

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    # -- llhttp callbacks ------------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self.head_bytes += size
        if size > MAX_FIELD or self.head_bytes > MAX_HEAD:
            raise UpstreamProtocolError("upstream header too large")
        low = name.lower()
        if low == b"content-length" or low == b"transfer-encoding":
            self.framed = True
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints) are dropped
            self.reason = b""
            self.raw_headers = []
            self.head_bytes = 0
            self.framed = False
            return
        self.status = status
        self.headers_done = True
        if self.head_only:
            self.reusable = False  # llhttp would wait for the body a HEAD answer never has
            self._finish()
        else:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of an interim answer
        if not self.complete:
            self.reusable = self.parser.should_keep_alive() and not self.head_only
            self._finish()

    # -- the exchange ----------------------------------------------------------------------------
    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeouts: Timeouts) -> None:
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeouts.next_wait(), _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def drain(self) -> None:
        if self._closed:
            raise ConnectionResetError("upstream closed the connection")
        if self._can_write is not None and not self._can_write.done():
            await self._can_write

    @property
    def closing(self) -> bool:
        return self._closed or self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("upstream read timeout"))


class UpstreamResponse:
    """The upstream's answer: status and headers now, the body as it comes (``readany``)."""

    def __init__(self, conn: Connection, timeouts: Timeouts) -> None:
        self._conn = conn
        self._timeouts = timeouts
        self._released = False
        self.status = conn.status
        self.reason = conn.reason.decode("latin-1")
        self.raw_headers = conn.raw_headers

    async def readany(self) -> bytes:
        """The next bytes of the body, b"" at its end. Raises TimeoutError, ConnectionError or
        UpstreamProtocolError."""
        conn = self._conn
        while not conn.chunks:
            if conn.error is not None:
                raise _public(conn.error)
            if conn.complete:
                return b""
            await conn._wait(self._timeouts)
        data = conn.chunks.popleft() if len(conn.chunks) == 1 else b"".join(conn.chunks)
        conn.chunks.clear()
        conn.buffered = 0
        if conn.paused and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        return data

    def whole_body(self) -> bytes | None:
        """The entire body when it has already arrived (small answers usually have), so the
        proxy can send head and body in one write; None while more is to come."""
        conn = self._conn
        if not conn.complete or conn.error is not None:
            return None
        data = b"".join(conn.chunks)
        conn.chunks.clear()
        conn.buffered = 0
        return data

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._conn.pool.give_back(self._conn)


def _public(exc: BaseException) -> BaseException:
    if isinstance(exc, _Stale):
        return ConnectionResetError("upstream closed the connection")
    return exc


class ConnectionPool:
    """Idle kept-alive connections per target and a cap on connections in use (``pool_size``)."""

    def __init__(
        self, size: int, connect_timeout: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self._idle: dict[Target, list[Connection]] = {}
        self._slots = asyncio.Semaphore(size) if size > 0 else None
        self._connect_timeout = connect_timeout
        self._tls = tls
        """For https targets; None: the system's trust store, made on first use."""
        self._closed = False

    async def acquire(self, target: Target) -> tuple[Connection, bool]:
        """A connection to ``target`` and whether it was reused."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            conn = self._idle_connection(target)
            if conn is not None:
                return conn, True
            return await self._connect(target), False
        except BaseException:
            self._free_slot()
            raise

    def _idle_connection(self, target: Target) -> Connection | None:
        idle = self._idle.get(target)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closing and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, target: Target) -> Connection:
        return await self.open(lambda: Connection(self, target), target)

    async def open(self, factory: Callable[[], P], target: Target) -> P:
        """A new connection to ``target`` with the pool's TLS settings and connect timeout,
        served by ``factory``'s protocol (pooled or not: a WebSocket takes one of its own).
        Raises ConnectFailed."""
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if target.scheme == "https" else None
        server_name = target.host if tls is not None and tls.check_hostname else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    factory,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=server_name if tls is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectFailed(timed_out=True) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(timed_out=False) from exc
        return protocol

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def give_back(self, conn: Connection) -> None:
        self._free_slot()
        if conn.reusable and conn.complete and not conn.closing and not self._closed:
            conn.idle_since = time.monotonic()
            conn._reset_exchange(head_only=False)
            self._idle.setdefault(conn.target, []).append(conn)
        else:
            conn.close()

    def discard(self, conn: Connection) -> None:
        conn.close()
        self._free_slot()

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def request_head(method: str, target: str, headers: Sequence[Header], chunked: bool) -> bytes:
    """The request line and headers; ValueError if a header would split the head (CR/LF)."""
    lines = [f"{method} {target} HTTP/1.1"]
    lines.extend([f"{name}: {value}" for name, value in headers])
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return encode_head(lines)


async def exchange(
    pool: ConnectionPool,
    target: Target,
    method: str,
    path_qs: str,
    headers: Sequence[Header],
    body: BodySource | None,
    timeouts: Timeouts,
    replayable: bool,
) -> UpstreamResponse:
    """Send one request and wait for the answer's head. ``replayable``: the body (if any) can
    be sent again, so a reused connection found dead may be retried once on a new one."""
    retry = replayable and method in IDEMPOTENT
    while True:
        conn, reused = await pool.acquire(target)
        try:
            return await _send(conn, method, path_qs, headers, body, timeouts)
        except _Stale:
            pool.discard(conn)
            if not (reused and retry):
                raise ConnectionResetError("upstream closed the connection") from None
            retry = False
        except BaseException:
            pool.discard(conn)
            raise


async def _send(
    conn: Connection,
    method: str,
    path_qs: str,
    headers: Sequence[Header],
    body: BodySource | None,
    timeouts: Timeouts,
) -> UpstreamResponse:
    conn._reset_exchange(head_only=method == "HEAD")
    transport = conn.transport
    assert transport is not None
    chunked = False
    if body is not None or method in BODY_METHODS:
        framed = any(name.lower() == "content-length" for name, _ in headers)
        if body is None and not framed:
            headers = [*headers, ("Content-Length", "0")]
        chunked = body is not None and not framed
    head = request_head(method, path_qs, headers, chunked)
    whole = None if body is None or chunked else body.whole()
    if whole is not None:
        transport.write(head + whole)
    else:
        transport.write(head)
        if body is not None:
            await _write_body(conn, body, chunked)
    while not conn.headers_done:
        if conn.error is not None:
            raise conn.error
        await conn._wait(timeouts)
    return UpstreamResponse(conn, timeouts)


async def _write_body(conn: Connection, body: BodySource, chunked: bool) -> None:
    transport = conn.transport
    assert transport is not None
    async for chunk in body.chunks():
        if conn.error is not None:
            break  # the upstream already answered (or failed): stop sending
        if not chunk:
            continue
        if chunked:
            transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            transport.write(chunk)
        await conn.drain()
    if chunked and conn.error is None:
        transport.write(b"0\r\n\r\n")
