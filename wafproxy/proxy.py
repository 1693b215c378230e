"""The request path: route → snapshot → evaluate → block or forward → observe.

Every request that reaches a route gets one decision log line and its metrics, whatever the
outcome (blocked, forwarded, refused for size, upstream failure); one that matches no route (a
404) or whose target is not forwardable (``*``, CONNECT: a 400) has no web ACL to log under.
Error responses carry the request id and never internal detail.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from itertools import chain
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from wafproxy.acl.engine import evaluate
from wafproxy.acl.ipset import IpSet
from wafproxy.acl.model import ActionKind, CustomResponse, RateView, Verdict, WebAcl
from wafproxy.config.runtime import BoundRoute
from wafproxy.decisionlog import DecisionLog
from wafproxy.metrics import Metrics
from wafproxy.proxy_headers import ForwardedFor, upstream_headers
from wafproxy.reload import Generation, RuntimeRef
from wafproxy.request import Header, WafRequest
from wafproxy.snapshot import Snapshot, origin_form, take_snapshot
from wafproxy.state import SharedState
from wafproxy.upstream import Outcome, RequestBody, open_upstream, relay
from wafproxy.upstream_errors import BodyTooLarge, ClientBodyError, UpgradeRefused, UpstreamError
from wafproxy.websocket import forward_websocket, is_websocket

if TYPE_CHECKING:
    from wafproxy.detect.service import DetectService

log = logging.getLogger("wafproxy")
REQUEST_ID_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@+=/"
)
MAX_REQUEST_ID = 128
SERVER_NAME = "wafproxy"
"""Our own answers say only this; aiohttp would announce its and Python's versions."""
CLIENT_CLOSED = 499
"""Status recorded (never sent) when the client went away first, as nginx does."""


def client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def new_request_id() -> str:
    """128 random bits as hex: unique, not a secret (uuid4 costs more for the same bits)."""
    return f"{random.getrandbits(128):032x}"


def valid_request_id(value: str) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and set(value) <= REQUEST_ID_CHARS


def error_response(status: int, request_id: str, header: str) -> web.Response:
    """A plain error with the request id in a header and in the body; nothing else."""
    text = f"{status} {_phrase(status)}\nrequest id: {request_id}\n"
    response = web.Response(status=status, text=text, content_type="text/plain")
    response.headers[header] = request_id
    response.headers["Server"] = SERVER_NAME
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def refused(rule: str) -> Verdict:
    """The verdict logged for a request the edge refused before the web ACL ran."""
    return Verdict(action=ActionKind.BLOCK, terminating_rule=rule)


def block_response(verdict: Verdict, request_id: str, header: str) -> web.Response:
    custom = verdict.response or CustomResponse()
    body = custom.body or f"Request blocked.\nrequest id: {request_id}\n".encode()
    response = web.Response(status=custom.status, body=body)
    for name, value in custom.headers:
        response.headers.add(name, value)
    response.headers["Content-Type"] = custom.content_type
    response.headers[header] = request_id
    response.headers.setdefault("Server", SERVER_NAME)
    return response


@dataclass
class Exchange:
    """One request's state as it moves through the handler."""

    request: web.Request
    gen: Generation
    bound: BoundRoute
    request_id: str
    target: str
    wreq: WafRequest | None = None
    verdict: Verdict | None = None
    logged: bool = False
    outcome: Outcome | None = None
    """How a forwarded exchange ended (detection reads the client-gone flag)."""
    on_chunk: Callable[[bytes], None] | None = None
    """Sees each relayed response body chunk (detection, on login routes only)."""

    @property
    def id_header(self) -> str:
        return self.gen.config.request_id.header

    @property
    def route(self) -> str:
        return self.bound.route.name

    @property
    def acl(self) -> str:
        return self.bound.acl.name


