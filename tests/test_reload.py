"""Reloads: a file change or SIGHUP builds a new runtime and swaps it; a failure keeps the old."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from wafproxy.config.load import load_service_config
from wafproxy.metrics import Metrics
from wafproxy.proxy_server import serve

if TYPE_CHECKING:
    from conftest import RunningProxy, StartProxy, UpstreamServer

pytestmark = pytest.mark.integration


def reloads(metrics: Metrics, result: str) -> float:
    body, _ = metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "wafproxy_config_reloads_total" and sample.labels == {
                "result": result
            }:
                return sample.value
    return 0.0


async def wait_for_reloads(proxy: RunningProxy, result: str, count: int) -> None:
    assert proxy.server.metrics is not None
    for _ in range(100):
        if reloads(proxy.server.metrics, result) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {result} reload")


async def status(client: aiohttp.ClientSession, url: str) -> int:
    async with client.get(url) as response:
        await response.read()
        return response.status


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


async def test_rule_file_change_reloads(
    proxy: RunningProxy, client: aiohttp.ClientSession, rules_dir: Path
) -> None:
    assert await status(client, proxy.url + "/blocked") == 403
    edit(rules_dir / "test.yaml", "value: /blocked}", "value: /denied}")
    await wait_for_reloads(proxy, "success", 1)
    assert await status(client, proxy.url + "/denied") == 403
    assert await status(client, proxy.url + "/blocked") == 404
    assert proxy.server.metrics is not None
    assert reloads(proxy.server.metrics, "error") == 0


async def test_ip_list_file_change_reloads(
    start_proxy: StartProxy, client: aiohttp.ClientSession, rules_dir: Path
) -> None:
    """IP lists read by a rule file (``ip_sets: {x: {file: ...}}``) are watched too."""
    (rules_dir / "deny.txt").write_text("# nobody yet\n192.0.2.1\n")
    (rules_dir / "deny.yaml").write_text(
        "web_acl: deny\ndefault_action: allow\n"
        "ip_sets: {denied: {file: deny.txt}}\n"
        "rules:\n  - name: deny\n    priority: 1\n    action: block\n"
        "    statement: {ip_set: {ref: denied}}\n"
    )
    routes = [{"upstream": "app", "web_acl": "deny"}]
    proxy = await start_proxy({"rules": [str(rules_dir / "deny.yaml")], "routes": routes})
    assert await status(client, proxy.url + "/status/200") == 200
    (rules_dir / "deny.txt").write_text("127.0.0.0/8  # loopback\n")
    await wait_for_reloads(proxy, "success", 1)
    assert await status(client, proxy.url + "/status/200") == 403


async def test_config_file_change_reloads(
    proxy: RunningProxy, client: aiohttp.ClientSession
) -> None:
    data = yaml.safe_load(proxy.config_path.read_text())
    data["routes"][0]["web_acl"] = "strict"
    proxy.config_path.write_text(yaml.safe_dump(data))
    await wait_for_reloads(proxy, "success", 1)
    assert await status(client, proxy.url + "/echo") == 403  # strict: default block


async def test_failed_reload_keeps_the_old_config(
    proxy: RunningProxy,
    client: aiohttp.ClientSession,
    rules_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="wafproxy")
    edit(
        rules_dir / "test.yaml",
        "constraint: starts_with, value: /blocked",
        "constraint: begins, value: /b",
    )
    await wait_for_reloads(proxy, "error", 1)
    assert await status(client, proxy.url + "/blocked") == 403
    where = f"{rules_dir / 'test.yaml'}:"
    errors = [r.getMessage() for r in caplog.records if where in r.getMessage()]
    assert errors and "begins" in errors[0]
    line_col = errors[0].split(where, 1)[1].split(":")[:2]
    assert all(part.isdigit() for part in line_col)
    await asyncio.sleep(1.5)  # not retried every second while the files stay the same
    assert proxy.server.metrics is not None
    assert reloads(proxy.server.metrics, "error") == 1
    edit(
        rules_dir / "test.yaml",
        "constraint: begins, value: /b",
        "constraint: starts_with, value: /x",
    )
    await wait_for_reloads(proxy, "success", 1)
    assert await status(client, proxy.url + "/x") == 403


async def test_in_flight_requests_finish_on_the_old_config(
    proxy: RunningProxy, client: aiohttp.ClientSession, dead_target: str
) -> None:
    slow = asyncio.ensure_future(status(client, proxy.url + "/slow?seconds=1"))
    await asyncio.sleep(0.3)
    assert proxy.server.ref is not None
    old_pool = proxy.server.ref.current.pools["app"]
    data = yaml.safe_load(proxy.config_path.read_text())
    data["upstreams"]["app"]["targets"] = [dead_target]
    proxy.config_path.write_text(yaml.safe_dump(data))
    assert await proxy.server.reload()
    assert await status(client, proxy.url + "/echo") == 502
    assert await slow == 200
    for _ in range(50):
        if old_pool.connections.closed:
            break
        await asyncio.sleep(0.02)
    assert old_pool.connections.closed  # closed once its last request finished


async def test_listener_change_needs_a_restart(
    proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wafproxy")
    data = yaml.safe_load(proxy.config_path.read_text())
    data["listeners"].append({"listen": "127.0.0.1:0"})
    proxy.config_path.write_text(yaml.safe_dump(data))
    assert await proxy.server.reload()
    assert any("restart" in r.getMessage() for r in caplog.records)
    assert len(proxy.server.proxy_ports) == 1


async def test_sighup_reloads_what_the_watcher_does_not_see(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    """An edit the watcher cannot see (same size, mtime put back): only SIGHUP picks it up."""
    ips = tmp_path / "deny.txt"
    ips.write_text("192.0.2.1\n")
    rules = tmp_path / "deny.yaml"
    rules.write_text(
        "web_acl: deny\ndefault_action: allow\n"
        "ip_sets: {denied: {file: deny.txt}}\n"
        "rules:\n  - name: deny\n    priority: 1\n    action: block\n"
        "    statement: {ip_set: {ref: denied}}\n"
    )
    port, admin = free_ports(2)
    config_path = tmp_path / "sighup.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "listeners": [{"listen": f"127.0.0.1:{port}"}],
                "routes": [{"upstream": "app"}],
                "upstreams": {"app": {"targets": [upstream.url]}},
                "rules": [str(rules)],
                "admin": {"listen": f"127.0.0.1:{admin}"},
                "decision_log": {"destination": "off"},
            }
        )
    )
    stop = asyncio.Event()
    config = load_service_config(config_path)
    task = asyncio.ensure_future(serve(config, config_path=config_path, announce=False, stop=stop))
    url = f"http://127.0.0.1:{port}/status/200"
    async with aiohttp.ClientSession() as client:
        for _ in range(100):
            try:
                assert await status(client, url) == 200
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        before = ips.stat()
        ips.write_text("127.0.0.1\n")
        os.utime(ips, ns=(before.st_atime_ns, before.st_mtime_ns))
        await asyncio.sleep(1.5)
        assert await status(client, url) == 200  # the watcher did not reload
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if await status(client, url) == 403:
                break
            await asyncio.sleep(0.05)
        assert await status(client, url) == 403
    stop.set()
    assert await task == 0
