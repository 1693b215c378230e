"""``wafproxy run`` as a process: workers sharing one port, one scrape for all, restarts,
startup failures and graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wafproxy.metrics import FLUSH_SECONDS

if TYPE_CHECKING:
    from conftest import ProxyProcess, SpawnProxy

pytestmark = pytest.mark.integration


def bytes_read(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


async def wait_for_children(proxy: ProxyProcess, count: int, exclude: int = 0) -> list[int]:
    for _ in range(200):
        children = [pid for pid in proxy.children() if pid != exclude]
        if len(children) == count:
            return children
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} workers, found {proxy.children()}")


async def fresh_connection_requests(url: str, count: int) -> None:
    """Each request on a new connection, so SO_REUSEPORT spreads them over the workers."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(count):
            async with client.get(url + "/status/200") as response:
                assert response.status == 200


async def requests_counted(proxy: ProxyProcess) -> float:
    async with (
        aiohttp.ClientSession() as client,
        client.get(proxy.admin_url + "/metrics") as response,
    ):
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "wafproxy_requests_total"
    )


async def requests_counted_within(proxy: ProxyProcess, expected: float, seconds: float) -> float:
    """Each worker's share of a scrape is at most FLUSH_SECONDS old."""
    deadline = time.monotonic() + seconds
    counted = await requests_counted(proxy)
    while counted != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        counted = await requests_counted(proxy)
    return counted


async def test_two_workers_serve_one_port_and_one_scrape_shows_both(
    spawn_proxy: SpawnProxy,
) -> None:
    proxy = await spawn_proxy(workers=2)
    workers = await wait_for_children(proxy, 2)
    before = {pid: bytes_read(pid) for pid in workers}
    sent = 0
    for _ in range(20):
        await fresh_connection_requests(proxy.url, 20)
        sent += 20
        if all(bytes_read(pid) - before[pid] > 2000 for pid in workers):
            break
    assert all(bytes_read(pid) - before[pid] > 2000 for pid in workers), "one worker idle"
    assert await requests_counted_within(proxy, sent, FLUSH_SECONDS * 3) == sent

    os.kill(workers[0], signal.SIGKILL)
    await exited(workers[0])  # until then new connections may still land in its queue (reset)
    await fresh_connection_requests(proxy.url, 10)  # the other worker keeps serving
    restarted = await wait_for_children(proxy, 2, exclude=workers[0])
    assert workers[1] in restarted and workers[0] not in restarted
    assert await asyncio.to_thread(proxy.stop) == 0


async def exited(pid: int, timeout: float = 10.0) -> None:
    """The process is gone or a zombie: its listening socket is closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit")


def test_workers_that_cannot_bind_fail_the_run(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "wafproxy.yaml"
        config.write_text(
            f"listeners: [{{listen: '127.0.0.1:{port}'}}]\n"
            "routes: [{upstream: app}]\n"
            "upstreams: {app: {targets: ['http://127.0.0.1:9']}}\n"
            "admin: {listen: null}\n"
        )
        command = [sys.executable, "-m", "wafproxy", "run", "-c", str(config), "--workers", "2"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "address already in use" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_in_flight_requests_finish(
    spawn_proxy: SpawnProxy, workers: int
) -> None:
    proxy = await spawn_proxy(workers=workers)
    async with aiohttp.ClientSession() as client:
        slow = asyncio.ensure_future(client.get(proxy.url + "/slow?seconds=1"))
        await asyncio.sleep(0.4)
        proxy.process.send_signal(signal.SIGTERM)
        response = await slow
        assert response.status == 200
        assert (await response.json()) == {"slept": 1.0}
        response.release()
    assert await asyncio.to_thread(proxy.process.wait, 20) == 0
