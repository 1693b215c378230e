"""Shared fixtures: a real upstream (the demo app plus a few test routes) and real proxies, all on
127.0.0.1 with ports chosen by the kernel."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gzip
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from wafproxy.config.load import load_service_config
from wafproxy.demo import build_demo_app
from wafproxy.proxy_server import ProxyServer

TEST_ACL = """\
web_acl: test
default_action: allow
custom_response_bodies:
  teapot: {content_type: text/plain, content: "no tea for you\\n"}
rules:
  - name: block-blocked
    priority: 1
    action: block
    statement:
      byte_match: {field: uri_path, constraint: starts_with, value: /blocked}
  - name: teapot
    priority: 2
    action:
      block:
        custom_response:
          response_code: 418
          custom_response_body_key: teapot
          response_headers: [{name: x-why, value: policy}]
    statement:
      byte_match: {field: uri_path, constraint: starts_with, value: /teapot}
  - name: tag-echo
    priority: 3
    action: {count: {custom_request_handling: {insert_headers: [{name: tagged, value: "yes"}]}}}
    statement:
      byte_match: {field: uri_path, constraint: starts_with, value: /echo}
  - name: block-body-word
    priority: 4
    action: block
    statement:
      byte_match: {field: body, constraint: contains, value: FORBIDDEN-WORD}
"""

STRICT_ACL = """\
web_acl: strict
default_action: block
rules:
  - name: allow-public
    priority: 1
    action: allow
    statement:
      byte_match: {field: uri_path, constraint: starts_with, value: /public}
"""


# -- the upstream ----------------------------------------------------------------------------------
async def body_digest(request: web.Request) -> web.Response:
    """What arrived, byte for byte: size and sha256 of the body, and its Content-Encoding."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return web.json_response(
        {
            "size": size,
            "sha256": digest.hexdigest(),
            "content_encoding": request.headers.get("Content-Encoding"),
            "transfer_encoding": request.headers.get("Transfer-Encoding"),
        }
    )


async def hop_headers(request: web.Request) -> web.Response:
    response = web.Response(text="hop\n")
    response.headers["Connection"] = "keep-alive, X-Hop-Named"
    response.headers["X-Hop-Named"] = "1"
    response.headers["Keep-Alive"] = "timeout=5"
    response.headers["Proxy-Authenticate"] = "Basic"
    response.headers["X-End-To-End"] = "kept"
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    return response


GZIP_TEXT = b"hello compressed world\n" * 100


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(GZIP_TEXT, mtime=0),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )


async def not_modified(request: web.Request) -> web.Response:
    return web.Response(status=304, headers={"ETag": '"v1"'})


async def sized(request: web.Request) -> web.Response:
    """GET and HEAD: HEAD answers with the same Content-Length and no body."""
    return web.Response(body=b"x" * 1234, content_type="application/octet-stream")


async def ws_closer(request: web.Request) -> web.WebSocketResponse:
    """Echoes; 'bye' makes it close with 4001 and a reason; reports the code a client closed
    with on the next connection's first message (via the app's state)."""
    ws = web.WebSocketResponse(protocols=("chat", "other"))
    await ws.prepare(request)
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT and message.data == "bye":
            await ws.close(code=4001, message=b"see you")
            break
        if message.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str(f"{ws.ws_protocol}:{message.data}")
    request.app[CLOSE_CODES].append(ws.close_code)
    return ws


CLOSE_CODES = web.AppKey("close_codes", list)


async def reset_before_response(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def truncated(request: web.Request) -> web.StreamResponse:
    """Promises 100000 bytes, sends 10, then drops the connection."""
    response = web.StreamResponse(headers={"Content-Length": "100000"})
    await response.prepare(request)
    await response.write(b"0123456789")
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


def extra_routes() -> list[web.RouteDef]:
    return [
        web.post("/t/digest", body_digest),
        web.put("/t/digest", body_digest),
        web.get("/t/hop", hop_headers),
        web.get("/t/gzip", gzipped),
        web.get("/t/304", not_modified),
        web.get("/t/sized", sized),
        web.get("/t/ws", ws_closer),
        web.get("/t/reset", reset_before_response),
        web.get("/t/truncated", truncated),
    ]


@dataclass
class UpstreamServer:
    url: str
    port: int
    app: web.Application

    @property
    def close_codes(self) -> list[int | None]:
        return self.app[CLOSE_CODES]


async def start_upstream() -> tuple[UpstreamServer, web.AppRunner]:
    app = build_demo_app()
    app[CLOSE_CODES] = []
    app.add_routes(extra_routes())
    # auto_decompress off: the digest must see the bytes on the wire, not aiohttp's inflation
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site.port
    return UpstreamServer(f"http://127.0.0.1:{port}", port, app), runner


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamServer]:
    server, runner = await start_upstream()
    yield server
    await runner.cleanup()


# -- proxies ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def dead_target() -> str:
    return dead_url()


