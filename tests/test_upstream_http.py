"""The upstream hop's own HTTP/1.1 client, against upstreams that answer with scripted bytes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
import trustme
from aiohttp import web

from wafproxy.upstream_http import request_head

if TYPE_CHECKING:
    from conftest import StartProxy

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A raw upstream: counts connections and the most it had open at once."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.open = 0
        self.most_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def scripted(answer: Answer) -> AsyncIterator[tuple[Scripted, str]]:
    upstream = Scripted(answer)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield upstream, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def once(response: bytes) -> Answer:
    """Answer one request with ``response``, then close."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()

    return answer


def keep_alive(body: bytes, delay: float = 0.0) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    return answer


def targets(url: str, **options: object) -> dict[str, object]:
    return {"upstreams": {"app": {"targets": [url], **options}}}


async def fetch(
    client: aiohttp.ClientSession, url: str, method: str = "GET"
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with client.request(method, url) as response:
        return response.status, await response.read(), response.headers


async def test_interim_answers_are_dropped(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    answer = once(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal"
    )
    async with scripted(answer) as (_, url):
        proxy = await start_proxy(targets(url))
        status, body, headers = await fetch(client, proxy.url + "/")
    assert (status, body, headers["X-Final"]) == (200, b"final", "yes")  # type: ignore[index]


async def test_a_body_ended_by_closing_the_connection_arrives_whole(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    async with scripted(once(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 300_000)) as (
        _,
        url,
    ):
        proxy = await start_proxy(targets(url))
        status, body, _ = await fetch(client, proxy.url + "/")
    assert (status, len(body)) == (200, 300_000)


async def test_a_chunked_answer_is_passed_on_whole(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    async with scripted(once(chunked)) as (_, url):
        proxy = await start_proxy(targets(url))
        status, body, _ = await fetch(client, proxy.url + "/")
    assert (status, body) == (200, b"hello world")


@pytest.mark.parametrize(
    "answer",
    [
        b"HELLO THERE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * (70 * 1024) + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=["not-http", "huge-header", "unasked-upgrade"],
)
async def test_a_broken_answer_is_502_and_counted_as_protocol(
    start_proxy: StartProxy, client: aiohttp.ClientSession, answer: bytes
) -> None:
    async with scripted(once(answer)) as (_, url):
        proxy = await start_proxy(targets(url))
        status, _, _ = await fetch(client, proxy.url + "/")
        assert status == 502
        assert proxy.server.metrics is not None
        exposition = proxy.server.metrics.exposition()[0].decode()
    assert 'wafproxy_upstream_errors_total{kind="protocol",route="' in exposition


async def test_sequential_requests_reuse_one_connection(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    async with scripted(keep_alive(b"ok")) as (upstream, url):
        proxy = await start_proxy(targets(url))
        for _ in range(5):
            assert (await fetch(client, proxy.url + "/"))[:2] == (200, b"ok")
    assert upstream.connections == 1


async def test_pool_size_caps_the_connections_to_an_upstream(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    async with scripted(keep_alive(b"ok", delay=0.05)) as (upstream, url):
        proxy = await start_proxy(targets(url, pool_size=2))
        results = await asyncio.gather(*(fetch(client, proxy.url + "/") for _ in range(6)))
    assert [r[:2] for r in results] == [(200, b"ok")] * 6
    assert upstream.most_open == 2


async def test_head_answer_keeps_its_length_and_the_next_request_works(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            body = b"" if head.startswith(b"HEAD") else b"0123456789"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + body)
            await writer.drain()

    async with scripted(answer) as (_, url):
        proxy = await start_proxy(targets(url))
        status, body, headers = await fetch(client, proxy.url + "/", "HEAD")
        assert (status, body, headers["Content-Length"]) == (200, b"", "10")  # type: ignore[index]
        assert (await fetch(client, proxy.url + "/"))[:2] == (200, b"0123456789")


@asynccontextmanager
async def tls_upstream(ca: trustme.CA) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def secret(_: web.Request) -> web.Response:
        return web.Response(text="secret")

    app = web.Application()
    app.router.add_get("/", secret)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_an_upstream_with_an_untrusted_certificate_is_refused(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    async with tls_upstream(trustme.CA()) as url:
        proxy = await start_proxy(targets(url))
        status, body, _ = await fetch(client, proxy.url + "/")
    assert status == 502
    assert b"secret" not in body


async def test_an_upstream_certificate_from_the_configured_ca_is_trusted(
    start_proxy: StartProxy, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with tls_upstream(ca) as url:
        trusted = await start_proxy(targets(url, ca_file=str(ca_file)))
        unchecked = await start_proxy(targets(url, tls_verify=False))
        assert (await fetch(client, trusted.url + "/"))[:2] == (200, b"secret")
        assert (await fetch(client, unchecked.url + "/"))[:2] == (200, b"secret")


def test_request_head_refuses_a_header_that_would_split_it() -> None:
    assert request_head("GET", "/a?b", [("Host", "h"), ("X-A", "1")], chunked=False) == (
        b"GET /a?b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
    )
    assert request_head("POST", "/", [("Host", "h")], chunked=True).endswith(
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    for bad in ("a\r\nX-Evil: 1", "a\nb", "a\rb"):
        with pytest.raises(ValueError, match="CR or LF"):
            request_head("GET", "/", [("X-A", bad)], chunked=False)
