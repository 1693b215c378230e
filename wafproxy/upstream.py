"""Forwarding one HTTP request to an upstream pool and relaying its response, bodies streamed
both ways."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from wafproxy.config.model import ResponseHeaders, Target
from wafproxy.http1 import Body, BodyTimeout, MalformedBody, Reply
from wafproxy.proxy_headers import ForwardedFor, client_headers, host_for
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
    """The already-read prefix, then the rest of the client's body, counted against a limit."""

    def __init__(self, prefix: bytes, rest: Body | None, limit: int) -> None:
        self.prefix = prefix
        self.rest = rest
        self.limit = limit
        self.sent = 0
        self.too_large = False
        self.client_error: BaseException | None = None

    def whole(self) -> bytes | None:
        if self.rest is not None:
            return None
        self.sent = len(self.prefix)
        return self.prefix

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.prefix:
            self.sent = len(self.prefix)
            yield self.prefix
        if self.rest is None:
            return
        while True:
            try:
                chunk = await self.rest.next_chunk()
            except (MalformedBody, BodyTimeout, ConnectionError) as exc:
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
    bytes_out: int = 0
    """Response body bytes sent to the client."""
    location: str | None = None
    """The response's Location header (detection judges login attempts by it)."""


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
        raise ClientBodyError(timed_out=isinstance(body.client_error, BodyTimeout)) from exc


NO_HEADER_CHANGES = ResponseHeaders()
StatusCallback = Callable[[int], None]
"""Told the status the moment the response starts (the decision log line is written then)."""


async def relay(
    reply: Reply,
    upstream: UpstreamResponse,
    extra: Sequence[Header],
    on_start: StatusCallback,
    policy: ResponseHeaders = NO_HEADER_CHANGES,
    on_chunk: Callable[[bytes], None] | None = None,
) -> Outcome:
    """Stream the upstream response to the client. A failure after the head went out can only
    cut the connection (the answer is left unended), so the client sees a truncated response
    rather than a short one. ``policy`` is the route's ``response_headers`` option;
    ``on_chunk`` sees each body chunk before it is written (detection's login failure marker)."""
    answer = client_headers(upstream.raw_headers, policy, extra)
    outcome = Outcome(status=upstream.status, location=answer.location)
    whole = upstream.whole_body()
    try:
        if whole is not None and (
            answer.length == len(whole) or (answer.length is None and not reply.head_only)
        ):
            reply.send(upstream.status, answer.headers, whole, upstream.reason)
            on_start(upstream.status)
            outcome.bytes_out = len(whole)
            if on_chunk is not None:
                on_chunk(whole)
        else:
            await reply.start(upstream.status, answer.headers, answer.length, upstream.reason)
            on_start(upstream.status)
            if whole is not None:
                await _write(reply, whole, outcome, on_chunk)
            await _stream_body(upstream, reply, outcome, on_chunk)
    except ConnectionError:
        outcome.client_gone = True
    finally:
        upstream.release()
    return outcome


async def _stream_body(
    upstream: UpstreamResponse,
    reply: Reply,
    outcome: Outcome,
    on_chunk: Callable[[bytes], None] | None,
) -> None:
    while chunk := await _read(upstream, outcome):
        await _write(reply, chunk, outcome, on_chunk)
    if outcome.error is None:
        await reply.end()


async def _write(
    reply: Reply, chunk: bytes, outcome: Outcome, on_chunk: Callable[[bytes], None] | None
) -> None:
    if on_chunk is not None:
        on_chunk(chunk)
    outcome.bytes_out += len(chunk)
    await reply.write(chunk)


async def _read(upstream: UpstreamResponse, outcome: Outcome) -> bytes:
    try:
        return await upstream.readany()
    except UPSTREAM_FAILURES as exc:
        outcome.error = classify(exc)
        return b""
