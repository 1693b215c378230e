"""Forwarding one HTTP request to an upstream pool and relaying its response, bodies streamed
both ways."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from multidict import CIMultiDict

from wafproxy.config.model import ResponseHeaders, Target
from wafproxy.proxy_headers import ForwardedFor, decode_raw, harden, host_for, without_hop_by_hop
from wafproxy.request import Header
from wafproxy.upstream_errors import (
    UPSTREAM_FAILURES,
    BodyTooLarge,
    ClientBodyError,
    ErrorKind,
    UpstreamError,
    classify,
    is_connect_failure,
)
from wafproxy.upstream_http import Timeouts, UpstreamResponse, exchange
from wafproxy.upstream_pool import UpstreamPool


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
    retried once by the client (upstream_http) for idempotent methods whose body was not yet
    sent."""
    kind = ErrorKind.CONNECT
    for health in pool.order(time.monotonic()):
        try:
            response = await _send(pool, health.target, method, path_qs, headers, fwd, body)
        except Exception as exc:
            _raise_client_side(exc, body)
            if not isinstance(exc, UPSTREAM_FAILURES):
                raise
            kind = classify(exc)
            if not is_connect_failure(exc):
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
