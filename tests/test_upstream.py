"""Upstream forwarding: header rewriting, pools and passive health, failures as 502 / 504."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wafproxy.config.model import HOST_PASS, HOST_UPSTREAM, Target, Upstream
from wafproxy.proxy_headers import ForwardedFor, host_for, upstream_headers, without_hop_by_hop
from wafproxy.upstream_errors import ErrorKind, classify
from wafproxy.upstream_http import ConnectFailed, UpstreamProtocolError
from wafproxy.upstream_pool import UpstreamPool

if TYPE_CHECKING:
    from conftest import RunningProxy, StartProxy, UpstreamServer

A = Target("http", "10.0.0.1", 80)
B = Target("http", "10.0.0.2", 8080)
C = Target("https", "10.0.0.3", 443)


def fwd(**changes: object) -> ForwardedFor:
    base: dict[str, object] = {
        "peer": "192.0.2.1",
        "scheme": "http",
        "host": "shop.example",
        "host_header": HOST_PASS,
        "request_id_header": "X-Request-Id",
        "request_id": "rid",
    }
    base.update(changes)
    return ForwardedFor(**base)  # type: ignore[arg-type]


# -- headers ---------------------------------------------------------------------------------------
def test_without_hop_by_hop_drops_named_and_standard_headers() -> None:
    headers = [
        ("Connection", "close, X-A"),
        ("connection", "x-b"),
        ("X-A", "1"),
        ("X-B", "2"),
        ("Keep-Alive", "5"),
        ("Transfer-Encoding", "chunked"),
        ("TE", "trailers"),
        ("Trailer", "X-T"),
        ("Upgrade", "websocket"),
        ("Proxy-Authorization", "x"),
        ("Proxy-Foo", "y"),
        ("Accept", "*/*"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert without_hop_by_hop(headers) == [
        ("Accept", "*/*"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


def test_upstream_headers_rewrite_forwarding_and_drop_forgeries() -> None:
    incoming = [
        ("Host", "shop.example"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("x-forwarded-for", "198.51.100.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Request-Id", "client"),
        ("X-Wafproxy-Admin", "true"),
        ("Expect", "100-continue"),
        ("Cookie", "a=b"),
    ]
    out = upstream_headers(incoming, fwd(insert_headers=(("x-wafproxy-checked", "1"),)))
    assert out == [
        ("Cookie", "a=b"),
        ("X-Forwarded-For", "203.0.113.9, 198.51.100.1, 192.0.2.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "shop.example"),
        ("X-Request-Id", "rid"),
        ("x-wafproxy-checked", "1"),
    ]


def test_host_for_each_mode() -> None:
    assert host_for(fwd(), B) == "shop.example"
    assert host_for(fwd(host=""), B) == "10.0.0.2:8080"
    assert host_for(fwd(host_header=HOST_UPSTREAM), A) == "10.0.0.1"
    assert host_for(fwd(host_header=HOST_UPSTREAM), C) == "10.0.0.3"
    assert host_for(fwd(host_header="internal.test"), A) == "internal.test"


def test_classify_errors() -> None:
    assert classify(TimeoutError()) is ErrorKind.TIMEOUT
    assert classify(ConnectFailed(timed_out=True)) is ErrorKind.TIMEOUT
    assert classify(ConnectFailed(timed_out=False)) is ErrorKind.CONNECT
    assert classify(ConnectionResetError()) is ErrorKind.RESET
    assert classify(UpstreamProtocolError("not HTTP")) is ErrorKind.PROTOCOL
    assert (ErrorKind.TIMEOUT.status, ErrorKind.CONNECT.status) == (504, 502)


# -- pools -----------------------------------------------------------------------------------------
def test_round_robin_and_passive_health() -> None:
    pool = UpstreamPool(Upstream("app", (A, B, C), max_fails=2, fail_timeout=10))
    firsts = [pool.order(0.0)[0].target for _ in range(4)]
    assert firsts == [A, B, C, A]
    a = pool.targets[0]
    pool.failed(a, now=100.0)
    assert a.up(100.0)  # one failure of two allowed
    pool.failed(a, now=100.0)
    assert not a.up(105.0) and a.up(110.0)
    assert [h.target for h in pool.order(105.0)] == [B, C]
    pool.succeeded(a)
    assert a.fails == 0 and a.up(105.0)


def test_all_targets_down_are_still_tried() -> None:
    pool = UpstreamPool(Upstream("app", (A, B), max_fails=1, fail_timeout=10))
    for health in pool.targets:
        pool.failed(health, now=0.0)
    assert not pool.has_healthy_target(1.0)
    assert len(pool.order(1.0)) == 2
    assert pool.has_healthy_target(11.0)


def test_a_reloaded_pool_keeps_the_health_of_targets_still_listed() -> None:
    old = UpstreamPool(Upstream("app", (A, B), max_fails=1))
    old.failed(old.targets[0], now=time.monotonic())
    new = UpstreamPool(Upstream("app", (A, C), max_fails=1))
    new.adopt_health(old)
    assert not new.targets[0].up(time.monotonic())
    assert new.targets[1].up(time.monotonic())


# -- failures end to end ---------------------------------------------------------------------------
async def test_refused_upstream_is_502_with_request_id_and_no_detail(
    start_proxy: StartProxy, client: aiohttp.ClientSession, dead_target: str
) -> None:
    target = dead_target
    proxy = await start_proxy({"upstreams": {"app": {"targets": [target]}}})
    async with client.get(proxy.url + "/echo") as response:
        assert response.status == 502
        body = await response.text()
    request_id = response.headers["X-Request-Id"]
    assert body == f"502 Bad Gateway\nrequest id: {request_id}\n"
    assert target.rpartition(":")[2] not in body
    [line] = await proxy.wait_decisions(1)
    assert (line["action"], line["responseCodeSent"]) == ("ALLOW", 502)


async def test_slow_upstream_is_504(start_proxy: StartProxy, client: aiohttp.ClientSession) -> None:
    proxy = await start_proxy({"upstreams": {"app": {"read_timeout": 0.3}}})
    async with client.get(proxy.url + "/slow?seconds=1.5") as response:
        assert response.status == 504
        assert response.headers["X-Request-Id"] in await response.text()
    async with client.get(proxy.url + "/slow?seconds=0") as response:
        assert response.status == 200


async def test_total_timeout_cuts_a_stalled_response(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy({"upstreams": {"app": {"total_timeout": 0.3}}})
    async with client.get(proxy.url + "/slow?seconds=1") as response:
        assert response.status == 504


async def test_reset_before_the_response_is_502(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/t/reset") as response:
        assert response.status == 502
        assert response.headers["X-Request-Id"] in await response.text()
    assert await upstream_errors(proxy, "reset") == 1


async def test_a_response_cut_by_the_upstream_is_cut_for_the_client(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/t/truncated") as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert await upstream_errors(proxy, "protocol") + await upstream_errors(proxy, "reset") == 1
    async with client.get(proxy.url + "/status/200") as response:
        assert response.status == 200  # the proxy carries on


async def one_request_per_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers the first request on a connection as keep-alive, then drops the connection at
    the next one: what a reused connection sees when the upstream's idle timeout raced it."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read(1)
    finally:
        writer.close()


async def test_a_kept_alive_connection_closed_under_us_is_retried_when_idempotent(
    start_proxy: StartProxy, client: aiohttp.ClientSession
) -> None:
    server = await asyncio.start_server(one_request_per_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy = await start_proxy({"upstreams": {"app": {"targets": [f"http://127.0.0.1:{port}"]}}})
        for _ in range(3):
            async with client.get(proxy.url + "/") as response:
                assert (response.status, await response.text()) == (200, "ok")
        async with client.post(proxy.url + "/", data=b"not replayed") as response:
            assert response.status == 502
    finally:
        server.close()
        await server.wait_closed()


async def upstream_errors(proxy: RunningProxy, kind: str) -> float:
    assert proxy.server.metrics is not None
    body, _ = proxy.server.metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "wafproxy_upstream_errors_total" and sample.labels["kind"] == kind:
                return sample.value
    return 0.0


async def test_a_dead_target_is_skipped_while_the_live_one_serves(
    start_proxy: StartProxy,
    client: aiohttp.ClientSession,
    upstream: UpstreamServer,
    dead_target: str,
) -> None:
    targets = [dead_target, upstream.url]
    app = {"targets": targets, "max_fails": 2, "fail_timeout": 30}
    proxy = await start_proxy({"upstreams": {"app": app}})
    for _ in range(6):
        async with client.get(proxy.url + "/status/200") as response:
            assert response.status == 200
    assert proxy.server.ref is not None
    dead, live = proxy.server.ref.current.pools["app"].targets
    assert dead.fails == 2 and not dead.up(time.monotonic())
    assert live.fails == 0


async def test_upstream_error_statuses_pass_through_as_they_are(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(proxy.url + "/status/503") as response:
        assert (response.status, await response.text()) == (503, "status 503\n")
    lines = await proxy.wait_decisions(1)
    assert lines[-1]["responseCodeSent"] == 503