class ProxyHandler:
    """The catch-all aiohttp handler."""

    def __init__(
        self,
        ref: RuntimeRef,
        metrics: Metrics,
        decision_log: DecisionLog,
        state: SharedState | None = None,
        detect: DetectService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ref = ref
        self.metrics = metrics
        self.decision_log = decision_log
        self.state = state
        """Rate-based counters and dynamic IP sets; None: rate-based rules never match."""
        self.detect = detect
        """Threat detection: one Observation per finished request; None: off (no cost)."""
        self.clock = clock
        """Wall-clock seconds for rules, IP set expiry and observations (tests pass a fake)."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        with self.ref.use() as gen:
            request_id = self._request_id(request, gen)
            header = gen.config.request_id.header
            target = origin_form(request.raw_path)
            if target is None:
                self.metrics.child(self.metrics.bad_requests, "malformed").inc()
                return error_response(400, request_id, header)
            bound = gen.runtime.route_for(request.headers.get("Host", ""), request.path)
            if bound is None:
                return error_response(404, request_id, header)
            ex = Exchange(request, gen, bound, request_id, target)
            gauge = self.metrics.child(self.metrics.in_flight, ex.route)
            gauge.inc()
            try:
                if self.detect is None:
                    return await self._handle(ex)
                return await self._handle_observed(ex, self.detect)
            finally:
                gauge.dec()

    async def _handle_observed(self, ex: Exchange, detect: DetectService) -> web.StreamResponse:
        """``_handle``, then the finished request handed to the detectors (never waits)."""
        begin = time.monotonic()
        watch = detect.login_watch(ex.request)
        if watch is not None:
            ex.on_chunk = watch.body_sink
        response = await self._handle(ex)
        detect.observe_exchange(ex, response, watch, time.monotonic() - begin, self.clock())
        return response

    def _request_id(self, request: web.Request, gen: Generation) -> str:
        conf = gen.config.request_id
        if conf.trust_incoming and gen.clientip.peer_trusted(request.remote or ""):
            incoming = request.headers.get(conf.header, "")
            if valid_request_id(incoming):
                return incoming
        return new_request_id()

    async def _handle(self, ex: Exchange) -> web.StreamResponse:
        limits = ex.gen.config.limits
        raw = ex.request.raw_headers
        header_bytes = sum(map(len, chain.from_iterable(raw))) + 4 * len(raw)
        if header_bytes > limits.max_header_bytes:
            self.metrics.child(self.metrics.bad_requests, "header_too_large").inc()
            return await self._refuse(ex, 431, "wafproxy:max_header_bytes")
        declared = ex.request.content_length
        if declared is not None and declared > limits.max_body_bytes:
            return await self._too_large(ex)
        snap = await self._snapshot(ex, limits.inspect_body_bytes)
        if snap is None:
            return self._bad_body(ex)
        if len(snap.prefix) > limits.max_body_bytes:
            return await self._too_large(ex)
        if snap.request.body_oversize:
            self.metrics.child(self.metrics.body_oversize, ex.route, "inspect").inc()
        verdict = await self._evaluate(ex, snap.request)
        if verdict.blocked:
            return self._finish(ex, block_response(verdict, ex.request_id, ex.id_header))
        return await self._forward(ex, snap, verdict)

    async def _refuse(self, ex: Exchange, status: int, rule: str) -> web.StreamResponse:
        """Refused by the edge before the web ACL ran: still one log line and one count."""
        if ex.wreq is None:
            await self._snapshot(ex, 0)
        ex.verdict = refused(rule)
        self.metrics.child(self.metrics.requests, ex.route, ex.acl, ActionKind.BLOCK.value).inc()
        response = error_response(status, ex.request_id, ex.id_header)
        response.force_close()
        return self._finish(ex, response)

    async def _too_large(self, ex: Exchange) -> web.StreamResponse:
        self.metrics.child(self.metrics.body_oversize, ex.route, "reject").inc()
        self.metrics.child(self.metrics.bad_requests, "body_too_large").inc()
        return await self._refuse(ex, 413, "wafproxy:max_body_bytes")

    def _bad_body(self, ex: Exchange) -> web.StreamResponse:
        """The body broke off (client gone) or was malformed (400) while we read it."""
        response = error_response(400, ex.request_id, ex.id_header)
        response.force_close()
        if client_gone(ex.request):
            self._log(ex, CLIENT_CLOSED)
            return response
        self.metrics.child(self.metrics.bad_requests, "malformed").inc()
        return self._finish(ex, response)

    async def _snapshot(self, ex: Exchange, inspect_bytes: int) -> Snapshot | None:
        client_ip = ex.gen.clientip.resolve(
            ex.request.remote or "", ex.request.headers.getall(ex.gen.clientip.header, [])
        )
        try:
            snap = await take_snapshot(
                ex.request,
                target=ex.target,
                inspect_bytes=inspect_bytes,
                client_ip=client_ip,
                request_id=ex.request_id,
            )
        except (aiohttp.ClientPayloadError, HttpProcessingError, ConnectionError):
            return None
        ex.wreq = snap.request
        return snap

    async def _evaluate(self, ex: Exchange, wreq: WafRequest) -> Verdict:
        """Evaluate; with shared state, settle the request's rate-based hits in one round trip
        and, if that put a key over its limit, judge the request again on those counts."""
        now = self.clock()
        acl = ex.bound.acl
        state = self.state
        if state is None:
            verdict, seconds = self._run_engine(acl, wreq, now, None, None)
        else:
            view = state.rate_view(now)
            ip_sets = state.ip_sets(now)
            verdict, seconds = self._run_engine(acl, wreq, now, view, ip_sets)
            if state.unsettled(view) and await self._settle(state, view, now):
                verdict, again = self._run_engine(acl, wreq, now, view, ip_sets)
                seconds += again
                if state.unsettled(view):  # keys only the second pass reached
                    await self._settle(state, view, now)
        self.metrics.observe_verdict(ex.route, ex.acl, verdict, seconds)
        if verdict.error is not None:
            self.metrics.child(self.metrics.evaluation_errors, ex.acl).inc()
        ex.verdict = verdict
        return verdict

    @staticmethod
    def _run_engine(
        acl: WebAcl,
        wreq: WafRequest,
        now: float,
        view: RateView | None,
        ip_sets: Mapping[str, IpSet] | None,
    ) -> tuple[Verdict, float]:
        begin = time.perf_counter()
        verdict = evaluate(acl, wreq, now=now, rate=view, ip_sets=ip_sets)
        return verdict, time.perf_counter() - begin

    @staticmethod
    async def _settle(state: SharedState, view: RateView, now: float) -> bool:
        try:
            return await state.settle(view, now)
        except Exception:  # a bug in the state must not fail the request: keep the verdict
            log.exception("state: settling rate-based hits failed")
            return False

    async def _forward(self, ex: Exchange, snap: Snapshot, verdict: Verdict) -> web.StreamResponse:
        request = ex.request
        fwd = ForwardedFor(
            peer=request.remote or "",
            scheme=request.scheme,
            host=request.headers.get("Host", ""),
            host_header=ex.bound.route.host_header,
            request_id_header=ex.id_header,
            request_id=ex.request_id,
            insert_headers=verdict.insert_headers,
        )
        headers = upstream_headers(snap.request.headers, fwd)
        try:
            if is_websocket(request):
                response, outcome = await self._websocket(ex, headers, fwd)
            else:
                response, outcome = await self._exchange(ex, snap, headers, fwd)
        except BodyTooLarge:
            return await self._too_large(ex)
        except ClientBodyError:
            return self._bad_body(ex)
        except UpstreamError as exc:
            return self._upstream_failed(ex, exc)
        except UpgradeRefused as exc:
            return self._finish(ex, error_response(exc.status, ex.request_id, ex.id_header))
        self._after(ex, outcome)
        return response

    async def _exchange(
        self, ex: Exchange, snap: Snapshot, headers: list[Header], fwd: ForwardedFor
    ) -> tuple[web.StreamResponse, Outcome]:
        pool = ex.gen.pools[ex.bound.upstream.name]
        body = None
        if ex.request.can_read_body or snap.prefix:
            rest = None if snap.complete else ex.request.content
            body = RequestBody(snap.prefix, rest, ex.gen.config.limits.max_body_bytes)
        begin = time.monotonic()
        upstream = await open_upstream(pool, ex.request.method, ex.target, headers, fwd, body)
        self.metrics.child(self.metrics.upstream_seconds, ex.route).observe(
            time.monotonic() - begin
        )
        extra = ((ex.id_header, ex.request_id),)
        policy = ex.bound.route.response_headers
        return await relay(
            ex.request,
            upstream,
            extra,
            on_start=lambda s: self._log(ex, s),
            policy=policy,
            on_chunk=ex.on_chunk,
        )

    async def _websocket(
        self, ex: Exchange, headers: list[Header], fwd: ForwardedFor
    ) -> tuple[web.StreamResponse, Outcome]:
        pool = ex.gen.pools[ex.bound.upstream.name]
        return await forward_websocket(
            ex.request, pool, ex.target, headers, fwd, on_start=lambda s: self._log(ex, s)
        )

    def _upstream_failed(self, ex: Exchange, exc: UpstreamError) -> web.StreamResponse:
        response = error_response(exc.kind.status, ex.request_id, ex.id_header)
        if client_gone(ex.request):
            self._log(ex, CLIENT_CLOSED)
            return response
        self.metrics.child(self.metrics.upstream_errors, ex.route, exc.kind.value).inc()
        return self._finish(ex, response)

    def _after(self, ex: Exchange, outcome: Outcome) -> None:
        ex.outcome = outcome
        if outcome.upstream_seconds is not None:
            self.metrics.child(self.metrics.upstream_seconds, ex.route).observe(
                outcome.upstream_seconds
            )
        if outcome.error is not None:
            self.metrics.child(self.metrics.upstream_errors, ex.route, outcome.error.value).inc()
        self._log(ex, CLIENT_CLOSED if outcome.client_gone and not ex.logged else outcome.status)

    def _finish(self, ex: Exchange, response: web.StreamResponse) -> web.StreamResponse:
        self._log(ex, response.status)
        return response

    def _log(self, ex: Exchange, status: int) -> None:
        if ex.logged or ex.wreq is None or ex.verdict is None:
            return
        ex.logged = True
        self.decision_log.record(
            ex.wreq,
            ex.verdict,
            acl=ex.acl,
            status=status,
            rate_based=[match.log_entry() for match in ex.verdict.rate_based],
        )
