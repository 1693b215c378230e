"""The fleet: proxy processes sharing one real Redis hold one global limit; Redis dying mid-run
leaves requests flowing per on_state_error and the limit comes back with Redis; dynamic IP set
entries reach the other proxy within a second; ``--workers`` with the memory state says how it
enforces limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from conftest import RedisServer, RunningProxy, SpawnProxy, StartProxy

pytestmark = pytest.mark.integration
TOKEN = "fleet-token"
LIMIT = 100
RULES = f"""\
web_acl: fleet
default_action: allow
ip_sets:
  blocklist: {{dynamic: true}}
rules:
  - name: blocked-ips
    priority: 1
    action: block
    statement: {{ip_set: {{ref: blocklist}}}}
  - name: global-limit
    priority: 2
    action: {{block: {{custom_response: {{response_code: 429}}}}}}
    statement: {{rate_based: {{limit: {LIMIT}, evaluation_window_sec: 600}}}}
"""


def fleet_config(tmp_path: Path, redis_url: str | None, **state: Any) -> dict[str, Any]:
    rules = tmp_path / "fleet.yaml"
    rules.write_text(RULES)
    backend: dict[str, Any] = {"dir": str(tmp_path / "state")}
    if redis_url is not None:
        backend = {"backend": "redis", "redis": {"url": redis_url, "timeout": 0.5}}
    return {
        "rules": [str(rules)],
        "routes": [{"upstream": "app", "web_acl": "fleet"}],
        "admin": {"token": TOKEN},
        "state": {**backend, **state},
        "decision_log": {"destination": "off"},
    }


async def burst(urls: list[str], total: int, parallel: int = 20) -> list[int]:
    """``total`` requests spread over the proxies, ``parallel`` at a time."""
    statuses: list[int] = []
    queue = list(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i = queue.pop()
            async with session.get(urls[i % len(urls)] + "/status/200") as response:
                statuses.append(response.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(parallel)))
    return statuses


async def state_up(proxy: RunningProxy) -> float | None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            proxy.admin_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r,
    ):
        text = await r.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "wafproxy_state_up":
                return sample.value
    return None


async def test_two_proxy_processes_hold_one_global_limit(
    spawn_proxy: SpawnProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = fleet_config(tmp_path, redis_server.url)
    one = await spawn_proxy(config)
    two = await spawn_proxy(config)
    statuses = await burst([one.url, two.url], 3 * LIMIT)
    allowed = statuses.count(200)
    assert LIMIT <= allowed <= LIMIT * 1.01, allowed
    assert statuses.count(429) == 3 * LIMIT - allowed


async def test_an_entry_added_on_one_proxy_blocks_on_the_other_within_a_second(
    spawn_proxy: SpawnProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = fleet_config(tmp_path, redis_server.url)
    one = await spawn_proxy(config)
    two = await spawn_proxy(config)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            one.admin_url + "/api/ip-sets/blocklist/entries",
            json={"address": "127.0.0.1", "ttl": 60},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            assert response.status == 201
        loop = asyncio.get_running_loop()
        added = loop.time()
        while True:
            async with session.get(two.url + "/") as response:
                if response.status == 403:
                    break
            assert loop.time() - added < 1.0, "not blocked on the other proxy within a second"
            await asyncio.sleep(0.05)


async def test_redis_killed_mid_run_then_back(
    start_proxy: StartProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    proxy = await start_proxy(fleet_config(tmp_path, redis_server.url))
    first = await burst([proxy.url], LIMIT + 10, parallel=5)
    assert first.count(200) == LIMIT
    redis_server.kill()
    during = await burst([proxy.url], 50, parallel=5)
    assert during == [200] * 50  # on_state_error: allow (fail open)
    assert await state_up(proxy) == 0
    redis_server.start()  # empty: counting starts again
    for _ in range(100):
        if await state_up(proxy) == 1:
            break
        await asyncio.sleep(0.05)
    after = await burst([proxy.url], LIMIT + 10, parallel=5)
    assert after.count(200) == LIMIT


async def test_redis_down_with_on_state_error_block(
    start_proxy: StartProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = fleet_config(tmp_path, redis_server.url, on_state_error="block")
    proxy = await start_proxy(config)
    assert await burst([proxy.url], 3, parallel=1) == [200] * 3
    redis_server.kill()
    assert await burst([proxy.url], 3, parallel=1) == [429] * 3


async def test_workers_with_the_memory_state_say_how_limits_hold(
    spawn_proxy: SpawnProxy, tmp_path: Path
) -> None:
    proxy = await spawn_proxy(fleet_config(tmp_path, None), workers=2)
    text = proxy.stderr_path.read_text()
    assert text.count("limit/2 (rounded up)") == 1, text
