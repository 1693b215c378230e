"""WebSocket passthrough: open the upstream socket, accept the client's, pump messages both ways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from yarl import URL

from wafproxy.proxy_headers import ForwardedFor, host_for
from wafproxy.request import Header
from wafproxy.upstream import Outcome, StatusCallback
from wafproxy.upstream_errors import (
    ErrorKind,
    UpgradeRefused,
    UpstreamError,
    classify,
    is_connect_failure,
)
from wafproxy.upstream_pool import UpstreamPool

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
            if is_connect_failure(exc):
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
