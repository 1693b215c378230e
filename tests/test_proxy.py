"""The proxy end to end: a real client, the proxy and the demo upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from wafproxy.snapshot import origin_form

if TYPE_CHECKING:
    from conftest import (
        ProxyProcess,
        RawConnection,
        RunningProxy,
        SpawnProxy,
        StartProxy,
        UpstreamServer,
    )

pytestmark = pytest.mark.integration
OpenRaw = Callable[[int], Awaitable["RawConnection"]]


async def echo(client: aiohttp.ClientSession, url: str, **kwargs: object) -> dict[str, object]:
    async with client.get(url, **kwargs) as response:  # type: ignore[arg-type]
        assert response.status == 200, await response.text()
        data: dict[str, object] = await response.json()
        data["_response_headers"] = response.headers
        return data


def seen_headers(data: dict[str, object]) -> dict[str, str]:
    headers = data["headers"]
    assert isinstance(headers, dict)
    return headers


# -- forwarding basics -----------------------------------------------------------------------------
async def test_forwarded_headers_are_set_and_xff_appended(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    data = await echo(
        client,
        proxy.url + "/echo?a=1&b=%20",
        headers={"X-Forwarded-For": "10.9.9.9", "Host": "shop.example"},
    )
    headers = seen_headers(data)
    assert headers["x-forwarded-for"] == "10.9.9.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "shop.example"
    assert headers["host"] == "shop.example"
    assert data["query_string"] == "a=1&b=%20"


async def test_request_id_is_generated_and_returned(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    data = await echo(client, proxy.url + "/echo", headers={"X-Request-Id": "client-chosen"})
    sent = seen_headers(data)["x-request-id"]
    assert len(sent) == 32 and int(sent, 16) >= 0
    assert data["_response_headers"]["X-Request-Id"] == sent  # type: ignore[index]


async def test_request_id_is_kept_from_a_trusted_hop(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    trusted = {"client_ip": {"trusted_proxies": ["127.0.0.1/32"]}}
    proxy = await start_proxy({"request_id": {"trust_incoming": True}, **trusted})
    data = await echo(client, proxy.url + "/echo", headers={"X-Request-Id": "edge-42"})
    assert seen_headers(data)["x-request-id"] == "edge-42"
    assert data["_response_headers"]["X-Request-Id"] == "edge-42"  # type: ignore[index]
    bad = await echo(client, proxy.url + "/echo", headers={"X-Request-Id": "a b\tc"})
    assert len(seen_headers(bad)["x-request-id"]) == 32
    untrusted = await start_proxy({"request_id": {"trust_incoming": True}})
    data = await echo(client, untrusted.url + "/echo", headers={"X-Request-Id": "edge-42"})
    assert len(seen_headers(data)["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("host_header", "expected"),
    [
        ("pass", "shop.example"),
        ("upstream", "127.0.0.1:{port}"),
        ("internal.test", "internal.test"),
    ],
)
async def test_host_header_pass_or_rewrite(
    start_proxy: StartProxy,
    client: aiohttp.ClientSession,
    upstream: UpstreamServer,
    host_header: str,
    expected: str,
) -> None:
    route = {"host": "*", "upstream": "app", "web_acl": "test", "host_header": host_header}
    proxy = await start_proxy({"routes": [route]})
    data = await echo(client, proxy.url + "/echo", headers={"Host": "shop.example"})
    assert seen_headers(data)["host"] == expected.format(port=upstream.port)


async def test_all_methods_pass(proxy: RunningProxy, client: aiohttp.ClientSession) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"):
        async with client.request(method, proxy.url + "/echo", data=b"abc") as response:
            data = await response.json()
            assert (data["method"], data["body_size"]) == (method, 3)


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/a/b?c=d", "/a/b?c=d"),
        ("/a/../b?%2e", "/a/../b?%2e"),
        ("http://other.example/echo?x=1", "/echo?x=1"),
        ("https://other.example", "/"),
        ("http://other.example?q", "/?q"),
        ("*", None),
        ("example.com:443", None),
        ("ftp://x/y", None),
    ],
)
def test_origin_form(target: str, forwarded: str | None) -> None:
    assert origin_form(target) == forwarded


async def test_absolute_form_is_forwarded_as_origin_form_and_odd_targets_refused(
    proxy: RunningProxy, raw_connections: OpenRaw
) -> None:
    conn = await raw_connections(proxy.port)
    await conn.send(b"GET http://other.example/echo?x=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
    data = json.loads((await conn.response()).body)
    assert (data["raw_path"], data["query_string"]) == ("/echo", "x=1")
    for request in (b"OPTIONS * HTTP/1.1", b"CONNECT example.com:443 HTTP/1.1"):
        odd = await raw_connections(proxy.port)
        await odd.send(request + b"\r\nHost: x\r\n\r\n")
        response = await odd.response()
        assert response.status == 400
        assert response.header("X-Request-Id")


# -- hop-by-hop ------------------------------------------------------------------------------------
async def test_hop_by_hop_request_headers_are_stripped(
    proxy: RunningProxy, raw_connections: OpenRaw
) -> None:
    conn = await raw_connections(proxy.port)
    await conn.send(
        b"GET /echo HTTP/1.1\r\nHost: shop.example\r\n"
        b"Connection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=9\r\n"
        b"TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic eDp5\r\n"
        b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Keep-Me: 2\r\n\r\n"
    )
    response = await conn.response()
    names = {name.lower() for name, _ in json.loads(response.body)["raw_headers"]}
    dropped = {"x-drop-me", "keep-alive", "te", "trailer", "proxy-authorization",
               "proxy-connection", "upgrade"}  # fmt: skip
    assert not names & dropped
    assert "x-keep-me" in names


async def test_hop_by_hop_response_headers_are_stripped(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/t/hop") as response:
        assert response.status == 200
        names = {name.lower() for name in response.headers}
        assert not names & {"x-hop-named", "keep-alive", "proxy-authenticate"}
        assert response.headers["X-End-To-End"] == "kept"
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]


async def test_clients_cannot_forge_inserted_headers(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    forged = {"X-Wafproxy-Tagged": "forged", "X-Wafproxy-Other": "forged"}
    data = await echo(client, proxy.url + "/echo", headers=forged)
    headers = seen_headers(data)
    assert headers["x-wafproxy-tagged"] == "yes"  # the count rule's inserted header
    assert "x-wafproxy-other" not in headers


# -- blocking --------------------------------------------------------------------------------------
async def test_blocked_request_gets_403_with_request_id(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/blocked/thing") as response:
        assert response.status == 403
        request_id = response.headers["X-Request-Id"]
        assert request_id in await response.text()
    [line] = await proxy.wait_decisions(1)
    assert (line["action"], line["terminatingRuleId"]) == ("BLOCK", "block-blocked")
    assert line["httpRequest"]["requestId"] == request_id


async def test_custom_block_response(proxy: RunningProxy, client: aiohttp.ClientSession) -> None:
    async with client.get(proxy.url + "/teapot") as response:
        assert response.status == 418
        assert response.headers["x-why"] == "policy"
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "X-Request-Id" in response.headers
        assert await response.text() == "no tea for you\n"


async def test_body_prefix_is_inspected_and_the_rest_is_not(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    early = b"a" * 100 + b"FORBIDDEN-WORD" + b"b" * 100_000
    async with client.post(proxy.url + "/t/digest", data=early) as response:
        assert response.status == 403
    late = b"a" * 20_000 + b"FORBIDDEN-WORD"  # past inspect_body_bytes (16 KiB)
    async with client.post(proxy.url + "/t/digest", data=late) as response:
        assert response.status == 200
        assert (await response.json())["sha256"] == hashlib.sha256(late).hexdigest()


# -- bodies ----------------------------------------------------------------------------------------
async def test_request_body_passes_byte_for_byte_and_is_not_decompressed(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    body = gzip.compress(os.urandom(1_000_000))
    headers = {"Content-Encoding": "gzip"}
    async with client.post(proxy.url + "/t/digest", data=body, headers=headers) as response:
        data = await response.json()
    assert data == {
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_encoding": "gzip",
        "transfer_encoding": None,
    }


async def test_chunked_request_body_streams_through(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    parts = [os.urandom(50_000) for _ in range(20)]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with client.put(proxy.url + "/t/digest", data=chunks()) as response:
        data = await response.json()
    whole = b"".join(parts)
    assert data["sha256"] == hashlib.sha256(whole).hexdigest()
    assert data["transfer_encoding"] == "chunked"


async def test_compressed_response_passes_untouched(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/t/gzip", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await response.read()) == b"hello compressed world\n" * 100


async def test_head_204_304_have_no_body(proxy: RunningProxy, raw_connections: OpenRaw) -> None:
    conn = await raw_connections(proxy.port)
    await conn.send(b"HEAD /t/sized HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await conn.response(head=True)
    assert (head.status, head.header("Content-Length")) == (200, "1234")
    await conn.send(b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.response()).status == 204
    await conn.send(b"GET /t/304 HTTP/1.1\r\nHost: x\r\n\r\n")
    not_modified = await conn.response()
    assert (not_modified.status, not_modified.header("ETag")) == (304, '"v1"')
    await conn.send(b"GET /t/sized HTTP/1.1\r\nHost: x\r\n\r\n")
    full = await conn.response()  # a stray body byte above would have broken this parse
    assert (full.status, full.body) == (200, b"x" * 1234)


# -- limits ----------------------------------------------------------------------------------------
async def test_413_from_content_length(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"limits": {"max_body_bytes": 100_000}})
    async with client.post(proxy.url + "/t/digest", data=b"x" * 100_001) as response:
        assert response.status == 413
        assert response.headers["X-Request-Id"] in await response.text()
    async with client.post(proxy.url + "/t/digest", data=b"x" * 100_000) as response:
        assert response.status == 200


async def test_413_while_streaming_a_chunked_body(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"limits": {"max_body_bytes": 300_000}})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 50_000

    async with client.post(proxy.url + "/t/digest", data=chunks()) as response:
        assert response.status == 413
    lines = await proxy.wait_decisions(1)
    assert lines[-1]["responseCodeSent"] == 413


async def test_malformed_request_gets_400(proxy: RunningProxy, raw_connections: OpenRaw) -> None:
    conn = await raw_connections(proxy.port)
    await conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n")
    response = await conn.response()
    assert response.status == 400
    assert response.header("X-Request-Id")
    garbage = await raw_connections(proxy.port)
    await garbage.send(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n"
    )
    assert (await garbage.response()).status == 400
    assert await garbage.closed_within(2)


async def test_malformed_chunked_body_gets_400(
    proxy: RunningProxy, raw_connections: OpenRaw
) -> None:
    conn = await raw_connections(proxy.port)
    head = b"POST /t/digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    await conn.send(head + b"5\r\nhello\r\n" * 5000)  # past the inspected prefix: streaming
    await asyncio.sleep(0.2)
    await conn.send(b"zz\r\nabc\r\n0\r\n\r\n")
    assert (await conn.response()).status == 400
    lines = await proxy.wait_decisions(1)
    assert lines[-1]["responseCodeSent"] == 400


async def test_a_stalled_body_is_answered_408_and_logged(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    proxy = await start_proxy({"limits": {"body_read_timeout": 0.4}})
    inspected = await raw_connections(proxy.port)  # stalls inside the inspected prefix
    await inspected.send(b"POST /t/digest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n1234")
    response = await inspected.response(timeout=3.0)
    assert response.status == 408 and response.header("X-Request-Id")
    streamed = await raw_connections(proxy.port)  # stalls after the prefix, while streaming
    head = b"POST /t/digest HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n"
    await streamed.send(head + b"a" * 20_000)
    response = await streamed.response(timeout=3.0)
    assert response.status == 408
    lines = await proxy.wait_decisions(2)
    assert [line["responseCodeSent"] for line in lines] == [408, 408]
    assert [line["terminatingRuleId"] for line in lines] == [
        "wafproxy:body_read_timeout",  # refused before the web ACL ran
        "Default_Action",  # allowed on its first 16 KiB, then stalled
    ]
    assert proxy.server.metrics is not None
    registry = proxy.server.metrics.registry
    assert registry.get_sample_value("wafproxy_bad_requests_total", {"reason": "timeout"}) == 2


async def test_garbage_never_takes_the_proxy_down(
    start_proxy: StartProxy, raw_connections: OpenRaw, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"limits": {"header_read_timeout": 0.5}})
    rng = random.Random(7)
    noise = [rng.randbytes(rng.randrange(1, 600)) for _ in range(40)]
    heads = [b"GET /echo HTTP/1.1\r\n" + n + b"\r\n\r\n" for n in noise[:20]]
    bodies = [b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + n for n in noise[20:]]
    for data in noise + heads + bodies:
        conn = await raw_connections(proxy.port)
        with contextlib.suppress(ConnectionError):
            await conn.send(data)
    await asyncio.sleep(0.2)
    async with client.get(proxy.url + "/status/200") as response:
        assert response.status == 200


async def test_oversized_headers_are_refused(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    proxy = await start_proxy({"limits": {"max_header_bytes": 2048, "max_headers": 20}})
    long_line = await raw_connections(proxy.port)
    await long_line.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
    assert (await long_line.response()).status in (400, 431)
    many_bytes = await raw_connections(proxy.port)
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"b" * 500) for i in range(6))
    await many_bytes.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert (await many_bytes.response()).status == 431
    many_fields = await raw_connections(proxy.port)
    fields = b"".join(b"X-N%d: 1\r\n" % i for i in range(30))
    await many_fields.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert (await many_fields.response()).status in (400, 431)


async def test_slowloris_is_disconnected_after_header_read_timeout(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    proxy = await start_proxy({"limits": {"header_read_timeout": 0.5}})
    conn = await raw_connections(proxy.port)
    started = asyncio.get_running_loop().time()
    request = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
    closed = await conn.trickle(request, 0.1)
    elapsed = asyncio.get_running_loop().time() - started
    assert closed and 0.4 < elapsed < 2.0
    silent = await raw_connections(proxy.port)
    assert await silent.closed_within(2.0)


async def test_idle_keepalive_outlives_the_header_timeout(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    proxy = await start_proxy({"limits": {"header_read_timeout": 0.3}})
    conn = await raw_connections(proxy.port)
    await conn.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.response()).status == 200
    await asyncio.sleep(0.8)
    await conn.send(b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.response()).status == 201


async def test_a_body_streamed_slowly_is_not_cut_by_the_header_timeout(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"limits": {"header_read_timeout": 0.3}})

    async def slow_chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            await asyncio.sleep(0.2)
            yield b"q" * 20_000

    async with client.post(proxy.url + "/t/digest", data=slow_chunks()) as response:
        assert response.status == 200
        assert (await response.json())["size"] == 100_000


# -- WebSocket -------------------------------------------------------------------------------------
async def test_websocket_echo_through_the_proxy(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.ws_connect(proxy.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_str("hello")
        assert (await ws.receive_str(timeout=5)) == "hello"
        await ws.send_bytes(b"\x00\x01binary")
        assert (await ws.receive_bytes(timeout=5)) == b"\x00\x01binary"


async def test_websocket_subprotocol_and_close_codes_propagate(
    proxy: RunningProxy, client: aiohttp.ClientSession, upstream: UpstreamServer
) -> None:
    url = proxy.url.replace("http", "ws") + "/t/ws"
    async with client.ws_connect(url, protocols=("chat",)) as ws:
        assert ws.protocol == "chat"
        await ws.send_str("hi")
        assert (await ws.receive_str(timeout=5)) == "chat:hi"
        await ws.send_str("bye")
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (4001, "see you")
    async with client.ws_connect(url) as ws:
        await ws.close(code=4002, message=b"client done")
    for _ in range(100):
        if 4002 in upstream.close_codes:
            break
        await asyncio.sleep(0.02)
    assert 4002 in upstream.close_codes


async def test_websocket_outlives_the_http_timeouts(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"upstreams": {"app": {"total_timeout": 0.3, "read_timeout": 0.3}}})
    async with client.ws_connect(proxy.url.replace("http", "ws") + "/ws") as ws:
        for n in range(2):
            await asyncio.sleep(0.5)
            await ws.send_str(f"still here {n}")
            assert (await ws.receive_str(timeout=5)) == f"still here {n}"


async def test_websocket_refused_by_the_upstream_keeps_its_status(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(proxy.url.replace("http", "ws") + "/no-such-socket")
    assert info.value.status == 404
    lines = await proxy.wait_decisions(1)
    assert lines[-1]["responseCodeSent"] == 404


async def test_websocket_handshake_goes_through_the_acl(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(proxy.url.replace("http", "ws") + "/blocked/ws")
    assert info.value.status == 403


async def test_an_open_websocket_ends_when_the_proxy_stops(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    """A tunnel has no answer to finish: stopping closes it at once rather than waiting out
    the shutdown grace period (15 s) for it."""
    proxy = await start_proxy()
    async with client.ws_connect(proxy.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_str("before")
        assert (await ws.receive_str(timeout=5)) == "before"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await proxy.server.stop()
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert loop.time() - started < 3.0


async def test_websocket_frames_sent_with_the_handshake_arrive(
    proxy: RunningProxy, raw_connections: OpenRaw
) -> None:
    """A client may send its first frame in the same packet as the handshake: the bytes after
    the head reach the upstream once the tunnel is joined."""
    conn = await raw_connections(proxy.port)
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    mask = b"\x01\x02\x03\x04"
    frame = b"\x81\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
    await conn.send(handshake + frame)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert b"X-Request-Id: " in head
    async with asyncio.timeout(5):
        echoed = await conn.reader.readexactly(4)
    assert echoed == b"\x81\x02hi"  # the upstream's unmasked echo


# -- routes ----------------------------------------------------------------------------------------
async def test_routes_by_host_and_prefix_select_acls(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    routes = [
        {"host": "strict.test", "upstream": "app", "web_acl": "strict"},
        {"host": "*", "path_prefix": "/public", "upstream": "app", "web_acl": "strict"},
        {"host": "*", "upstream": "app", "web_acl": "test", "name": "main"},
    ]
    proxy = await start_proxy({"routes": routes})
    cases = [
        ("strict.test", "/echo", 403, "strict"),
        ("strict.test", "/public/x", 404, "strict"),
        ("other.test", "/echo", 200, "test"),
        ("other.test", "/public/x", 404, "strict"),
        ("other.test", "/public/../echo", 200, "test"),
    ]
    for host, path, status, _ in cases:
        async with client.get(proxy.url + path, headers={"Host": host}) as response:
            assert response.status == status, (host, path)
    lines = await proxy.wait_decisions(len(cases))
    assert [line["webaclId"] for line in lines] == [acl for *_, acl in cases]


# -- decision log ----------------------------------------------------------------------------------
async def test_decision_log_fields_and_redaction(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    log = {
        "redact_headers": ["authorization", "x-secret"],
        "redact_cookies": ["session"],
        "redact_query_args": ["token"],
    }
    proxy = await start_proxy({"decision_log": log})
    headers = {
        "Authorization": "Bearer top",
        "X-Secret": "hidden",
        "Cookie": "session=abc123; theme=dark",
        "User-Agent": "tester/1",
    }
    async with client.get(proxy.url + "/echo?token=t0k&q=1", headers=headers) as response:
        request_id = response.headers["X-Request-Id"]
    [line] = await proxy.wait_decisions(1)
    assert line["webaclId"] == "test"
    assert (line["action"], line["terminatingRuleId"], line["responseCodeSent"]) == (
        "ALLOW",
        "Default_Action",
        200,
    )
    assert line["nonTerminatingMatchingRules"] == [{"ruleId": "tag-echo", "action": "COUNT"}]
    assert line["requestHeadersInserted"] == [{"name": "x-wafproxy-tagged", "value": "yes"}]
    http = line["httpRequest"]
    assert (http["httpMethod"], http["uri"], http["args"]) == ("GET", "/echo", "token=REDACTED&q=1")
    assert (http["clientIp"], http["requestId"], http["httpVersion"]) == (
        "127.0.0.1",
        request_id,
        "HTTP/1.1",
    )
    logged = {h["name"].lower(): h["value"] for h in http["headers"]}
    assert logged["authorization"] == "REDACTED"
    assert logged["x-secret"] == "REDACTED"
    assert logged["cookie"] == "session=REDACTED; theme=dark"
    assert logged["user-agent"] == "tester/1"
    assert "top" not in proxy.log_path.read_text()


async def test_decision_log_action_filter(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"decision_log": {"actions": ["BLOCK"]}})
    for path in ("/status/200", "/blocked", "/status/201"):
        async with client.get(proxy.url + path) as response:
            await response.read()
    lines = await proxy.wait_decisions(2, timeout=1.0)
    assert [line["httpRequest"]["uri"] for line in lines] == ["/blocked"]


# -- memory ----------------------------------------------------------------------------------------
def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def upload(client: aiohttp.ClientSession, url: str, size: int) -> None:
    block = os.urandom(256 * 1024)
    digest = hashlib.sha256()

    async def chunks() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            part = block[: min(left, len(block))]
            digest.update(part)
            left -= len(part)
            yield part

    headers = {"Content-Length": str(size)}
    async with client.post(url + "/t/digest", data=chunks(), headers=headers) as response:
        data = await response.json()
    assert (data["size"], data["sha256"]) == (size, digest.hexdigest())


async def download(client: aiohttp.ClientSession, url: str, size: int) -> None:
    received = 0
    async with client.get(url + f"/stream?bytes={size}") as response:
        assert response.status == 200
        async for chunk in response.content.iter_any():
            expected = bytes((received + i) % 256 for i in range(min(len(chunk), 256)))
            assert chunk[: len(expected)] == expected
            received += len(chunk)
    assert received == size


async def transfer_and_measure(process: ProxyProcess, size: int) -> int:
    """Peak RSS growth of the proxy process across one upload and one download of ``size``."""
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as client:
        await upload(client, process.url, 1024 * 1024)  # warm up every code path first
        await download(client, process.url, 1024 * 1024)
        before = peak_rss(process.pid)
        await upload(client, process.url, size)
        await download(client, process.url, size)
        return peak_rss(process.pid) - before


BIG_BODIES = {"limits": {"max_body_bytes": 2 * 1024**3}}


async def test_streaming_20_mib_both_ways_keeps_proxy_memory_bounded(
    spawn_proxy: SpawnProxy,
) -> None:
    growth = await transfer_and_measure(await spawn_proxy(BIG_BODIES), 20 * 1024 * 1024)
    assert growth < 16 * 1024 * 1024  # buffering either body whole would take 20 MiB


@pytest.mark.slow
async def test_streaming_1_gib_both_ways_keeps_proxy_memory_bounded(
    spawn_proxy: SpawnProxy,
) -> None:
    growth = await transfer_and_measure(await spawn_proxy(BIG_BODIES), 1024**3)
    assert growth < 64 * 1024 * 1024
