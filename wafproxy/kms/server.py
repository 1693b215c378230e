"""``wafproxy kms serve``: the keystore over HTTP, speaking AWS KMS's JSON protocol.

Every request is authenticated by its SigV4 signature against the principals' access keys
(sigv4.py) and answered the way AWS KMS answers (wire.py): ``POST /`` with
``X-Amz-Target: TrentService.<Operation>``. Calls run on worker threads (the keystore does file
I/O under a lock); every one, refused ones included, is audited.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass

from aiohttp import web

from wafproxy.kms import sigv4, wire
from wafproxy.kms.audit import Call
from wafproxy.kms.errors import INTERNAL, UNKNOWN_OPERATION, KmsError
from wafproxy.kms.policy import Caller
from wafproxy.kms.service import Kms

log = logging.getLogger("wafproxy.kms")
MAX_REQUEST_BYTES = 256 * 1024
KMS_KEY = web.AppKey("kms", Kms)


def build_kms_app(kms: Kms) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[KMS_KEY] = kms
    app.router.add_post("/", handle)
    return app


async def handle(request: web.Request) -> web.Response:
    kms = request.app[KMS_KEY]
    body = await request.read()
    operation = wire.operation_from_target(request.headers.get("X-Amz-Target")) or "Unknown"
    call = Call(
        operation,
        Caller("anonymous", "", kms.account, actions=()),
        kms.region,
        source_ip=request.remote or "",
        user_agent=request.headers.get("User-Agent", "")[:256],
    )
    try:
        call.caller = await asyncio.to_thread(_authenticate, kms, request, body)
        if operation == "Unknown":
            raise KmsError(UNKNOWN_OPERATION, "Missing or unknown X-Amz-Target")
        params = wire.decode_request(body)
    except KmsError as exc:
        kms.audit.write(call.event(exc.code, exc.message))
        return _error(exc, call.request_id)
    try:
        result = await asyncio.to_thread(kms.call, operation, params, call)
    except KmsError as exc:
        return _error(exc, call.request_id)
    except Exception:
        log.exception("KMS %s failed", operation)
        return _error(KmsError(INTERNAL, "internal error"), call.request_id)
    return web.Response(
        body=wire.encode_response(result),
        headers={"Content-Type": wire.CONTENT_TYPE, "x-amzn-RequestId": call.request_id},
    )


def _authenticate(kms: Kms, request: web.Request, body: bytes) -> Caller:
    signed = sigv4.SignedRequest(
        method=request.method,
        path=request.raw_path.partition("?")[0],
        query=request.query_string,
        headers=list(request.headers.items()),
        body=body,
    )
    found: dict[str, Caller] = {}

    def secret_for(access_key_id: str) -> str | None:
        match = kms.caller_for_access_key(access_key_id)
        if match is None:
            return None
        found["caller"] = match[0]
        return match[1]

    sigv4.verify(signed, secret_for, region=kms.region)
    return found["caller"]


def _error(error: KmsError, request_id: str) -> web.Response:
    return web.Response(
        status=error.http_status,
        body=wire.encode_error(error),
        headers={
            "Content-Type": wire.CONTENT_TYPE,
            "x-amzn-RequestId": request_id,
            "X-Amzn-ErrorType": error.code,
        },
    )


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int


async def serve(kms: Kms, options: ServeOptions, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``). Announces the bound address on stderr."""
    runner = web.AppRunner(build_kms_app(kms), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    port = runner.addresses[0][1]
    host = f"[{options.host}]" if ":" in options.host else options.host
    print(f"wafproxy kms: listening on http://{host}:{port}", file=sys.stderr, flush=True)
    stop_event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_event.set)
    try:
        await stop_event.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        kms.audit.close()
    return 0
