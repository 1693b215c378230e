"""Forwarding to upstream pools: header rewriting, streamed bodies both ways, passive health.

One ClientSession per upstream (a keep-alive pool of ``pool_size`` connections) with
``auto_decompress=False`` and no cookie jar, so bodies and Set-Cookie headers pass through
untouched and nothing one client sends leaks into another client's request.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from multidict import CIMultiDict
from yarl import URL

from wafproxy.config.model import HOST_PASS, HOST_UPSTREAM, ResponseHeaders, Target, Upstream
from wafproxy.request import Header
from wafproxy.upstream_http import (
    ConnectFailed,
    ConnectionPool,
    Timeouts,
    UpstreamProtocolError,
    UpstreamResponse,
    exchange,
)

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Plus every ``Proxy-*`` header and the headers Connection names (RFC 9110 §7.6.1)."""
FORWARDED = frozenset(
    {"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)
INSERTED_PREFIX = "x-wafproxy-"
"""Rules' inserted headers; a client cannot send its own (the upstream may trust them)."""
CLIENT_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
MAX_UPSTREAM_FIELD = 64 * 1024


class ErrorKind(enum.Enum):
    CONNECT = "connect"
    TIMEOUT = "timeout"
    RESET = "reset"
    PROTOCOL = "protocol"

    @property
    def status(self) -> int:
        return 504 if self is ErrorKind.TIMEOUT else 502


class UpstreamError(Exception):
    def __init__(self, kind: ErrorKind) -> None:
        super().__init__(kind.value)
        self.kind = kind


class BodyTooLarge(Exception):
    """The streamed request body went past max_body_bytes."""


class UpgradeRefused(Exception):
    """The upstream answered a WebSocket handshake with a plain HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ClientBodyError(Exception):
    """The client's body broke off or was malformed (bad chunk framing) while streaming."""


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ConnectFailed):
        return ErrorKind.TIMEOUT if exc.timed_out else ErrorKind.CONNECT
    if isinstance(exc, UpstreamProtocolError):
        return ErrorKind.PROTOCOL
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT
    if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionError, aiohttp.ClientOSError)):
        return ErrorKind.RESET
    return ErrorKind.PROTOCOL


UPSTREAM_FAILURES = (
    aiohttp.ClientError, TimeoutError, OSError, ConnectFailed, UpstreamProtocolError
)  # fmt: skip


