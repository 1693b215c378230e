"""Through a real proxy: rate-based rules enforced and logged, the admin API (managed keys,
dynamic IP set entries, authentication), the ``wafproxy ip-sets`` / ``rate-based`` commands,
and dynamic entries that survive a restart with either backend."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from wafproxy.cli import main

if TYPE_CHECKING:
    from conftest import RunningProxy, StartProxy

pytestmark = pytest.mark.integration
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = """\
web_acl: limits
default_action: allow
ip_sets:
  blocklist: {dynamic: true}
rules:
  - name: blocked-ips
    priority: 1
    action: block
    statement: {ip_set: {ref: blocklist}}
  - name: status-limit
    priority: 2
    action: {block: {custom_response: {response_code: 429}}}
    statement:
      rate_based:
        limit: 5
        evaluation_window_sec: 60
        scope_down_statement:
          byte_match: {field: uri_path, constraint: starts_with, value: /status}
"""


def changes(tmp_path: Path, state: dict[str, Any] | None = None, **admin: Any) -> dict[str, Any]:
    rules = tmp_path / "limits.yaml"
    rules.write_text(RULES)
    return {
        "rules": [str(rules)],
        "routes": [{"upstream": "app", "web_acl": "limits"}],
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN, **admin},
        "state": state or {"dir": str(tmp_path / "state")},
    }


async def statuses(client: aiohttp.ClientSession, url: str, count: int) -> list[int]:
    out = []
    for _ in range(count):
        async with client.get(url) as response:
            out.append(response.status)
    return out


async def api(
    client: aiohttp.ClientSession,
    proxy: RunningProxy,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with client.request(
        method, proxy.admin_url + path, json=body, headers=AUTH if headers is None else headers
    ) as response:
        return response.status, await response.json()


async def test_rate_limit_enforced_logged_and_listed(
    start_proxy: StartProxy, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start_proxy(changes(tmp_path))
    assert await statuses(client, proxy.url + "/status/200", 7) == [200] * 5 + [429] * 2
    assert await statuses(client, proxy.url + "/", 2) == [200, 200]  # not in scope
    lines = await proxy.wait_decisions(9)
    limited = [line for line in lines if line["terminatingRuleId"] == "status-limit"]
    assert len(limited) == 2
    assert limited[0]["terminatingRuleType"] == "RATE_BASED"
    assert limited[0]["rateBasedRuleList"] == [
        {
            "rateBasedRuleId": "limits//status-limit",
            "rateBasedRuleName": "status-limit",
            "limitKey": "IP",
            "maxRateAllowed": 5,
            "evaluationWindowSec": "60",
        }
    ]
    status, listing = await api(client, proxy, "GET", "/api/rate-based")
    assert status == 200
    assert listing["rules"] == [
        {
            "web_acl": "limits",
            "rule_group": None,
            "rule": "status-limit",
            "limit": 5,
            "enforced_limit": 5,
            "evaluation_window_sec": 60,
            "aggregate_key_type": "IP",
            "keys_over_limit": 1,
        }
    ]
    status, keys = await api(client, proxy, "GET", "/api/rate-based/limits/status-limit")
    assert status == 200
    assert keys["managed_keys_ipv4"] == {
        "ip_address_version": "IPV4",
        "addresses": ["127.0.0.1/32"],
    }
    assert keys["keys"] == [{"key": "127.0.0.1", "count": 7, "components": []}]
    status, _ = await api(client, proxy, "GET", "/api/rate-based/limits/nope")
    assert status == 404


async def test_dynamic_ip_set_entries_through_the_admin_api(
    start_proxy: StartProxy, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start_proxy(changes(tmp_path))
    entries = "/api/ip-sets/blocklist/entries"
    assert (await api(client, proxy, "POST", entries, {"address": "127.0.0.1"}, {}))[0] == 401
    assert (await api(client, proxy, "GET", entries, headers={}))[0] == 401
    assert (await api(client, proxy, "POST", "/api/ip-sets/nope/entries", {"address": "1.2.3.4"}))[
        0
    ] == 404
    status, body = await api(client, proxy, "POST", entries, {"address": "300.1.1.1"})
    assert (status, body["error"]) == (400, "not an IP address or CIDR: '300.1.1.1'")
    status, body = await api(client, proxy, "POST", entries, {"address": "1.2.3.4", "ttl": -1})
    assert status == 400
    status, body = await api(
        client, proxy, "POST", entries, {"address": "127.0.0.1", "ttl": 600, "reason": "test"}
    )
    assert status == 201 and body["added"][0]["address"] == "127.0.0.1/32"
    assert await statuses(client, proxy.url + "/", 1) == [403]
    status, body = await api(client, proxy, "GET", entries)
    assert [e["address"] for e in body["entries"]] == ["127.0.0.1/32"]
    assert body["entries"][0]["reason"] == "test"
    status, body = await api(client, proxy, "GET", "/api/ip-sets")
    assert {"name": "blocklist", "entries": 1} in body["ip_sets"]  # beside wafproxy-detect's
    status, body = await api(client, proxy, "DELETE", entries + "?address=127.0.0.1/32")
    assert status == 200
    assert await statuses(client, proxy.url + "/", 1) == [200]
    assert (await api(client, proxy, "DELETE", entries + "?address=127.0.0.1"))[0] == 404


async def test_changing_ip_sets_needs_a_configured_token(
    start_proxy: StartProxy, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start_proxy(changes(tmp_path, token=None))
    entries = "/api/ip-sets/blocklist/entries"
    status, body = await api(client, proxy, "POST", entries, {"address": "127.0.0.1"}, {})
    assert status == 403 and "admin.token" in body["error"]
    assert (await api(client, proxy, "GET", entries, headers={}))[0] == 200


async def test_entries_expire_on_time(
    start_proxy: StartProxy, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start_proxy(changes(tmp_path))
    body = {"address": "127.0.0.1", "ttl": 0.5}
    assert (await api(client, proxy, "POST", "/api/ip-sets/blocklist/entries", body))[0] == 201
    assert await statuses(client, proxy.url + "/", 1) == [403]
    await asyncio.sleep(0.6)
    assert await statuses(client, proxy.url + "/", 1) == [200]


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_entries_survive_a_proxy_restart(
    start_proxy: StartProxy,
    client: aiohttp.ClientSession,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    state: dict[str, Any] = {"dir": str(tmp_path / "state")}
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        state = {"backend": "redis", "redis": {"url": server.url}}
    first = await start_proxy(changes(tmp_path, state))
    body = {"address": "127.0.0.0/8", "ttl": 3600, "reason": "restart"}
    assert (await api(client, first, "POST", "/api/ip-sets/blocklist/entries", body))[0] == 201
    await first.server.stop()
    second = await start_proxy(changes(tmp_path, state))
    assert await statuses(client, second.url + "/", 1) == [403]


async def test_the_cli_changes_and_lists_entries(
    start_proxy: StartProxy,
    client: aiohttp.ClientSession,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy = await start_proxy(changes(tmp_path))
    common = ["--admin", proxy.admin_url, "--token", TOKEN]
    add = ["ip-sets", "add", "blocklist", "127.0.0.1", "192.0.2.0/24", "--ttl", "60", *common]
    assert await asyncio.to_thread(main, add) == 0
    assert await statuses(client, proxy.url + "/", 1) == [403]
    assert await asyncio.to_thread(main, ["ip-sets", "list", "blocklist", *common]) == 0
    assert await asyncio.to_thread(main, ["ip-sets", "list", *common]) == 0
    remove = ["ip-sets", "remove", "blocklist", "127.0.0.1", *common]
    assert await asyncio.to_thread(main, remove) == 0
    assert await statuses(client, proxy.url + "/status/200", 6) == [200] * 5 + [429]
    assert await asyncio.to_thread(main, ["rate-based", *common]) == 0
    keys = ["rate-based", "limits", "status-limit", *common]
    assert await asyncio.to_thread(main, keys) == 0
    bad = ["ip-sets", "add", "blocklist", "127.0.0.1", "--admin", proxy.admin_url]
    assert await asyncio.to_thread(main, bad) == 1
    out, err = capsys.readouterr()
    assert "added 127.0.0.1/32 to blocklist" in out
    assert "192.0.2.0/24\texpires=" in out and "127.0.0.1/32" in out
    assert "blocklist\t2 entries" in out
    assert "removed 127.0.0.1 from blocklist" in out
    assert "limits//status-limit\tlimit=5/60s\t1 keys over the limit" in out
    assert "6\t127.0.0.1" in out
    assert "401" in err
