"""The catch-all proxy app and the keys it carries."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from wafproxy.decisionlog import DecisionLog
from wafproxy.detect.service import DetectService
from wafproxy.metrics import Metrics, multiprocess_enabled
from wafproxy.proxy import ProxyHandler
from wafproxy.reload import RuntimeRef
from wafproxy.state import SharedState


class AppKeys:
    runtime_ref = web.AppKey("runtime_ref", RuntimeRef)
    metrics = web.AppKey("metrics", Metrics)
    decision_log = web.AppKey("decision_log", DecisionLog)
    handler = web.AppKey("handler", ProxyHandler)


def build_proxy_app(
    runtime_ref: RuntimeRef,
    metrics: Metrics,
    decision_log: DecisionLog,
    state: SharedState | None = None,
    detect: DetectService | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The catch-all proxy app. Serve it with ``EdgeRunner`` to get the header-read deadline.

    The proxy is a middleware over an empty router rather than a ``/{tail:.*}`` route: every
    request target reaches it (``*``, absolute and authority forms included, to be refused
    with a request id), and the router runs no regex over the request path.
    """
    limits = runtime_ref.current.config.limits
    proxy_handler = ProxyHandler(runtime_ref, metrics, decision_log, state, detect, clock)

    @web.middleware
    async def proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await proxy_handler.handle(request)

    app = web.Application(
        middlewares=[proxy],
        handler_args={
            "max_line_size": limits.max_header_bytes,
            "max_field_size": limits.max_header_bytes,
            "max_headers": limits.max_headers,
            "keepalive_timeout": limits.keepalive_timeout,
            "auto_decompress": False,  # bodies reach the upstream byte for byte
        },
    )
    app[AppKeys.runtime_ref] = runtime_ref
    app[AppKeys.metrics] = metrics
    app[AppKeys.decision_log] = decision_log
    app[AppKeys.handler] = proxy_handler
    if multiprocess_enabled():
        app.cleanup_ctx.append(_flushing_metrics)
    return app


async def _flushing_metrics(app: web.Application) -> AsyncIterator[None]:
    """Workers: a scrape served by another worker reads this one's files, so they are kept
    at most ``FLUSH_SECONDS`` behind."""
    task = asyncio.create_task(app[AppKeys.metrics].flush_periodically())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
