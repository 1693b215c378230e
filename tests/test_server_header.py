"""Answers through the proxy never announce aiohttp's or Python's version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from conftest import RunningProxy, StartProxy


async def test_a_block_says_only_wafproxy(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    async with client.get(f"{proxy.url}/blocked") as resp:
        assert resp.status == 403
        assert resp.headers["Server"] == "wafproxy"


async def test_a_502_says_only_wafproxy(
    start_proxy: StartProxy, client: aiohttp.ClientSession, dead_target: str
) -> None:
    proxy = await start_proxy({"upstreams": {"app": {"targets": [dead_target]}}})
    async with client.get(f"{proxy.url}/anything") as resp:
        assert resp.status == 502
        assert resp.headers["Server"] == "wafproxy"
