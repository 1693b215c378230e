"""The proxy listener's header-read deadline: one sweep per server cuts trickled headers, never a
keep-alive connection between or during quick requests, and stops with the server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from wafproxy.http1 import Http1Server, Reply, Request, ServerLimits

if TYPE_CHECKING:
    from conftest import RawConnection, RunningProxy, StartProxy

pytestmark = pytest.mark.integration
OpenRaw = Callable[[int], Awaitable["RawConnection"]]
SCHEDULING_SLACK = 0.25
"""Loop lag on a busy machine plus the client's 0.05 s polling, on top of the sweep period."""


def timeouts_counted(proxy: RunningProxy) -> float:
    assert proxy.server.metrics is not None
    registry = proxy.server.metrics.registry
    found = registry.get_sample_value("wafproxy_bad_requests_total", {"reason": "timeout"})
    return found or 0.0


async def test_trickled_headers_are_cut_within_the_timeout_plus_one_sweep(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    timeout = 0.4
    proxy = await start_proxy({"limits": {"header_read_timeout": timeout}})
    loop = asyncio.get_running_loop()
    started = loop.time()  # before the connection opens, so the deadline is armed after it
    conn = await raw_connections(proxy.port)
    request = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200
    closed = await conn.trickle(request, 0.05)
    elapsed = loop.time() - started
    assert closed
    assert timeout <= elapsed < timeout + sweep_period(timeout) + SCHEDULING_SLACK
    assert timeouts_counted(proxy) == 1


def sweep_period(header_timeout: float, keepalive_timeout: float = 75.0) -> float:
    limits = ServerLimits(header_timeout=header_timeout, keepalive_timeout=keepalive_timeout)
    server = Http1Server(never_called, limits)
    period = server._period
    assert server._sweeper is not None
    server._sweeper.cancel()
    return period


async def never_called(request: Request, reply: Reply) -> None:
    raise AssertionError


async def test_the_sweep_period_is_a_quarter_of_the_shortest_timeout_at_most_1s() -> None:
    assert sweep_period(0.4) == 0.1
    assert sweep_period(10.0) == 1.0
    assert sweep_period(10.0, keepalive_timeout=2.0) == 0.5


async def test_quick_keepalive_requests_each_get_a_fresh_deadline(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    """Each request's headers arrive in two halves, half a timeout apart; the connection lives
    for several timeouts, so only a deadline re-armed per request and disarmed once its headers
    parse keeps it open."""
    timeout = 0.4
    proxy = await start_proxy({"limits": {"header_read_timeout": timeout}})
    conn = await raw_connections(proxy.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(8):
        await conn.send(b"GET /status/200 HTTP/1.1\r\nHo")
        await asyncio.sleep(timeout / 4)
        await conn.send(b"st: x\r\nX-N: %d\r\n\r\n" % n)
        assert (await conn.response()).status == 200
    assert loop.time() - started > 2 * timeout
    assert timeouts_counted(proxy) == 0


async def test_an_idle_keepalive_connection_is_closed_by_keepalive_not_the_header_deadline(
    start_proxy: StartProxy, raw_connections: OpenRaw
) -> None:
    timeout, keepalive = 0.2, 1.2
    limits = {"header_read_timeout": timeout, "keepalive_timeout": keepalive}
    proxy = await start_proxy({"limits": limits})
    conn = await raw_connections(proxy.port)
    await conn.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.response()).status == 200
    idle_past_the_deadline = timeout + sweep_period(timeout) + SCHEDULING_SLACK
    assert not await conn.closed_within(idle_past_the_deadline)
    await conn.send(b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await conn.response()).status == 201
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    assert await conn.closed_within(keepalive + 2.0)
    assert loop.time() - idle_since >= keepalive - 0.05
    assert timeouts_counted(proxy) == 0


async def test_the_sweep_stops_when_the_server_shuts_down() -> None:
    server = Http1Server(never_called, ServerLimits(header_timeout=0.04))
    await asyncio.sleep(0.01 * 3)
    sweeper = server._sweeper
    assert sweeper is not None and not sweeper.cancelled()
    await server.shutdown(1.0)
    assert sweeper.cancelled() and server._sweeper is None
