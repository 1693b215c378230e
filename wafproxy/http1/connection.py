"""One client connection: llhttp parses its requests, one task serves them in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httptools

from wafproxy.http1.body import Body, BodyTimeout, MalformedBody
from wafproxy.http1.reply import Reply, encode_head, phrase
from wafproxy.request import Header

if TYPE_CHECKING:
    from wafproxy.http1.server import Http1Server

log = logging.getLogger("wafproxy")
MAX_PIPELINED = 16
"""Parsed requests waiting behind the one being served before reading pauses."""


class _HeadTooLarge(Exception):
    pass


def plain_error(status: int) -> tuple[list[Header], bytes]:
    """The server's own answer to a request it could not serve: its status, in plain text."""
    return [("Content-Type", "text/plain")], f"{status} {phrase(status)}\n".encode()


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
        self._upgraded = False
        """The parser stopped at an upgrade: later bytes are not HTTP/1.1."""
        self._detached = False
        """The transport was handed over (``Reply.detach``): not ours to close."""
        self._tail = b""
        self._raw_body_left = 0
        """An upgrade request's body bytes still to come (llhttp leaves them to us)."""
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._waiting_body: Body | None = None
        self._waiting_since = 0.0

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
        if self._upgraded:
            self._take_tail(data)
            return
        if self._refusing:
            return
        if self.deadline is None and not self._busy and self._current is None:
            self.deadline = self.loop.time() + self.limits.header_timeout
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded = True
            self._take_tail(data[upgrade.args[0] :] if upgrade.args else b"")
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
        # _count written out: llhttp calls this once per header of every request
        self._head_bytes += len(name) + len(value) + 4
        limits = self.limits
        if self._head_bytes > limits.max_header_bytes or len(self._headers) >= limits.max_headers:
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
        if parser.should_upgrade() and chunked:
            raise ValueError("a chunked body on an upgrade")  # llhttp would not parse it
        body = Body(self, None if chunked else (expected or 0), continue_first)
        self._raw_body_left = (expected or 0) if parser.should_upgrade() else 0
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
        if self._current is not None and not self._raw_body_left:
            self._current.body.finish()
            self._current = None

    def _take_tail(self, data: bytes) -> None:
        """Bytes after an upgrade request's head, which llhttp no longer parses: the body it
        declared (a Content-Length), then the upgraded protocol's bytes, kept for whoever
        takes the transport (reading pauses while they pile up)."""
        request = self._current
        if self._raw_body_left and request is not None:
            part = data[: self._raw_body_left]
            self._raw_body_left -= len(part)
            data = data[len(part) :]
            request.body.feed(part)
            if not self._raw_body_left:
                request.body.finish()
                self._current = None
        if data:
            self._tail += data
            if len(self._tail) > self.limits.body_high_water:
                self._pause()

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
            if self._detached:  # the handler that took the transport has returned
                self.server.connections.discard(self)
            else:
                self.close()

    async def _answer(self, request: Request) -> bool:
        """Serve one request; False when the connection is to close (or was handed over)."""
        reply = Reply(self, request)
        self._busy = True
        try:
            await self.server.handler(request, reply)
        except MalformedBody:
            self._answer_error(reply, 400)
            return False
        except BodyTimeout:
            self._answer_error(reply, 408)
            return False
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.target[:200])
            self._answer_error(reply, 500)
            return False
        finally:
            self._busy = False
        if reply.detached or request.upgrade:
            return False  # handed over, or an upgrade refused: the parser cannot go on
        if not reply.finished or self._closing:
            return False
        if not request.body.complete and not await self._drain(request.body):
            return False
        return reply.keep_alive

    async def _drain(self, body: Body) -> bool:
        """Read and drop what the handler left of a body, for at most ``linger_timeout``
        seconds; False if it did not end by then. Closing with the client's bytes unread would
        reset the connection, and the client could lose the answer it was just sent."""
        if body.awaiting_continue:
            return False  # the client sends nothing until told to: closing loses nothing
        try:
            async with asyncio.timeout(self.limits.linger_timeout):
                while await body.next_chunk():
                    pass
        except (TimeoutError, MalformedBody, BodyTimeout, ConnectionError):
            return False
        return True

    def _answer_error(self, reply: Reply, status: int) -> None:
        """For a request the handler failed to answer; the connection then ends."""
        if not reply.started:
            reply.close_after()
            reply.send(status, *self.server.error_answer(status))

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
        """The answer to a head that did not parse (there is no request to give a Reply)."""
        status = self._refusal
        if status is not None:
            headers, text = self.server.error_answer(status)
            head = encode_head([
                f"HTTP/1.1 {status} {phrase(status)}", *(f"{n}: {v}" for n, v in headers),
                f"Content-Length: {len(text)}", "Connection: close",
            ])  # fmt: skip
            self.write(head + text)

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

    def waiting(self, body: Body | None) -> None:
        self._waiting_body = body
        if body is not None:
            self._waiting_since = self.loop.time()

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
        tail, self._tail = self._tail, b""
        return self.transport, tail

    @property
    def detached(self) -> bool:
        """The transport was handed over (an upgrade)."""
        return self._detached

    @property
    def closed(self) -> bool:
        """The client went away or the connection is closing."""
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._wake()
        if self.transport is not None and not self._detached:
            self.transport.close()

    def abort(self) -> None:
        """Close now, handed over or not (server shutdown)."""
        self.close()
        if self.transport is not None:
            self.transport.close()

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
        """Called by the server's sweep: a late head or a connection idle for too long ends; a
        body whose reader waited too long for its next bytes fails (its handler answers)."""
        body = self._waiting_body
        if body is not None and now - self._waiting_since > self.limits.body_timeout:
            self._waiting_body = None
            self.server.on_bad_request("timeout")
            body.fail(BodyTimeout(f"no request body byte for {self.limits.body_timeout:g} s"))
        if self.deadline is not None and now > self.deadline and not self._busy:
            self.server.on_bad_request("timeout")
            self.close()
        elif (
            self.idle_since is not None
            and self.deadline is None
            and now - self.idle_since > self.limits.keepalive_timeout
        ):
            self.close()
