"""Two real apps for the scanner to assess, served on 127.0.0.1.

``weak_app`` has every weakness planted on purpose (the PLANTED table says which finding each
one must produce, with its severity band); ``good_app`` is configured well and answers 200 to
every path (a soft 404) so that path probes must not be fooled.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

WEAK_SERVER = "Apache/2.4.49 (Unix)"

# (type, subject, severity band) of every planted weakness; {port} is the extra open port
PLANTED: tuple[tuple[str, str, str], ...] = (
    ("SECURITY_HEADERS", "header:content-security-policy", "medium"),
    ("SECURITY_HEADERS", "header:frame-protection", "medium"),
    ("SECURITY_HEADERS", "header:x-content-type-options", "low"),
    ("SECURITY_HEADERS", "header:referrer-policy", "low"),
    ("INSECURE_COOKIE", "cookie:sessionid", "medium"),
    ("CORS_MISCONFIGURATION", "cors:arbitrary-origin", "high"),
    ("EXPOSED_SENSITIVE_PATH", "path:/.git/HEAD", "high"),
    ("EXPOSED_SENSITIVE_PATH", "path:/.env", "critical"),
    ("DANGEROUS_HTTP_METHOD", "method:TRACE", "medium"),
    ("DANGEROUS_HTTP_METHOD", "method:PUT,DELETE", "medium"),
    ("INFORMATION_DISCLOSURE", "banner:server", "low"),
    ("INFORMATION_DISCLOSURE", "debug-page", "medium"),
    ("INFORMATION_DISCLOSURE", "listing:/static/", "medium"),
    ("PACKAGE_VULNERABILITY", "CVE-2021-41773:apache-httpd", "high"),
    ("PACKAGE_VULNERABILITY", "CVE-2021-42013:apache-httpd", "critical"),
    ("NETWORK_REACHABILITY", "tcp:{port}", "medium"),
)


async def weak_home(request: web.Request) -> web.Response:
    if "'" in request.query.get("id", ""):
        return _debug_page()
    response = web.Response(
        text="<html><body><h1>Weak shop</h1></body></html>", content_type="text/html"
    )
    response.set_cookie("sessionid", "8f14e45fceea167a", path="/")
    return response


def _debug_page() -> web.Response:
    """What a framework in debug mode answers to input it chokes on."""
    try:
        int("1'")
    except ValueError:
        trace = traceback.format_exc()
    return web.Response(status=500, text=f"Internal Server Error\n\n{trace}")


async def weak_trace(request: web.Request) -> web.Response:
    echoed = [f"{request.method} {request.path_qs} HTTP/1.1"]
    echoed += [f"{name}: {value}" for name, value in request.headers.items()]
    return web.Response(text="\r\n".join(echoed) + "\r\n", content_type="message/http")


async def weak_options(request: web.Request) -> web.Response:
    return web.Response(headers={"Allow": "GET, HEAD, OPTIONS, TRACE, PUT, DELETE"})


async def git_head(request: web.Request) -> web.Response:
    return web.Response(text="ref: refs/heads/main\n")


async def dotenv(request: web.Request) -> web.Response:
    return web.Response(text="APP_ENV=production\nDB_PASSWORD=hunter2\nSECRET_KEY=abc\n")


@web.middleware
async def weak_headers(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["Server"] = WEAK_SERVER
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def weak_app(static_dir: Path) -> web.Application:
    (static_dir / "logo.txt").write_text("logo\n")
    (static_dir / "backup-2024.tar").write_text("not really\n")
    app = web.Application(middlewares=[weak_headers])
    app.router.add_get("/", weak_home)
    app.router.add_route("TRACE", "/", weak_trace)
    app.router.add_route("OPTIONS", "/", weak_options)
    app.router.add_get("/.git/HEAD", git_head)
    app.router.add_get("/.env", dotenv)
    app.router.add_static("/static/", static_dir, show_index=True)
    return app


# -- the well-configured app -----------------------------------------------------------------------
GOOD_HEADERS = {
    "Server": "shop",
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
GOOD_PAGE = "<!doctype html><html><head><title>Shop</title></head><body>Welcome</body></html>"


async def good_any(request: web.Request) -> web.Response:
    """200 and the same page for every path (a soft 404), 405 for TRACE, a plain 400 for
    input it does not like: no detail leaks."""
    if request.method == "TRACE":
        return web.Response(status=405, text="method not allowed\n", headers=GOOD_HEADERS)
    if request.method == "OPTIONS":
        return web.Response(headers={**GOOD_HEADERS, "Allow": "GET, HEAD, OPTIONS"})
    if "'" in request.query.get("id", ""):
        return web.Response(status=400, text="bad request\n", headers=GOOD_HEADERS)
    response = web.Response(text=GOOD_PAGE, content_type="text/html", headers=GOOD_HEADERS)
    response.set_cookie("session", "0d5e3", path="/", secure=True, httponly=True, samesite="Lax")
    return response


def good_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", good_any)
    return app


def same_body_app(body: str) -> web.Application:
    """Answers 200 with the same body for every path: a soft 404 whose page happens to look
    like a config file."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, headers={"Server": "x"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


# -- serving ---------------------------------------------------------------------------------------
@dataclass
class Served:
    url: str
    port: int


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[Served]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    try:
        yield Served(f"http://127.0.0.1:{port}", port)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def open_port() -> AsyncIterator[int]:
    """An extra TCP service on 127.0.0.1 that accepts and closes connections."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
