"""WebSocket passthrough: the handshake goes to the upstream on a connection of its own and, once
it answers 101, the two connections are joined byte for byte until either side ends.

Why a byte tunnel rather than a WebSocket endpoint each way: frames, subprotocols, extensions and
close codes pass unchanged, nothing is buffered beyond the transports' write buffers (reading
from one side pauses while the other's is full), and the upstream enforces its own message
limits, as it does without a proxy in front.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import cast

import httptools

from wafproxy.http1 import Reply, encode_head
from wafproxy.proxy_headers import (
    ForwardedFor,
    connection_tokens,
    decode_raw,
    header_value,
    header_values,
    host_for,
    without_hop_by_hop,
)
from wafproxy.request import Header
from wafproxy.upstream import Outcome, StatusCallback
from wafproxy.upstream_errors import ErrorKind, UpgradeRefused, UpstreamError, classify
from wafproxy.upstream_http import ConnectFailed
from wafproxy.upstream_pool import UpstreamPool

MAX_HANDSHAKE = 64 * 1024
"""The upstream's handshake answer (its head) may be at most this long."""
UPGRADE_HEADERS = (("Connection", "Upgrade"), ("Upgrade", "websocket"))


def is_websocket(method: str, headers: Sequence[Header]) -> bool:
    tokens = [t for v in header_values(headers, "connection") for t in connection_tokens(v)]
    upgrade = header_value(headers, "upgrade").strip().lower()
    return method == "GET" and "upgrade" in tokens and upgrade == "websocket"


async def forward_websocket(
    reply: Reply,
    pool: UpstreamPool,
    path_qs: str,
    headers: Sequence[Header],
    fwd: ForwardedFor,
    on_start: StatusCallback,
) -> Outcome:
    """Send the handshake upstream first (a failure is still a plain 502/504, a refusal keeps
    its status), then answer the client's with the upstream's 101 and join the connections
    until one side closes. ``headers`` are the forwarded ones (the Sec-WebSocket-* included;
    hop-by-hop ones, Connection and Upgrade among them, removed and set again here)."""
    start = time.monotonic()
    upstream = await _handshake(pool, path_qs, [*headers, *UPGRADE_HEADERS], fwd)
    outcome = Outcome(status=101, upstream_seconds=time.monotonic() - start)
    transport, tail = reply.detach()
    if transport.is_closing():  # the client went away while the upstream answered
        upstream.close()
        outcome.client_gone = True
        return outcome
    answer = without_hop_by_hop(decode_raw(upstream.raw_headers))
    answer += [*UPGRADE_HEADERS, (fwd.request_id_header, fwd.request_id)]
    transport.write(
        encode_head(["HTTP/1.1 101 Switching Protocols", *(f"{n}: {v}" for n, v in answer)])
    )
    on_start(101)
    client = Pipe(transport)
    upstream.join(client)
    if tail:
        upstream.transport_write(tail)
    transport.resume_reading()
    await client.ended
    return outcome


async def _handshake(
    pool: UpstreamPool, path_qs: str, headers: Sequence[Header], fwd: ForwardedFor
) -> UpstreamSide:
    kind = ErrorKind.CONNECT
    for health in pool.order(time.monotonic()):
        target = health.target
        try:
            side = await pool.connections.open(UpstreamSide, target)
        except ConnectFailed as exc:
            kind = classify(exc)
            pool.failed(health, time.monotonic())
            continue
        pool.succeeded(health)
        lines = [f"GET {path_qs} HTTP/1.1", f"Host: {host_for(fwd, target)}"]
        side.transport_write(encode_head([*lines, *(f"{n}: {v}" for n, v in headers)]))
        await side.answered(pool.config.read_timeout)
        return side
    raise UpstreamError(kind)


class Pipe(asyncio.Protocol):
    """One side of a joined pair: what it receives is written to the other side; its reading
    pauses while the other side cannot write."""

    def __init__(self, transport: asyncio.BaseTransport | None = None) -> None:
        self.transport = cast(asyncio.Transport | None, transport)
        self.other: Pipe | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def join(self, other: Pipe) -> None:
        self.other, other.other = other, self
        assert other.transport is not None
        other.transport.set_protocol(other)

    def transport_write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.other is not None:
            self.other.transport_write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes, and connection_lost closes the other side

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        other = self.other
        if not self.ended.done():
            self.ended.set_result(None)
        if other is not None and other.transport is not None:
            other.transport.close()  # after what it still has to write


class UpstreamSide(Pipe):
    """The upstream's connection: first its handshake answer, parsed by llhttp, then a pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpResponseParser(self)
        self._head = 0
        self._answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held = b""
        """Bytes after the 101, for the client once the pipe is joined."""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._answer.done():
            if self.other is None:
                self._held += data
                if len(self._held) > MAX_HANDSHAKE and self.transport is not None:
                    self.transport.pause_reading()  # until the pipe is joined
            else:
                super().data_received(data)
            return
        self._head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._held = data[upgrade.args[0] :] if upgrade.args else b""
            self._settle(None)
        except httptools.HttpParserError:
            self._settle(UpstreamError(ErrorKind.PROTOCOL))
        else:
            if self._head > MAX_HANDSHAKE:
                self._settle(UpstreamError(ErrorKind.PROTOCOL))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status != 101:  # refused (or not a WebSocket server): its status is the answer
            self._settle(UpgradeRefused(self.status))

    def _settle(self, error: BaseException | None) -> None:
        if self._answer.done():
            return
        if error is None and self.status != 101:
            error = UpstreamError(ErrorKind.PROTOCOL)
        if error is None:
            self._answer.set_result(None)
        else:
            self._answer.set_exception(error)
            if self.transport is not None:
                self.transport.close()

    async def answered(self, timeout: float) -> None:
        """Wait for the 101; raises UpgradeRefused, UpstreamError (protocol, timeout, reset)."""
        try:
            async with asyncio.timeout(timeout):
                await self._answer
        except TimeoutError:
            self.close()
            raise UpstreamError(ErrorKind.TIMEOUT) from None

    def join(self, other: Pipe) -> None:
        super().join(other)
        held, self._held = self._held, b""
        if held:
            other.transport_write(held)
        if self.ended.done() and other.transport is not None:
            other.transport.close()  # the upstream closed before the join: so does the client
        elif self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(UpstreamError(ErrorKind.RESET))
        super().connection_lost(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
