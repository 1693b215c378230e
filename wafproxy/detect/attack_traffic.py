"""The traffic of ``wafproxy demo attack``: one scenario per detect finding type, each sent as
its own client address (X-Forwarded-For), bounded in requests, time and concurrency."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

MAX_REQUESTS = 6000
IN_FLIGHT = 16
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PATH_PROBES = 60
SENSITIVE_PATHS = (
    "/.env", "/.git/config", "/.git/HEAD", "/backup.sql", "/wp-config.php.bak", "/.htpasswd",
    "/server-status", "/phpmyadmin/", "/.DS_Store", "/id_rsa", "/actuator/env", "/site.zip",
)  # fmt: skip
SCANNER_AGENTS = ("sqlmap/1.8.2#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.5.0)")
FAILED_LOGINS = 30
COMPROMISE_FAILURES = 6
STUFFED_USERNAMES = 40
FLOOD_REQUESTS = 2400
LARGE_RESPONSES = 8
LARGE_RESPONSE_BYTES = 32 * 1024 * 1024
WAF_BLOCKS = 40
SQLI = "1' OR '1'='1"
BASELINE_CLIENTS = tuple(f"192.0.2.{n}" for n in range(10, 30))
BASELINE_RATE = 25.0
"""Requests per second of ordinary traffic while the site-wide baseline warms up."""


class Budget:
    """The run's bounds: requests sent and a deadline."""

    def __init__(self, max_requests: int, seconds: float) -> None:
        self.left = max_requests
        self.deadline = time.monotonic() + seconds
        self.sent = 0

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        self.sent += 1
        return True


@dataclass
class Client:
    """Requests to the proxy as one client address (X-Forwarded-For)."""

    session: aiohttp.ClientSession
    base: str
    address: str
    budget: Budget
    gate: asyncio.Semaphore
    agent: str = BROWSER

    async def send(self, method: str, path: str, **kw: Any) -> int:
        """The response status (0 when the budget is spent or the request failed)."""
        if not self.budget.take():
            return 0
        headers = {"X-Forwarded-For": self.address, "User-Agent": kw.pop("agent", self.agent)}
        async with self.gate:
            try:
                async with self.session.request(
                    method, self.base + path, headers=headers, allow_redirects=False, **kw
                ) as response:
                    async for _ in response.content.iter_chunked(1 << 20):
                        pass
                    return response.status
            except (TimeoutError, OSError, aiohttp.ClientError):
                return 0

    async def many(self, calls: Sequence[Callable[[], Awaitable[int]]]) -> list[int]:
        return list(await asyncio.gather(*(call() for call in calls)))

    def get(self, path: str, **kw: Any) -> Callable[[], Awaitable[int]]:
        return lambda: self.send("GET", path, **kw)

    def login(self, username: str, password: str) -> Callable[[], Awaitable[int]]:
        form = {"username": username, "password": password}
        return lambda: self.send("POST", "/login", data=form)


Play = Callable[[Client], Awaitable[object]]


@dataclass(frozen=True)
class Scenario:
    finding_type: str
    address: str
    play: Play
    """Sends the scenario's traffic as ``address``."""


async def path_probe(c: Client) -> object:
    return await c.many([c.get(f"/old/page-{n}.php") for n in range(PATH_PROBES)])


async def sensitive_files(c: Client) -> object:
    return await c.many([c.get(p) for p in SENSITIVE_PATHS])


async def scanner(c: Client) -> object:
    return await c.many([c.get("/", agent=a) for a in SCANNER_AGENTS])


async def brute_force(c: Client) -> object:
    return await c.many([c.login("demo", f"guess-{n}") for n in range(FAILED_LOGINS)])


async def stuffing(c: Client) -> object:
    return await c.many(
        [c.login(f"user{n}@example.com", "hunter2") for n in range(STUFFED_USERNAMES)]
    )


async def flood(c: Client) -> object:
    return await c.many([c.get("/products") for _ in range(FLOOD_REQUESTS)])


async def large_responses(c: Client) -> object:
    path = f"/stream?bytes={LARGE_RESPONSE_BYTES}"
    return await c.many([c.get(path) for _ in range(LARGE_RESPONSES)])


async def waf_blocks(c: Client) -> object:
    query = urllib.parse.quote(SQLI, safe="")
    return await c.many([c.get(f"/search?q={query}&n={n}") for n in range(WAF_BLOCKS)])


async def one_visit(c: Client) -> object:
    return await c.send("GET", "/")


async def compromise(c: Client) -> object:
    """Reconnaissance, attacks, then a successful login: each stage below the thresholds of
    the single-stage detectors, so this client is not blocked before it gets in."""
    await c.many([c.get(p) for p in ("/admin/", "/.env", "/backup.zip")])
    query = urllib.parse.quote(SQLI, safe="")
    await c.many([c.get(f"/search?q={query}&s={n}") for n in range(3)])
    await c.many([c.login("demo", f"wrong-{n}") for n in range(COMPROMISE_FAILURES)])
    return await c.send("POST", "/login", data={"username": "demo", "password": "demo"})


SCENARIOS = (
    Scenario("Recon:HTTP/PathProbe", "198.51.100.10", path_probe),
    Scenario("Discovery:HTTP/SensitiveFileProbe", "198.51.100.11", sensitive_files),
    Scenario("Recon:HTTP/ScannerUserAgent", "198.51.100.12", scanner),
    Scenario("UnauthorizedAccess:HTTP/BruteForce", "198.51.100.13", brute_force),
    Scenario("CredentialAccess:HTTP/CredentialStuffing", "198.51.100.14", stuffing),
    Scenario("Exfiltration:HTTP/AnomalousResponseVolume", "198.51.100.16", large_responses),
    Scenario("Behavior:HTTP/WafBlockSpike", "198.51.100.17", waf_blocks),
    Scenario("UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom", "203.0.113.66", one_visit),
    Scenario("UnauthorizedAccess:HTTP/TorIPCaller", "203.0.113.99", one_visit),
    Scenario("AttackSequence:HTTP/CompromiseAttempt", "198.51.100.18", compromise),
)
FLOOD = Scenario("Impact:HTTP/RequestFlood", "198.51.100.15", flood)


async def ordinary_traffic(clients: Sequence[Client], seconds: float, rate: float) -> None:
    """A steady trickle of browsing from many addresses: the site's learned baseline."""
    pages = ("/", "/products", "/products/1", "/products/3", "/search?q=shoes", "/login")
    end = time.monotonic() + seconds
    n = 0
    pending: set[asyncio.Task[int]] = set()
    while time.monotonic() < end:
        client = clients[n % len(clients)]
        task = asyncio.ensure_future(client.send("GET", pages[n % len(pages)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*pending)


async def send_all(
    session: aiohttp.ClientSession, base: str, budget: Budget, warmup: float
) -> None:
    """Ordinary traffic for ``warmup`` seconds (the site's baseline), every scenario at once,
    then the flood (which also makes the site's volume unusual)."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    def client(address: str) -> Client:
        return Client(session, base, address, budget, gate)

    await ordinary_traffic([client(a) for a in BASELINE_CLIENTS], warmup, BASELINE_RATE)
    await asyncio.gather(*(s.play(client(s.address)) for s in SCENARIOS))
    await FLOOD.play(client(FLOOD.address))
