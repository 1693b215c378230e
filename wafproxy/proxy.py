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
from itertools import chain
from typing import TYPE_CHECKING
from urllib.parse import unquote

from wafproxy.acl.engine import evaluate
from wafproxy.acl.ipset import IpSet
from wafproxy.acl.model import ActionKind, CustomResponse, RateView, Verdict, WebAcl
from wafproxy.acl.together import Job
from wafproxy.config.runtime import BoundRoute
from wafproxy.decisionlog import DecisionLog
from wafproxy.evaluation_batches import EvaluationBatches
from wafproxy.http1 import BodyTimeout, MalformedBody, Reply, Request, date_header
from wafproxy.http1.reply import phrase
from wafproxy.metrics import Metrics
from wafproxy.proxy_headers import (
    SERVER_NAME,
    ForwardedFor,
    decode_raw,
    header_value,
    header_values,
    upstream_headers,
)
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
CLIENT_CLOSED = 499
"""Status recorded (never sent) when the client went away first, as nginx does."""
SET_BY_US = frozenset({"content-length", "transfer-encoding", "connection", "content-type", "date"})
"""Header names a custom block response's ``headers`` cannot set: the reply frames the answer,
``content_type`` is its own option, the Date is the clock's."""


def new_request_id() -> str:
    """128 random bits as hex: unique, not a secret (uuid4 costs more for the same bits)."""
    return f"{random.getrandbits(128):032x}"


def valid_request_id(value: str) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and set(value) <= REQUEST_ID_CHARS


def error_answer(status: int, request_id: str, header: str) -> tuple[list[Header], bytes]:
    """A plain error with the request id in a header and in the body; nothing else."""
    text = f"{status} {phrase(status)}\nrequest id: {request_id}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"), (header, request_id),
        ("Server", SERVER_NAME), ("Date", date_header()),
    ]  # fmt: skip
    return headers, text


def send_error(reply: Reply, status: int, request_id: str, header: str) -> Outcome:
    headers, text = error_answer(status, request_id, header)
    reply.send(status, headers, text)
    return Outcome(status=status, bytes_out=len(text))


def refused(rule: str) -> Verdict:
    """The verdict logged for a request the edge refused before the web ACL ran."""
    return Verdict(action=ActionKind.BLOCK, terminating_rule=rule)


def send_block(reply: Reply, verdict: Verdict, request_id: str, header: str) -> Outcome:
    custom = verdict.response or CustomResponse()
    body = custom.body or f"Request blocked.\nrequest id: {request_id}\n".encode()
    skip = SET_BY_US | {header.lower()}
    headers = [(name, value) for name, value in custom.headers if name.lower() not in skip]
    headers += [("Content-Type", custom.content_type), (header, request_id)]
    if not header_value(headers, "server"):
        headers.append(("Server", SERVER_NAME))
    headers.append(("Date", date_header()))
    reply.send(custom.status, headers, body)
    return Outcome(status=custom.status, bytes_out=len(body))


