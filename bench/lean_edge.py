"""A measuring device, not a product: the web ACL engine behind a minimal HTTP/1.1 edge.

Why: wafproxy's own edge (aiohttp's server, the request id, metrics, the decision log, routes)
costs about as much per request as the bare aiohttp proxy it is compared with, so every
microsecond of the engine shows up in the ratio. This script answers what the shipped rules would
reach behind an edge that costs almost nothing: wafproxy's lean HTTP/1.1 server
(``wafproxy.http1``: llhttp on a plain asyncio protocol, with its head limits and deadlines)
takes the client's request, the engine evaluates it exactly as the proxy does, and wafproxy's
own upstream client (``upstream_http``) forwards it. It has none of the proxy's other work
(routes, request ids, metrics, header rewriting, streaming, error handling beyond a 502): run it
only on loopback, for ``throughput.py`` (systems ``lean-empty``, ``lean-default``,
``lean-default-log``).
``--decision-log FILE`` adds the proxy's own decision log (one line per request, as wafproxy
writes it), the one per-request cost of the proxy that an edge of any kind keeps.

    python bench/lean_edge.py --upstream http://127.0.0.1:9000 --port 8081 [--rules FILE]
        [--decision-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import uvloop

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import Verdict, WebAcl
from wafproxy.config.model import Target
from wafproxy.decisionlog import DecisionLog
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.http1 import Http1Server, Reply, Request, ServerLimits
from wafproxy.proxy_headers import HOP_BY_HOP
from wafproxy.request import Header, WafRequest
from wafproxy.upstream_http import (
    ConnectFailed,
    ConnectionPool,
    Timeouts,
    UpstreamProtocolError,
    exchange,
)

NOT_COPIED = HOP_BY_HOP | {"proxy-authenticate", "proxy-authorization", "content-length"}
"""Hop-by-hop headers (wafproxy's list), and the length, which is set again for what is sent."""


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data


class Edge:
    def __init__(self, acl: WebAcl, target: Target, log: DecisionLog | None) -> None:
        self.acl = acl
        self.target = target
        self.pool = ConnectionPool(0, 5.0)
        self.log = log

    async def handle(self, request: Request, reply: Reply) -> None:
        body = await request.body.read()
        path, _, query = request.target.partition("?")
        headers: tuple[Header, ...] = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
        )
        wreq = WafRequest(
            method=request.method,
            uri_path=path,
            query_string=query,
            headers=headers,
            body=body,
            body_size=len(body),
            client_ip=request.peer,
            source_ip=request.peer,
        )
        verdict = evaluate(self.acl, wreq)
        if verdict.blocked:
            self.record(wreq, verdict, 403)
            reply.send(403, [], b"Request blocked\n")
            return
        forwarded = [h for h in headers if h[0].lower() not in NOT_COPIED]
        forwarded.append(("X-Forwarded-For", request.peer))
        if body:
            forwarded.append(("Content-Length", str(len(body))))
        try:
            upstream = await exchange(
                self.pool, self.target, request.method, request.target, forwarded,
                Body(body) if body else None, Timeouts(5.0, 30.0, 60.0), True,
            )  # fmt: skip
            chunks = []
            while chunk := await upstream.readany():
                chunks.append(chunk)
            upstream.release()
        except (OSError, TimeoutError, ConnectFailed, UpstreamProtocolError):
            self.record(wreq, verdict, 502)
            reply.close_after()
            reply.send(502, [], b"bad gateway\n")
            return
        self.record(wreq, verdict, upstream.status)
        answer = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in upstream.raw_headers
            if name.decode("latin-1").lower() not in NOT_COPIED
        ]
        reply.send(upstream.status, answer, b"".join(chunks), upstream.reason)

    def record(self, wreq: WafRequest, verdict: Verdict, status: int) -> None:
        if self.log is not None:
            self.log.record(wreq, verdict, acl=self.acl.name, status=status)


def load_acl(rules: Path | None) -> WebAcl:
    acls = load_rule_files([rules] if rules else default_rule_files()).acls
    return acls["default"] if "default" in acls else next(iter(acls.values()))


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.removeprefix("http://").rstrip("/").partition(":")
    log = None
    if args.decision_log:
        log = DecisionLog(DecisionLogConfig(destination=str(args.decision_log)))
    edge = Edge(load_acl(args.rules), Target("http", host, int(port)), log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        Http1Server(edge.handle, ServerLimits()), args.host, args.port
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rules", type=Path, help="a rule file (default: the shipped rules)")
    parser.add_argument("--decision-log", type=Path, help="write wafproxy's decision log here")
    uvloop.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