def base_config(upstream_url: str, rules_dir: Path, log_path: Path) -> dict[str, Any]:
    return {
        "listeners": [{"listen": "127.0.0.1:0"}],
        "routes": [{"host": "*", "path_prefix": "/", "upstream": "app", "web_acl": "test"}],
        "upstreams": {"app": {"targets": [upstream_url]}},
        "rules": [str(rules_dir / "test.yaml"), str(rules_dir / "strict.yaml")],
        "admin": {"listen": "127.0.0.1:0"},
        "decision_log": {"destination": str(log_path)},
    }


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class RunningProxy:
    server: ProxyServer
    config_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.proxy_ports[0]}"

    @property
    def port(self) -> int:
        return self.server.proxy_ports[0]

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.server.admin_port}"

    def decisions(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    async def wait_decisions(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The decision log is written by a background thread: wait for ``count`` lines."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            lines = self.decisions()
            if len(lines) >= count or asyncio.get_running_loop().time() > deadline:
                return lines
            await asyncio.sleep(0.02)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "test.yaml").write_text(TEST_ACL)
    (path / "strict.yaml").write_text(STRICT_ACL)
    return path


StartProxy = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
async def start_proxy(
    tmp_path: Path, upstream: UpstreamServer, rules_dir: Path
) -> AsyncIterator[StartProxy]:
    """``await start_proxy({"limits": {...}})``: a proxy from the base config plus changes."""
    running: list[RunningProxy] = []

    async def start(changes: Mapping[str, Any] | None = None, **kwargs: Any) -> RunningProxy:
        n = len(running)
        log_path = tmp_path / f"decisions-{n}.jsonl"
        data = merge(base_config(upstream.url, rules_dir, log_path), changes or {})
        config_path = tmp_path / f"wafproxy-{n}.yaml"
        config_path.write_text(yaml.safe_dump(data))
        config = load_service_config(config_path)
        server = ProxyServer(config, config_path=config_path, announce=False, **kwargs)
        await server.start()
        proxy = RunningProxy(server, config_path, log_path)
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        await proxy.server.stop()


@pytest.fixture
async def proxy(start_proxy: StartProxy) -> RunningProxy:
    return await start_proxy()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


# -- raw HTTP over a socket ------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


class RawConnection:
    """A client that sends exactly the bytes given and parses responses strictly, so a stray
    body byte after a HEAD or 204 breaks the next response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head: bool = False, timeout: float = 5.0) -> RawResponse:
        return await asyncio.wait_for(self._response(head), timeout)

    async def _response(self, head: bool) -> RawResponse:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [
            (n.strip(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        ]
        response = RawResponse(status, headers, b"")
        if head or status in (204, 304) or 100 <= status < 200:
            return response
        length = response.header("Content-Length")
        if length is not None:
            response.body = await self.reader.readexactly(int(length))
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            response.body = await self._chunked()
        else:
            response.body = await self.reader.read()
        return response

    async def _chunked(self) -> bytes:
        out = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return out
            out += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def closed_within(self, seconds: float) -> bool:
        """True when the server closes the connection within ``seconds``."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), seconds)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return data == b"" or await self.closed_within(seconds)

    async def trickle(self, data: bytes, pause: float) -> bool:
        """Send ``data`` a byte at a time, ``pause`` seconds apart; True once the server has
        closed the connection (before every byte went out)."""
        for byte in data:
            try:
                await self.send(bytes([byte]))
            except ConnectionError:
                return True
            if await self.closed_within(pause):
                return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def raw_connections() -> AsyncIterator[Callable[[int], Awaitable[RawConnection]]]:
    opened: list[RawConnection] = []

    async def open_connection(port: int) -> RawConnection:
        conn = await RawConnection.open(port)
        opened.append(conn)
        return conn

    yield open_connection
    for conn in opened:
        await conn.close()


# -- the proxy as a separate process ---------------------------------------------------------------
@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    config_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"proxy exited: {self.stderr_path.read_text()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.admin_url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"proxy not ready: {self.stderr_path.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)


SpawnProxy = Callable[..., Awaitable[ProxyProcess]]


@pytest.fixture
async def spawn_proxy(
    tmp_path: Path, upstream: UpstreamServer, rules_dir: Path
) -> AsyncIterator[SpawnProxy]:
    """``await spawn_proxy({...changes}, workers=2)``: ``python -m wafproxy run -c ...``."""
    started: list[ProxyProcess] = []

    async def spawn(changes: Mapping[str, Any] | None = None, *, workers: int = 1) -> ProxyProcess:
        n = len(started)
        port, admin_port = free_port(), free_port()
        fixed = {
            "listeners": [{"listen": f"127.0.0.1:{port}"}],
            "admin": {"listen": f"127.0.0.1:{admin_port}"},
        }
        log_path = tmp_path / f"process-decisions-{n}.jsonl"
        data = merge(merge(base_config(upstream.url, rules_dir, log_path), fixed), changes or {})
        config_path = tmp_path / f"process-{n}.yaml"
        config_path.write_text(yaml.safe_dump(data))
        stderr_path = tmp_path / f"process-{n}.stderr"
        command = [sys.executable, "-m", "wafproxy", "run", "-c", str(config_path)]
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [*command, "--workers", str(workers)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        proxy = ProxyProcess(process, port, admin_port, config_path, stderr_path)
        started.append(proxy)
        await proxy.wait_ready()
        return proxy

    yield spawn
    for proxy in started:
        await asyncio.to_thread(proxy.stop)