@dataclass
class Exchange:
    """One request's state as it moves through the handler."""

    request: Request
    reply: Reply
    headers: tuple[Header, ...]
    """The request's headers, decoded."""
    host: str
    path: str
    """The decoded request path (routing and detection's login routes use it)."""
    gen: Generation
    bound: BoundRoute
    request_id: str
    target: str
    wreq: WafRequest | None = None
    verdict: Verdict | None = None
    logged: bool = False
    body_timed_out: bool = False
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
    """The proxy listener's handler: one call per request, answered through its ``Reply``."""

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
        self.evaluations = EvaluationBatches()

    def server_error(self, status: int) -> tuple[list[Header], bytes]:
        """The listener's own answer to what never reached ``handle`` (a head that does not
        parse, too large) or failed in it: a request id, as every answer of ours has."""
        return error_answer(status, new_request_id(), self.ref.current.config.request_id.header)

    async def handle(self, request: Request, reply: Reply) -> None:
        with self.ref.use() as gen:
            headers = tuple(decode_raw(request.raw_headers))
            request_id = self._request_id(request.peer, headers, gen)
            header = gen.config.request_id.header
            target = origin_form(request.target)
            if target is None:
                self.metrics.child(self.metrics.bad_requests, "malformed").inc()
                send_error(reply, 400, request_id, header)
                return
            host = header_value(headers, "host")
            path = unquote(target.partition("?")[0])
            bound = gen.runtime.route_for(host, path)
            if bound is None:
                send_error(reply, 404, request_id, header)
                return
            ex = Exchange(request, reply, headers, host, path, gen, bound, request_id, target)
            gauge = self.metrics.child(self.metrics.in_flight, ex.route)
            gauge.inc()
            try:
                if self.detect is None:
                    await self._handle(ex)
                else:
                    await self._handle_observed(ex, self.detect)
            finally:
                gauge.dec()

    async def _handle_observed(self, ex: Exchange, detect: DetectService) -> None:
        """``_handle``, then the finished request handed to the detectors (never waits)."""
        begin = time.monotonic()
        watch = detect.login_watch(ex.request.method, ex.path)
        if watch is not None:
            ex.on_chunk = watch.body_sink
        outcome = await self._handle(ex)
        detect.observe_exchange(ex, outcome, watch, time.monotonic() - begin, self.clock())

    def _request_id(self, peer: str, headers: tuple[Header, ...], gen: Generation) -> str:
        conf = gen.config.request_id
        if conf.trust_incoming and gen.clientip.peer_trusted(peer):
            incoming = header_value(headers, conf.header.lower())
            if valid_request_id(incoming):
                return incoming
        return new_request_id()

    async def _handle(self, ex: Exchange) -> Outcome:
        limits = ex.gen.config.limits
        raw = ex.request.raw_headers
        header_bytes = sum(map(len, chain.from_iterable(raw))) + 4 * len(raw)
        if header_bytes > limits.max_header_bytes:
            self.metrics.child(self.metrics.bad_requests, "header_too_large").inc()
            return await self._refuse(ex, 431, "wafproxy:max_header_bytes")
        declared = ex.request.body.expected
        if declared is not None and declared > limits.max_body_bytes:
            return await self._too_large(ex)
        snap = await self._snapshot(ex, limits.inspect_body_bytes)
        if snap is None:
            return await self._bad_body(ex, timed_out=ex.body_timed_out)
        if len(snap.prefix) > limits.max_body_bytes:
            return await self._too_large(ex)
        if snap.request.body_oversize:
            self.metrics.child(self.metrics.body_oversize, ex.route, "inspect").inc()
        verdict = await self._evaluate(ex, snap.request)
        if verdict.blocked:
            return self._finish(ex, send_block(ex.reply, verdict, ex.request_id, ex.id_header))
        return await self._forward(ex, snap, verdict)

    async def _refuse(self, ex: Exchange, status: int, rule: str) -> Outcome:
        """Refused by the edge before the web ACL ran: still one log line and one count."""
        if ex.wreq is None:
            await self._snapshot(ex, 0)
        ex.verdict = refused(rule)
        self.metrics.child(self.metrics.requests, ex.route, ex.acl, ActionKind.BLOCK.value).inc()
        ex.reply.close_after()
        return self._finish(ex, send_error(ex.reply, status, ex.request_id, ex.id_header))

    async def _too_large(self, ex: Exchange) -> Outcome:
        self.metrics.child(self.metrics.body_oversize, ex.route, "reject").inc()
        self.metrics.child(self.metrics.bad_requests, "body_too_large").inc()
        return await self._refuse(ex, 413, "wafproxy:max_body_bytes")

    async def _bad_body(self, ex: Exchange, timed_out: bool) -> Outcome:
        """The body broke off (client gone), was malformed (400) or stalled (408: the
        listener's sweep counted it) while we read it. Read before the web ACL ran, it is
        logged as the edge's refusal."""
        rule = "wafproxy:body_read_timeout" if timed_out else "wafproxy:malformed_body"
        if ex.reply.client_gone:
            if ex.verdict is None:
                await self._snapshot(ex, 0)
                ex.verdict = refused(rule)
            self._log(ex, CLIENT_CLOSED)
            return Outcome(status=CLIENT_CLOSED, client_gone=True)
        if not timed_out:
            self.metrics.child(self.metrics.bad_requests, "malformed").inc()
        status = 408 if timed_out else 400
        if ex.verdict is None:
            return await self._refuse(ex, status, rule)
        ex.reply.close_after()
        return self._finish(ex, send_error(ex.reply, status, ex.request_id, ex.id_header))

    async def _snapshot(self, ex: Exchange, inspect_bytes: int) -> Snapshot | None:
        request = ex.request
        clientip = ex.gen.clientip
        client_ip = clientip.resolve(
            request.peer, header_values(ex.headers, clientip.header.lower())
        )
        try:
            snap = await take_snapshot(
                request,
                headers=ex.headers,
                target=ex.target,
                inspect_bytes=inspect_bytes,
                client_ip=client_ip,
                request_id=ex.request_id,
                host=ex.host,
            )
        except BodyTimeout:
            ex.body_timed_out = True
            return None
        except (MalformedBody, ConnectionError):
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
            verdict, seconds = await self.evaluations.evaluate(Job(acl, wreq, now))
        else:
            view = state.rate_view(now)
            ip_sets = state.ip_sets(now)
            job = Job(acl, wreq, now, view, ip_sets)
            verdict, seconds = await self.evaluations.evaluate(job)
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

    async def _forward(self, ex: Exchange, snap: Snapshot, verdict: Verdict) -> Outcome:
        request = ex.request
        fwd = ForwardedFor(
            peer=request.peer,
            scheme=request.scheme,
            host=ex.host,
            host_header=ex.bound.route.host_header,
            request_id_header=ex.id_header,
            request_id=ex.request_id,
            insert_headers=verdict.insert_headers,
        )
        headers = upstream_headers(snap.request.headers, fwd)
        try:
            if request.upgrade and is_websocket(request.method, ex.headers):
                outcome = await self._websocket(ex, headers, fwd)
            else:
                outcome = await self._exchange(ex, snap, headers, fwd)
        except BodyTooLarge:
            return await self._too_large(ex)
        except ClientBodyError as exc:
            return await self._bad_body(ex, timed_out=exc.timed_out)
        except UpstreamError as exc:
            return self._upstream_failed(ex, exc)
        except UpgradeRefused as exc:
            return self._finish(ex, send_error(ex.reply, exc.status, ex.request_id, ex.id_header))
        self._after(ex, outcome)
        return outcome

    async def _exchange(
        self, ex: Exchange, snap: Snapshot, headers: list[Header], fwd: ForwardedFor
    ) -> Outcome:
        pool = ex.gen.pools[ex.bound.upstream.name]
        body = None
        if ex.request.body.expected != 0 or snap.prefix:
            rest = None if snap.complete else ex.request.body
            body = RequestBody(snap.prefix, rest, ex.gen.config.limits.max_body_bytes)
        begin = time.monotonic()
        upstream = await open_upstream(pool, ex.request.method, ex.target, headers, fwd, body)
        self.metrics.child(self.metrics.upstream_seconds, ex.route).observe(
            time.monotonic() - begin
        )
        extra = ((ex.id_header, ex.request_id),)
        policy = ex.bound.route.response_headers
        return await relay(
            ex.reply,
            upstream,
            extra,
            on_start=lambda s: self._log(ex, s),
            policy=policy,
            on_chunk=ex.on_chunk,
        )

    async def _websocket(self, ex: Exchange, headers: list[Header], fwd: ForwardedFor) -> Outcome:
        pool = ex.gen.pools[ex.bound.upstream.name]
        return await forward_websocket(
            ex.reply, pool, ex.target, headers, fwd, on_start=lambda s: self._log(ex, s)
        )

    def _upstream_failed(self, ex: Exchange, exc: UpstreamError) -> Outcome:
        if ex.reply.client_gone:
            self._log(ex, CLIENT_CLOSED)
            return Outcome(status=CLIENT_CLOSED, client_gone=True)
        self.metrics.child(self.metrics.upstream_errors, ex.route, exc.kind.value).inc()
        return self._finish(ex, send_error(ex.reply, exc.kind.status, ex.request_id, ex.id_header))

    def _after(self, ex: Exchange, outcome: Outcome) -> None:
        if outcome.upstream_seconds is not None:
            self.metrics.child(self.metrics.upstream_seconds, ex.route).observe(
                outcome.upstream_seconds
            )
        if outcome.error is not None:
            self.metrics.child(self.metrics.upstream_errors, ex.route, outcome.error.value).inc()
        self._log(ex, CLIENT_CLOSED if outcome.client_gone and not ex.logged else outcome.status)

    def _finish(self, ex: Exchange, outcome: Outcome) -> Outcome:
        self._log(ex, outcome.status)
        return outcome

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
