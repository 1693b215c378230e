"""A fast loopback upstream for the benchmarks: 200 with a small body for any method and path.

It reads and discards request bodies (a proxy must deliver them) and uses aiohttp's low-level
server so that it costs as little as possible next to the system under test.
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from aiohttp import web

BODY = b"ok\n"


async def answer(request: web.BaseRequest) -> web.StreamResponse:
    while await request.content.readany():
        pass
    return web.Response(body=BODY, content_type="text/plain")


async def serve(host: str, port: int) -> None:
    server = web.Server(answer, access_log=None)
    loop = asyncio.get_running_loop()
    await loop.create_server(server, host, port, backlog=1024)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
