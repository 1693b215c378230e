"""The admin aiohttp app.

/healthz and /readyz never ask for the token: orchestrator probes must work without secrets, and
they reveal only an up/down state. /metrics does when one is configured (it names routes, rules
and upstreams). The token is read from the live config on each request, so a reload rotates it.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable

from aiohttp import web

from wafproxy.metrics import Metrics, multiprocess_enabled
from wafproxy.reload import Generation, RuntimeRef
from wafproxy.state import SharedState


class AdminHandlers:
    def __init__(self, ref: RuntimeRef, metrics: Metrics) -> None:
        self.ref = ref
        self.metrics = metrics

    async def metrics_page(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="wafproxy"'},
            )
        if multiprocess_enabled():
            self.metrics.flush()  # this process's share; the others flush on their own
            body, content_type = await asyncio.to_thread(self.metrics.exposition)
        else:
            body, content_type = self.metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    def _authorized(self, request: web.Request) -> bool:
        token = self.ref.current.config.admin.token
        if not token:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        reasons = not_ready_reasons(self.ref.current)
        if reasons:
            return web.json_response({"status": "unavailable", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})


def not_ready_reasons(gen: Generation) -> list[str]:
    """Why the proxy cannot serve every route now: an upstream with all targets marked failed."""
    now = time.monotonic()
    used = dict.fromkeys(bound.upstream.name for bound in gen.runtime.routes)
    return [
        f"upstream {name!r}: every target is marked failed"
        for name in used
        if not gen.pools[name].has_healthy_target(now)
    ]


AddRoutes = Callable[[web.Application, Callable[[web.Request], bool]], None]
"""Registers a sidecar's admin endpoints, given the token check (findings, scans)."""


def build_admin_app(
    ref: RuntimeRef,
    metrics: Metrics,
    state: SharedState | None = None,
    extra_routes: AddRoutes | None = None,
) -> web.Application:
    handlers = AdminHandlers(ref, metrics)
    app = web.Application()
    app.router.add_get("/metrics", handlers.metrics_page)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    if state is not None:
        from wafproxy.admin.state_api import StateApi

        app.add_routes(StateApi(ref, state, handlers._authorized).routes())
    if extra_routes is not None:
        extra_routes(app, handlers._authorized)
    return app