def _is_connect_failure(exc: BaseException) -> bool:
    """Failures before anything was sent: safe to try the next target, and count for health."""
    return isinstance(
        exc, (ConnectFailed, aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
    )


# -- headers ---------------------------------------------------------------------------------------
def decode_raw(raw: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    return [
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in raw
    ]


def without_hop_by_hop(headers: Sequence[Header]) -> list[Header]:
    """One pass, one ``lower()`` per header: it runs for every response."""
    out: list[Header] = []
    lows: list[str] = []
    named: set[str] = set()
    for name, value in headers:
        low = name.lower()
        if low in HOP_BY_HOP or low.startswith("proxy-"):
            if low == "connection":
                named.update(connection_tokens(value))
            continue
        out.append((name, value))
        lows.append(low)
    if named:
        return [h for h, low in zip(out, lows, strict=True) if low not in named]
    return out


def connection_tokens(value: str) -> list[str]:
    """The header names a Connection header lists (they are hop-by-hop too)."""
    return [token.strip().lower() for token in value.split(",")]


@dataclass(frozen=True)
class ForwardedFor:
    """What the upstream is told about the original request."""

    peer: str
    scheme: str
    host: str
    host_header: str
    request_id_header: str
    request_id: str
    insert_headers: tuple[Header, ...] = ()


def upstream_headers(headers: Sequence[Header], fwd: ForwardedFor) -> list[Header]:
    """Request headers for the upstream, without Host (set per target by ``host_for``).

    One pass with one ``lower()`` per header: this runs for every forwarded request."""
    dropped = _NOT_FORWARDED | {fwd.request_id_header.lower()}
    if fwd.insert_headers:
        dropped |= {name.lower() for name, _ in fwd.insert_headers}
    out: list[Header] = []
    lows: list[str] = []
    prior_xff: list[str] = []
    named: set[str] = set()
    for name, value in headers:
        low = name.lower()
        if low in dropped or low.startswith(_DROPPED_PREFIXES):
            if low == "x-forwarded-for":
                prior_xff.append(value)
            elif low == "connection":
                named.update(connection_tokens(value))
            continue
        out.append((name, value))
        lows.append(low)
    if named:
        out = [h for h, low in zip(out, lows, strict=True) if low not in named]
    out.append(("X-Forwarded-For", ", ".join([*prior_xff, fwd.peer])))
    out.append(("X-Forwarded-Proto", fwd.scheme))
    if fwd.host:
        out.append(("X-Forwarded-Host", fwd.host))
    out.append((fwd.request_id_header, fwd.request_id))
    out.extend(fwd.insert_headers)
    return out


_NOT_FORWARDED = HOP_BY_HOP | FORWARDED
_DROPPED_PREFIXES = ("proxy-", INSERTED_PREFIX)


def host_for(fwd: ForwardedFor, target: Target) -> str:
    if fwd.host_header == HOST_PASS:
        return fwd.host or target.authority
    if fwd.host_header == HOST_UPSTREAM:
        return target.authority
    return fwd.host_header


# -- pools -----------------------------------------------------------------------------------------
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
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """aiohttp's client, for WebSocket upgrades only (plain requests use ``connections``)."""
        if self._session is None:
            self._session = _new_session(self.config)
        return self._session

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
        if self._session is not None:
            await self._session.close()
            self._session = None


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


def _new_session(config: Upstream) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=config.pool_size, limit_per_host=0, ttl_dns_cache=10)
    timeout = aiohttp.ClientTimeout(
        total=config.total_timeout,
        sock_connect=config.connect_timeout,
        sock_read=config.read_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=CLIENT_SKIP_AUTO,
        max_line_size=MAX_UPSTREAM_FIELD,
        max_field_size=MAX_UPSTREAM_FIELD,
    )


# -- the request body ------------------------------------------------------------------------------
class RequestBody:
    """The already-read prefix, then the rest of the client's stream, counted against a limit."""

    def __init__(self, prefix: bytes, rest: StreamReader | None, limit: int) -> None:
        self.prefix = prefix
        self.rest = rest
        self.limit = limit
        self.sent = 0
        self.too_large = False
        self.client_error: BaseException | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.prefix:
            self.sent = len(self.prefix)
            yield self.prefix
        if self.rest is None:
            return
        while True:
            try:
                chunk = await self.rest.readany()
            except (HttpProcessingError, aiohttp.ClientPayloadError, ConnectionError) as exc:
                self.client_error = exc
                raise
            if not chunk:
                return
            self.sent += len(chunk)
            if self.sent > self.limit:
                self.too_large = True
                raise BodyTooLarge
            yield chunk


# -- forwarding ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    status: int = 0
    error: ErrorKind | None = None
    """Set when the exchange failed after the response had started."""
    upstream_seconds: float | None = None
    client_gone: bool = False


async def open_upstream(
    pool: UpstreamPool,
    method: str,
    path_qs: str,
    headers: Sequence[Header],
    fwd: ForwardedFor,
    body: RequestBody | None,
) -> UpstreamResponse:
    """Send the request to the first target that accepts a connection. Raises UpstreamError,
    BodyTooLarge or ClientBodyError.

    A kept-alive connection the upstream closed under us (its idle timeout raced our reuse) is
    retried by aiohttp itself for idempotent methods whose body was not yet sent."""
    kind = ErrorKind.CONNECT
    for health in pool.order(time.monotonic()):
        try:
            response = await _send(pool, health.target, method, path_qs, headers, fwd, body)
        except Exception as exc:
            _raise_client_side(exc, body)
            if not isinstance(exc, UPSTREAM_FAILURES):
                raise
            kind = classify(exc)
            if not _is_connect_failure(exc):
                raise UpstreamError(kind) from exc
            pool.failed(health, time.monotonic())
            continue
        pool.succeeded(health)
        return response
    raise UpstreamError(kind)


async def _send(
    pool: UpstreamPool,
    target: Target,
    method: str,
    path_qs: str,
    headers: Sequence[Header],
    fwd: ForwardedFor,
    body: RequestBody | None,
) -> UpstreamResponse:
    config = pool.config
    timeouts = Timeouts(config.connect_timeout, config.read_timeout, config.total_timeout)
    return await exchange(
        pool.connections,
        target,
        method,
        path_qs,
        [("Host", host_for(fwd, target)), *headers],
        body,
        timeouts,
        replayable=body is None or body.rest is None,
    )


def _raise_client_side(exc: BaseException, body: RequestBody | None) -> None:
    """The upload failed because of the client (too big, broken off), not the upstream."""
    if body is not None and body.too_large:
        raise BodyTooLarge from exc
    if body is not None and body.client_error is not None:
        raise ClientBodyError from exc


def response_headers(upstream: UpstreamResponse) -> list[Header]:
    return without_hop_by_hop(decode_raw(upstream.raw_headers))


NO_HEADER_CHANGES = ResponseHeaders()
StatusCallback = Callable[[int], None]
"""Told the status the moment the response starts (the decision log line is written then)."""


async def relay(
    request: web.BaseRequest,
    upstream: UpstreamResponse,
    extra: Sequence[Header],
    on_start: StatusCallback,
    policy: ResponseHeaders = NO_HEADER_CHANGES,
    on_chunk: Callable[[bytes], None] | None = None,
) -> tuple[web.StreamResponse, Outcome]:
    """Stream the upstream response to the client. A failure after the headers went out can
    only cut the connection, so the client sees a truncated response rather than a short one.
    ``policy`` is the route's ``response_headers`` option; ``on_chunk`` sees each body chunk
    before it is written (detection's login failure marker)."""
    outcome = Outcome(status=upstream.status)
    streamed = upstream.status in NO_BODY or request.method == "HEAD"
    whole = None if streamed else upstream.whole_body()
    headers = CIMultiDict(response_headers(upstream))
    harden(headers, policy)
    for name, value in extra:
        headers[name] = value
    if "Server" not in headers:  # else aiohttp would announce its own version
        headers["Server"] = "wafproxy"
    response = (
        web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
        if whole is None
        else web.Response(
            status=upstream.status, reason=upstream.reason, headers=headers, body=whole
        )
    )
    try:
        await response.prepare(request)
        on_start(upstream.status)
        if whole is not None:
            if on_chunk is not None:
                on_chunk(whole)
            await response.write_eof()  # head and body in one write
        else:
            await _stream_body(upstream, response, outcome, on_chunk)
    except ConnectionError:
        outcome.client_gone = True
    finally:
        upstream.release()
    if outcome.error is not None:
        abort(request)
    return response, outcome


NO_BODY = frozenset({204, 304})


async def _stream_body(
    upstream: UpstreamResponse,
    response: web.StreamResponse,
    outcome: Outcome,
    on_chunk: Callable[[bytes], None] | None,
) -> None:
    while chunk := await _read(upstream, outcome):
        if on_chunk is not None:
            on_chunk(chunk)
        await response.write(chunk)
    if outcome.error is None:
        await response.write_eof()


def harden(headers: CIMultiDict[str], policy: ResponseHeaders) -> None:
    """Remove the policy's headers, then add each of its headers the response lacks."""
    for name in policy.remove:
        headers.popall(name, None)
    for name, value in policy.add:
        if name not in headers:
            headers[name] = value


async def _read(upstream: UpstreamResponse, outcome: Outcome) -> bytes:
    try:
        return await upstream.readany()
    except UPSTREAM_FAILURES as exc:
        outcome.error = classify(exc)
        return b""


def abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


# -- WebSocket -------------------------------------------------------------------------------------
WS_MAX_MESSAGE = 4 * 1024 * 1024
WS_DROP = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
     "sec-websocket-protocol", "sec-websocket-accept"}
)  # fmt: skip


