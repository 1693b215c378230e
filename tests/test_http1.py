"""The proxy listener's HTTP/1.1 server (wafproxy.http1), over real loopback sockets: aiohttp's
client for what is well formed, raw bytes for what a client library would not send."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager

import aiohttp
import pytest
import trustme
import uvloop

from wafproxy.http1 import Connection, Handler, Http1Server, Reply, Request, ServerLimits

SMALL = ServerLimits(
    max_header_bytes=2048, max_headers=20, header_timeout=0.3, keepalive_timeout=0.6,
    body_high_water=64 * 1024, linger_timeout=0.4, body_timeout=0.4,
)  # fmt: skip


async def echo(request: Request, reply: Reply) -> None:
    """Answers with what it saw; ``/stream`` answers in three written pieces."""
    body = await request.body.read()
    if request.target.startswith("/stream"):
        await reply.start(200, [("Content-Type", "text/plain")], None)
        for piece in (b"one ", b"two ", b"three"):
            await reply.write(piece)
        await reply.end()
        return
    if request.target.startswith("/fail"):
        raise RuntimeError("a bug in the handler")
    digest = hashlib.sha256(body).hexdigest().encode()
    text = b"%s %s %d %s" % (request.method.encode(), request.target.encode(), len(body), digest)
    seen = [("X-Peer", request.peer), ("X-Scheme", request.scheme)]
    reply.send(200, [("Content-Type", "text/plain"), *seen], text)


@asynccontextmanager
async def serving(
    limits: ServerLimits = SMALL, handler: Handler = echo, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[str]]]:
    """The port, and the reasons of the bad requests; ``bad`` also counts connections made."""
    bad: list[str] = []
    server = Http1Server(handler, limits, bad.append)

    def connection() -> Connection:
        bad.append("connection")
        return server()

    loop = asyncio.get_running_loop()
    listener = await loop.create_server(connection, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield port, bad
    finally:
        listener.close()
        await server.shutdown(1.0)
        await listener.wait_closed()


async def exchange(port: int, data: bytes, wait: float = 2.0) -> bytes:
    """Send raw bytes, read until the server closes (or ``wait`` passes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = b""
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                out += chunk
    except TimeoutError:
        out += b"<still open>"
    writer.close()
    return out


async def test_keep_alive_requests_with_and_without_bodies() -> None:
    async with (
        serving() as (port, made),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/a?b=c") as response:
                assert response.status == 200
                assert (await response.text()).startswith("GET /a?b=c 0 ")
                assert response.headers["X-Peer"] == "127.0.0.1"
                assert response.headers["X-Scheme"] == "http"
        body = bytes(range(256)) * 65536  # 16 MB: more than the socket buffers hold, so reading
        # pauses above the high water mark and must resume as the handler reads
        upload = aiohttp.BytesIOPayload(io.BytesIO(body))
        async with session.post(f"http://127.0.0.1:{port}/up", data=upload) as response:
            expected = f"POST /up {len(body)} {hashlib.sha256(body).hexdigest()}"
            assert await response.text() == expected
        assert made == ["connection"]  # one connection, kept alive


async def test_chunked_request_body_and_streamed_answer() -> None:
    async with serving() as (port, _):
        raw = await exchange(
            port,
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert raw.endswith(b"POST /x 11 " + hashlib.sha256(b"hello world").hexdigest().encode())
        raw = await exchange(port, b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head and b"Connection: close" in head
        assert body == b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n"


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving() as (port, _):
        raw = await exchange(
            port,
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        bodies = [part.split(b" ")[1] for part in raw.split(b"\r\n\r\n")[1:]]
        assert bodies == [b"/1", b"/2", b"/3"]


async def test_http10_closes_unless_kept_alive_and_head_gets_no_body() -> None:
    async with serving() as (port, _):
        raw = await exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in raw
        assert not raw.endswith(b"<still open>")
        raw = await exchange(port, b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0.3)
        assert b"Connection: keep-alive" in raw and raw.endswith(b"<still open>")
        raw = await exchange(port, b"HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"Content-Length: " in head and body == b""


EMPTY_DIGEST = hashlib.sha256(b"").hexdigest().encode()
BOTH = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
TWO_LENGTHS = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"


REFUSED_HEADS = {
    "header": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", 431),
    "url": (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 431),
    "count": (b"GET / HTTP/1.1\r\n" + b"X-N: 1\r\n" * 21 + b"\r\n", 431),
    "no-colon": (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", 400),
    "method": (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "cl-and-te": (BOTH, 400),
    "two-lengths": (TWO_LENGTHS, 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    "bare-lf": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "te-space": (b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    "te-not-last": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
    "cl-plus": (b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400),
    "nul": (b"GET / HTTP/1.1\r\nX-A: b\x00c\r\n\r\n", 400),
    "http-0.9": (b"GET /\r\n\r\n", 400),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
}
"""Heads that must never reach a handler: oversize (431), and malformed or smuggling-shaped
(400: obsolete line folding, bare LF, a space before the colon, a Transfer-Encoding whose last
coding is not chunked, both framings or two lengths, HTTP/0.9 and HTTP/2 on this port)."""


@pytest.mark.parametrize(
    ("request_bytes", "status"), list(REFUSED_HEADS.values()), ids=list(REFUSED_HEADS)
)
async def test_unparsable_heads_are_refused_and_closed(request_bytes: bytes, status: int) -> None:
    async with serving() as (port, bad):
        raw = await exchange(port, request_bytes)
        assert raw.startswith(b"HTTP/1.1 %d " % status)
        assert b"Connection: close" in raw and not raw.endswith(b"<still open>")
        assert bad == ["connection", "header_too_large" if status == 431 else "malformed"]


async def test_pipelined_bodies_over_the_high_water_mark_are_all_read() -> None:
    """Reading pauses while the queued requests' bodies together exceed the mark, and resumes
    as the handler reads them."""
    body = b"x" * 40_000
    one = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 40000\r\n\r\n" + body
    async with serving() as (port, _):
        raw = await exchange(port, one * 4 + b"GET /end HTTP/1.1\r\nConnection: close\r\n\r\n")
        digest = hashlib.sha256(body).hexdigest().encode()
        assert raw.count(b"POST /p 40000 " + digest) == 4 and raw.endswith(
            b"GET /end 0 " + EMPTY_DIGEST
        )


async def test_a_body_that_breaks_its_framing_gets_a_400() -> None:
    async with serving() as (port, bad):
        raw = await exchange(
            port, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        assert raw.startswith(b"HTTP/1.1 400 ") and not raw.endswith(b"<still open>")
        assert bad == ["connection", "malformed"]


async def test_requests_before_a_bad_one_are_answered_first() -> None:
    async with serving() as (port, bad):
        raw = await exchange(
            port, b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost a\r\n\r\n"
        )
        first, second = raw.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200 ") and first.endswith(b"GET /1 0 " + EMPTY_DIGEST)
        assert second.startswith(b"400 ") and b"Connection: close" in second
        assert bad == ["connection", "malformed"]


async def test_a_body_left_unread_is_dropped_or_ends_the_connection() -> None:
    async def ignore_body(request: Request, reply: Reply) -> None:
        reply.send(200, [], b"ok")

    async with serving(handler=ignore_body) as (port, _):
        post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
        raw = await exchange(port, post + b"abcde" + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0.3)
        assert raw.count(b"HTTP/1.1 200 ") == 2 and raw.endswith(b"<still open>")
        started = asyncio.get_running_loop().time()
        raw = await exchange(port, post + b"ab", wait=2.0)  # the rest never comes
        assert raw.startswith(b"HTTP/1.1 200 ") and not raw.endswith(b"<still open>")
        assert asyncio.get_running_loop().time() - started >= SMALL.linger_timeout - 0.05
        expecting = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
        raw = await exchange(port, expecting + b"\r\n", wait=0.2)  # closed at once, no 100
        assert raw.startswith(b"HTTP/1.1 200 ") and not raw.endswith(b"<still open>")


async def test_slow_heads_and_idle_connections_are_closed() -> None:
    async with serving() as (port, bad):
        started = asyncio.get_running_loop().time()
        raw = await exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n", wait=3.0)
        assert raw == b"" and asyncio.get_running_loop().time() - started < 1.5
        assert bad == ["connection", "timeout"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await reader.readuntil(b" 0 ")
        await reader.read(64)
        async with asyncio.timeout(3.0):
            assert await reader.read() == b""  # closed after keepalive_timeout of silence
        writer.close()


async def test_a_failing_handler_gets_a_500_and_the_connection_closes() -> None:
    async with serving() as (port, _):
        raw = await exchange(port, b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 500 ") and not raw.endswith(b"<still open>")


async def test_expect_100_continue_is_answered_when_the_body_is_read() -> None:
    async def ignore_body(request: Request, reply: Reply) -> None:
        reply.send(403, [], b"no")

    head = b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    async with serving() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        async with asyncio.timeout(2):
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.close()
    async with serving(handler=ignore_body) as (port, _):
        raw = await exchange(port, head)  # answered without a 100: the body is never sent
        assert raw.startswith(b"HTTP/1.1 403 ") and b"100 Continue" not in raw


async def test_a_tls_listener_says_https() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with (
        serving(tls=server_context) as (port, _),
        aiohttp.ClientSession() as session,
        session.get(f"https://localhost:{port}/s", ssl=client_context) as response,
    ):
        assert response.headers["X-Scheme"] == "https"
        assert (await response.text()).startswith("GET /s 0 ")


async def test_a_header_that_would_split_the_head_is_never_sent() -> None:
    async def inject(request: Request, reply: Reply) -> None:
        reply.send(200, [("X-Echo", "a\r\nSet-Cookie: stolen=1")], b"ok")

    async with serving(handler=inject) as (port, _):
        raw = await exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 500 ") and b"stolen" not in raw


async def test_an_upgrade_hands_the_connection_over() -> None:
    async def upgrade(request: Request, reply: Reply) -> None:
        assert request.upgrade
        reply.send(101, [("Upgrade", "echo"), ("Connection", "Upgrade")], b"")
        transport, tail = reply.detach()
        transport.write(b"tail=" + tail)
        transport.close()

    async with serving(handler=upgrade) as (port, _):
        raw = await exchange(
            port, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nxyz"
        )
        assert raw.startswith(b"HTTP/1.1 101 ")
        assert raw.endswith(b"\r\n\r\ntail=xyz")
    async with serving() as (port, _):  # echo answers it as a plain request: refused, closed
        raw = await exchange(
            port, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nxyz"
        )
        assert raw.startswith(b"HTTP/1.1 200 ") and not raw.endswith(b"<still open>")


async def test_an_upgrade_request_with_a_body_is_served_as_a_plain_request() -> None:
    """llhttp stops parsing at an upgrade (``Upgrade: h2c`` on a POST, say): the body it
    declared still reaches the handler, whether it came with the head or after it."""
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    async with serving() as (port, _):
        raw = await exchange(port, head + b"Content-Length: 5\r\n\r\nhelloGARBAGE")
        digest = hashlib.sha256(b"hello").hexdigest().encode()
        assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"POST /up 5 " + digest)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b"Content-Length: 5\r\n\r\nhe")
        await asyncio.sleep(0.05)
        writer.write(b"llo")
        async with asyncio.timeout(2.0):
            assert (await reader.read()).endswith(b"POST /up 5 " + digest)  # then closed
        writer.close()
        raw = await exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        assert raw.startswith(b"HTTP/1.1 400 ")


async def test_a_stalled_body_gets_a_408_and_a_slow_one_does_not() -> None:
    """The body timeout runs between two reads that had to wait, not over the whole body."""
    async with serving() as (port, bad):
        post = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
        started = asyncio.get_running_loop().time()
        raw = await exchange(port, post + b"12345", wait=3.0)
        assert raw.startswith(b"HTTP/1.1 408 ") and not raw.endswith(b"<still open>")
        assert asyncio.get_running_loop().time() - started < SMALL.body_timeout + 0.5
        assert bad.count("timeout") == 1
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post)
        for piece in (b"12", b"34", b"56", b"78", b"90"):  # 0.5 s in all, 0.1 s apart
            await asyncio.sleep(0.1)
            writer.write(piece)
        async with asyncio.timeout(2.0):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and bad.count("timeout") == 1
        writer.close()


@pytest.mark.parametrize(
    "scenario",
    [
        test_keep_alive_requests_with_and_without_bodies,
        test_chunked_request_body_and_streamed_answer,
        test_pipelined_requests_are_answered_in_order,
        test_pipelined_bodies_over_the_high_water_mark_are_all_read,
        test_requests_before_a_bad_one_are_answered_first,
        test_a_body_that_breaks_its_framing_gets_a_400,
        test_a_body_left_unread_is_dropped_or_ends_the_connection,
        test_expect_100_continue_is_answered_when_the_body_is_read,
        test_a_tls_listener_says_https,
        test_http10_closes_unless_kept_alive_and_head_gets_no_body,
        lambda: test_unparsable_heads_are_refused_and_closed(BOTH, 400),
        test_slow_heads_and_idle_connections_are_closed,
        test_a_failing_handler_gets_a_500_and_the_connection_closes,
        test_an_upgrade_hands_the_connection_over,
        test_an_upgrade_request_with_a_body_is_served_as_a_plain_request,
        test_a_stalled_body_gets_a_408_and_a_slow_one_does_not,
    ],
    ids=[
        "keep-alive",
        "chunked",
        "pipelined",
        "pipelined-bodies",
        "bad-after-good",
        "bad-chunk",
        "unread-body",
        "expect-100",
        "tls",
        "http10",
        "refused",
        "deadlines",
        "500",
        "upgrade",
        "upgrade-body",
        "body-timeout",
    ],
)
def test_on_uvloop(scenario: Callable[[], Coroutine[None, None, None]]) -> None:
    """The same on uvloop, which the proxy serves on (its transports are not asyncio's)."""
    uvloop.run(scenario())
