"""A measuring device, not a product: the web ACL engine behind a minimal HTTP/1.1 edge.

Why: wafproxy's own edge (aiohttp's server, the request id, metrics, the decision log, routes)
costs about as much per request as the bare aiohttp proxy it is compared with, so every
microsecond of the engine shows up in the ratio. This script answers what the shipped rules would
reach behind an edge that costs almost nothing: llhttp (httptools) parses the client's request
on a plain asyncio protocol, the engine evaluates it exactly as the proxy does, and wafproxy's
own upstream client (``upstream_http``) forwards it. It has none of the proxy's protections
(limits, deadlines, metrics, routes, error handling beyond a 502): run it only on loopback, for
``throughput.py`` (systems ``lean-empty``, ``lean-default``, ``lean-default-log``).
``--decision-log FILE`` adds the proxy's own decision log (one line per request, as wafproxy
writes it), the one per-request cost of the proxy that an edge of any kind keeps.

    python bench/lean_edge.py --upstream http://127.0.0.1:9000 --port 8081 [--rules FILE]
        [--decision-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httptools
import uvloop

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import Verdict, WebAcl
from wafproxy.config.model import Target
from wafproxy.decisionlog import DecisionLog
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.request import Header, WafRequest
from wafproxy.upstream_http import ConnectionPool, Timeouts, exchange

HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"content-length",
    }
)  # fmt: skip
BLOCKED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 16\r\n\r\nRequest blocked\n"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad gateway\n"
)


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def chunks(self):  # type: ignore[no-untyped-def]
        yield self.data


class Edge:
    def __init__(self, acl: WebAcl, target: Target, log: DecisionLog | None) -> None:
        self.acl = acl
        self.target = target
        self.pool = ConnectionPool(0, 5.0)
        self.log = log


class ClientConnection(asyncio.Protocol):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[tuple[bytes, list[tuple[bytes, bytes]], bytes, bool]] = (
            asyncio.Queue()
        )
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        item = (self.url, self.headers, b"".join(self.body), self.parser.should_keep_alive())
        self.url, self.headers, self.body = b"", [], []
        self.queue.put_nowait(item)

    async def serve(self) -> None:
        transport = self.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")[0]
        while True:
            url, raw, body, keep_alive = await self.queue.get()
            method = self.parser.get_method().decode("ascii")
            response = await self.answer(method, url, raw, body, peer)
            transport.write(response)
            if not keep_alive:
                transport.close()
                return

    async def answer(
        self, method: str, url: bytes, raw: list[tuple[bytes, bytes]], body: bytes, peer: str
    ) -> bytes:
        target = url.decode("latin-1")
        path, _, query = target.partition("?")
        headers: tuple[Header, ...] = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw
        )
        wreq = WafRequest(
            method=method,
            uri_path=path,
            query_string=query,
            headers=headers,
            body=body,
            body_size=len(body),
            client_ip=peer,
            source_ip=peer,
        )
        verdict = evaluate(self.edge.acl, wreq)
        if verdict.blocked:
            self.record(wreq, verdict, 403)
            return BLOCKED
        forwarded = [
            h for h, (name, _) in zip(headers, raw, strict=True) if name.lower() not in HOP_BY_HOP
        ]
        forwarded.append(("X-Forwarded-For", peer))
        if body:
            forwarded.append(("Content-Length", str(len(body))))
        try:
            upstream = await exchange(
                self.edge.pool, self.edge.target, method, target, forwarded,
                Body(body) if body else None, Timeouts(5.0, 30.0, 60.0), True,
            )  # fmt: skip
            chunks = []
            while chunk := await upstream.readany():
                chunks.append(chunk)
            upstream.release()
        except (OSError, TimeoutError):
            self.record(wreq, verdict, 502)
            return BAD_GATEWAY
        self.record(wreq, verdict, upstream.status)
        content = b"".join(chunks)
        lines = [b"HTTP/1.1 %d %s" % (upstream.status, upstream.reason.encode("latin-1"))]
        lines += [
            name + b": " + value
            for name, value in upstream.raw_headers
            if name.lower() not in HOP_BY_HOP
        ]
        lines.append(b"Content-Length: %d" % len(content))
        return b"\r\n".join(lines) + b"\r\n\r\n" + content

    def record(self, wreq: WafRequest, verdict: Verdict, status: int) -> None:
        if self.edge.log is not None:
            self.edge.log.record(wreq, verdict, acl=self.edge.acl.name, status=status)


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
    server = await loop.create_server(lambda: ClientConnection(edge), args.host, args.port)
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
