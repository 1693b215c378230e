"""The admin app: /healthz, /readyz, /metrics (token), and metric values after known traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from conftest import RawConnection, RunningProxy, StartProxy

    OpenRaw = Callable[[int], Awaitable[RawConnection]]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(
    client: aiohttp.ClientSession, proxy: RunningProxy
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with client.get(proxy.admin_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(await response.text())


async def test_healthz_and_readyz(proxy: RunningProxy, client: aiohttp.ClientSession) -> None:
    async with client.get(proxy.admin_url + "/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
    async with client.get(proxy.admin_url + "/readyz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ready"})


async def test_readyz_is_503_when_every_target_of_a_route_failed(
    start_proxy: StartProxy, client: aiohttp.ClientSession, dead_target: str
) -> None:
    app = {"targets": [dead_target], "max_fails": 1, "fail_timeout": 30}
    proxy = await start_proxy({"upstreams": {"app": app}})
    async with client.get(proxy.admin_url + "/readyz") as response:
        assert response.status == 200
    async with client.get(proxy.url + "/echo") as response:
        assert response.status == 502
    async with client.get(proxy.admin_url + "/readyz") as response:
        assert response.status == 503
        data = await response.json()
    assert data["status"] == "unavailable"
    assert "upstream 'app'" in data["reasons"][0]
    async with client.get(proxy.admin_url + "/healthz") as response:
        assert response.status == 200


async def test_metrics_token(start_proxy: StartProxy, client: aiohttp.ClientSession) -> None:
    proxy = await start_proxy({"admin": {"token": "s3cret"}})
    async with client.get(proxy.admin_url + "/metrics") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = {"Authorization": "Bearer nope"}
    async with client.get(proxy.admin_url + "/metrics", headers=wrong) as response:
        assert response.status == 401
    basic = {"Authorization": "Basic s3cret"}
    async with client.get(proxy.admin_url + "/metrics", headers=basic) as response:
        assert response.status == 401
    right = {"Authorization": "Bearer s3cret"}
    async with client.get(proxy.admin_url + "/metrics", headers=right) as response:
        assert response.status == 200
        assert "wafproxy_requests_total" in await response.text()
    for probe in ("/healthz", "/readyz"):
        async with client.get(proxy.admin_url + probe) as response:
            assert response.status == 200


async def test_metrics_after_known_traffic(
    start_proxy: StartProxy,
    client: aiohttp.ClientSession,
    dead_target: str,
    raw_connections: OpenRaw,
) -> None:
    routes = [
        {
            "host": "*",
            "path_prefix": "/dead",
            "upstream": "dead",
            "web_acl": "test",
            "name": "dead",
        },
        {"host": "*", "upstream": "app", "web_acl": "test", "name": "main"},
    ]
    changes = {
        "routes": routes,
        "upstreams": {"dead": {"targets": [dead_target]}},
        "limits": {"max_body_bytes": 50_000},
    }
    proxy = await start_proxy(changes)
    for path in ("/echo", "/echo", "/status/200", "/blocked", "/blocked/x", "/teapot", "/dead/x"):
        async with client.get(proxy.url + path) as response:
            await response.read()
    async with client.post(proxy.url + "/t/digest", data=b"z" * 20_000) as response:
        assert response.status == 200  # past inspect_body_bytes: inspected in part
    async with client.post(proxy.url + "/t/digest", data=b"z" * 60_000) as response:
        assert response.status == 413
    conn = await raw_connections(proxy.port)
    await conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    assert (await conn.response()).status == 400

    found = await scrape(client, proxy)
    requests = "wafproxy_requests_total"
    assert value(found, requests, route="main", acl="test", action="allow") == 4
    assert value(found, requests, route="main", acl="test", action="block") == 4
    assert value(found, requests, route="dead", acl="test", action="allow") == 1
    matches = "wafproxy_rule_matches_total"
    assert value(found, matches, acl="test", rule="tag-echo", action="count") == 2
    assert value(found, matches, acl="test", rule="block-blocked", action="block") == 2
    assert value(found, matches, acl="test", rule="teapot", action="block") == 1
    errors = "wafproxy_upstream_errors_total"
    assert value(found, errors, route="dead", kind="connect") == 1
    oversize = "wafproxy_body_oversize_total"
    assert value(found, oversize, route="main", kind="inspect") == 1
    assert value(found, oversize, route="main", kind="reject") == 1
    assert value(found, "wafproxy_bad_requests_total", reason="malformed") == 1
    assert value(found, "wafproxy_bad_requests_total", reason="body_too_large") == 1
    assert value(found, "wafproxy_in_flight_requests", route="main") == 0
    assert value(found, "wafproxy_waf_evaluation_seconds_count", acl="test") == 8
    assert value(found, "wafproxy_upstream_seconds_count", route="main") == 4
    lines = await proxy.wait_decisions(9)
    statuses = sorted(line["responseCodeSent"] for line in lines)
    assert statuses == [200, 200, 200, 200, 403, 403, 413, 418, 502]