def is_websocket(request: web.BaseRequest) -> bool:
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    upgrade = request.headers.get("Upgrade", "").strip().lower()
    return request.method == "GET" and "upgrade" in connection and upgrade == "websocket"


async def forward_websocket(
    request: web.BaseRequest,
    pool: UpstreamPool,
    path_qs: str,
    headers: Sequence[Header],
    fwd: ForwardedFor,
    on_start: StatusCallback,
) -> tuple[web.StreamResponse, Outcome]:
    """Open the upstream WebSocket first (a failure is still a plain 502/504), then accept the
    client's handshake and pump messages both ways until one side closes."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    protocols = tuple(p.strip() for p in offered.split(",") if p.strip())
    plain = [(n, v) for n, v in headers if n.lower() not in WS_DROP]
    start = time.monotonic()
    upstream = await _ws_connect(pool, path_qs, plain, fwd, protocols)
    outcome = Outcome(status=101, upstream_seconds=time.monotonic() - start)
    chosen = (upstream.protocol,) if upstream.protocol else ()
    client = web.WebSocketResponse(protocols=chosen, max_msg_size=WS_MAX_MESSAGE)
    client.headers[fwd.request_id_header] = fwd.request_id
    try:
        await client.prepare(request)
        on_start(101)
        await _pump_both(client, upstream)
    except ConnectionError:
        outcome.client_gone = True
    finally:
        await upstream.close()
    return client, outcome


async def _ws_connect(
    pool: UpstreamPool,
    path_qs: str,
    headers: Sequence[Header],
    fwd: ForwardedFor,
    protocols: tuple[str, ...],
) -> aiohttp.ClientWebSocketResponse:
    kind = ErrorKind.CONNECT
    for health in pool.order(time.monotonic()):
        target = health.target
        try:
            ws = await pool.session.ws_connect(
                URL(target.url.replace("http", "ws", 1) + path_qs, encoded=True),
                headers=[("Host", host_for(fwd, target)), *headers],
                protocols=protocols,
                max_msg_size=WS_MAX_MESSAGE,
                ssl=pool.tls if pool.tls is not None else True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            pool.succeeded(health)
            if exc.status == 101:  # it did switch, but the handshake itself was broken
                raise UpstreamError(ErrorKind.PROTOCOL) from exc
            raise UpgradeRefused(exc.status) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            kind = classify(exc)
            if _is_connect_failure(exc):
                pool.failed(health, time.monotonic())
                continue
            raise UpstreamError(kind) from exc
        pool.succeeded(health)
        return ws
    raise UpstreamError(kind)


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump_both(
    client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    tasks = [
        asyncio.ensure_future(_pump(client, upstream)),
        asyncio.ensure_future(_pump(upstream, client)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=10.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _pump(source: Socket, sink: Socket) -> None:
    """Copy messages until ``source`` closes, then close ``sink`` with the same code and reason."""
    reason = ""
    while True:
        msg = await source.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type is aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type is aiohttp.WSMsgType.CLOSE:
            reason = msg.extra or ""
            break
        elif msg.type in _WS_END:
            break
    await sink.close(code=_close_code(source.close_code), message=reason.encode()[:123])


_WS_END = frozenset({aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR})


def _close_code(code: int | None) -> int:
    """The code to pass on; the reserved ones (no status, abnormal closure) cannot be sent."""
    if code is None or code == 1005:
        return 1000
    if code in (1006, 1015) or not 1000 <= code < 5000:
        return 1011
    return code
