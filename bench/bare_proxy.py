"""The baseline: the simplest correct streaming aiohttp + uvloop pass-through proxy.

One ClientSession with keep-alive to the upstream; forwards method, path, query, headers (less
hop-by-hop ones) and the body as a stream; streams the response back. No inspection at all, so
wafproxy's ratio to it is the cost of being a WAF on the same framework.
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web
from multidict import CIMultiDictProxy

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade",
    }
)  # fmt: skip
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


def end_to_end(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]


async def forward(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION]
    url = request.app[UPSTREAM] + request.raw_path
    body = request.content if request.body_exists else None
    try:
        async with session.request(
            request.method, url, headers=end_to_end(request.headers), data=body,
            allow_redirects=False,
        ) as upstream:  # fmt: skip
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            response.headers.extend(end_to_end(upstream.headers))
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientError:
        return web.Response(status=502, text="bad gateway\n")


async def open_session(app: web.Application) -> None:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=75)
    app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)


async def close_session(app: web.Application) -> None:
    await app[SESSION].close()


def build_app(upstream: str) -> web.Application:
    app = web.Application(handler_args={"auto_decompress": False})
    app[UPSTREAM] = upstream.rstrip("/")
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(
        build_app(args.upstream), host=args.host, port=args.port, access_log=None,
        print=None, backlog=1024, loop=uvloop.new_event_loop(),
    )  # fmt: skip


if __name__ == "__main__":
    main()
