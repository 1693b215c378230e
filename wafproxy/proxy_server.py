"""Serving in one process: the proxy, admin and extra apps started and stopped together.

``ProxyServer`` is the in-process form (tests, embedding); ``serve()`` runs one until a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from wafproxy import gctune
from wafproxy.admin.app import build_admin_app
from wafproxy.config.model import Address, Limits, ServiceConfig
from wafproxy.config.runtime import Runtime, build_runtime
from wafproxy.decisionlog import DecisionLog
from wafproxy.http1 import Http1Server, ServerLimits
from wafproxy.kms.tls import TlsManager, start_tls
from wafproxy.metrics import Metrics, multiprocess_enabled
from wafproxy.proxy import ProxyHandler
from wafproxy.reload import Reloader, RuntimeRef, new_generation
from wafproxy.scan.sidecar import Sidecars, create_sidecars
from wafproxy.state import SharedState, create_state
from wafproxy.state.metrics import StateMetrics

log = logging.getLogger("wafproxy")
SHUTDOWN_SECONDS = 15.0
ExtraApp = tuple[web.Application, str, int]


class ProxyServer:
    """The proxy, its admin app and any extra apps, started and stopped together."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        config_path: Path | None = None,
        runtime: Runtime | None = None,
        metrics: Metrics | None = None,
        extra_apps: Sequence[ExtraApp] = (),
        reuse_port: bool = False,
        watch_files: bool = True,
        announce: bool = True,
        workers: int = 1,
        schedule_scans: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        """Wall-clock seconds for the proxy's rules and the detectors (tests pass a fake)."""
        self.schedule_scans = schedule_scans
        """False in all workers but one: one process runs the scheduled scans."""
        self.sidecars = Sidecars()
        self.workers = workers
        """Processes sharing the listeners (the memory state enforces limit / workers)."""
        self.state: SharedState | None = None
        self.config_path = config_path
        self._runtime = runtime
        self.metrics = metrics
        self.extra_apps = tuple(extra_apps)
        self.reuse_port = reuse_port
        self.watch_files = watch_files
        self.announce = announce
        self._runners: list[web.AppRunner] = []
        self._http1: Http1Server | None = None
        self._listeners: list[asyncio.Server] = []
        self._flush: asyncio.Task[None] | None = None
        self._admin_runner: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None
        self.ref: RuntimeRef | None = None
        self.reloader: Reloader | None = None
        self.decision_log: DecisionLog | None = None
        self.tls: TlsManager | None = None

    async def start(self) -> None:
        runtime = self._runtime
        if runtime is None:
            runtime = await asyncio.to_thread(build_runtime, self.config)
        for warning in runtime.rule_set.warnings:
            log.warning("%s", warning)
        metrics = self.metrics = self.metrics or Metrics()
        self.ref = ref = RuntimeRef(new_generation(runtime))
        self.decision_log = DecisionLog(
            runtime.config.decision_log, on_drop=metrics.decision_log_dropped.inc
        )
        self.reloader = Reloader(
            ref, lambda r: metrics.config_reloads.labels(r).inc(), config_path=self.config_path
        )
        try:
            self.state = create_state(
                runtime.config.state,
                metrics=StateMetrics(metrics.registry),
                workers=self.workers,
                config_path=runtime.config.path,
            )
            await self.state.start()
            self.tls = await start_tls(
                runtime.config.listener_tls, runtime.config.kms, watch=self.watch_files
            )
            self.sidecars = await create_sidecars(
                runtime.config,
                lambda: ref.current.runtime,
                metrics.registry,
                proxy_address=self._proxy_address,
                skip_ports=lambda: [*self.proxy_ports, *filter(None, [self.admin_port])],
                schedule=self.schedule_scans,
                state=self.state,
            )
            await self._start_sites(ref, metrics, self.decision_log)
            await self.sidecars.start()
        except BaseException:
            await self.stop()
            raise
        if self.watch_files:
            self._watch = asyncio.ensure_future(self.reloader.watch())

    async def _start_sites(self, ref: RuntimeRef, metrics: Metrics, dlog: DecisionLog) -> None:
        config = ref.current.config
        handler = ProxyHandler(ref, metrics, dlog, self.state, self.sidecars.detect, self.clock)
        self._http1 = Http1Server(
            handler.handle,
            server_limits(config.limits),
            on_bad_request=lambda reason: metrics.bad_requests.labels(reason).inc(),
            error_answer=handler.server_error,
        )
        for address in config.listeners:
            await self._listen(self._http1, address)
        if multiprocess_enabled():  # a scrape served by another worker reads this one's files
            self._flush = asyncio.ensure_future(metrics.flush_periodically())
        if config.admin.listen is not None:
            admin_app = build_admin_app(ref, metrics, self.state, self.sidecars.admin_routes)
            admin = web.AppRunner(admin_app, access_log=None)
            self._admin_runner = await self._serve(admin, (config.admin.listen,), "admin")
        for app, host, port in self.extra_apps:
            runner = web.AppRunner(app, access_log=None)
            await self._serve(runner, (Address(host, port),), "upstream")

    async def _listen(self, http1: Http1Server, address: Address) -> None:
        tls = self.tls.context_for(address) if self.tls else None
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            http1,
            address.host,
            address.port,
            reuse_port=self.reuse_port or None,
            ssl=tls,
            # a TLS handshake is part of the head: the same deadline (asyncio's default is 60 s)
            ssl_handshake_timeout=http1.limits.header_timeout if tls is not None else None,
        )
        self._listeners.append(listener)
        if self.announce:
            port = listener.sockets[0].getsockname()[1]
            url = f"{'https' if tls else 'http'}://{Address(address.host, port)}"
            print(f"wafproxy: proxy listening on {url}", file=sys.stderr, flush=True)

    async def _serve(
        self, runner: web.AppRunner, addresses: Sequence[Address], what: str
    ) -> web.AppRunner:
        await runner.setup()
        self._runners.append(runner)
        for address in addresses:
            site = web.TCPSite(runner, address.host, address.port, reuse_port=self.reuse_port)
            await site.start()
            if self.announce:
                bound = Address(address.host, site.port)
                print(f"wafproxy: {what} listening on http://{bound}", file=sys.stderr, flush=True)
        return runner

    @property
    def proxy_ports(self) -> list[int]:
        return [int(listener.sockets[0].getsockname()[1]) for listener in self._listeners]

    @property
    def admin_port(self) -> int | None:
        ports = _ports(self._admin_runner)
        return ports[0] if ports else None

    def _proxy_address(self) -> tuple[str, str, int] | None:
        """Where the scheduled scans reach the proxy: its first listener."""
        ports = self.proxy_ports
        if not ports or self.ref is None:
            return None
        address = self.ref.current.config.listeners[0]
        tls = self.tls is not None and self.tls.context_for(address) is not None
        return ("https" if tls else "http", address.host, ports[0])

    async def reload(self) -> bool:
        assert self.reloader is not None
        reloaded = await self.reloader.reload()
        if self.tls is not None:
            reloaded = await self.tls.reload(force=True) and reloaded
        return reloaded

    async def stop(self) -> None:
        await self.sidecars.stop_scans()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._stop_listeners()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._flush is not None:
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush
            self._flush = None
        if self.reloader is not None:
            await self.reloader.close()
        if self.ref is not None:
            await self.ref.close()
        if self.decision_log is not None:
            await asyncio.to_thread(self.decision_log.close)
        await self.sidecars.stop()
        if self.state is not None:
            await self.state.close()
            self.state = None
        if self.tls is not None:
            await self.tls.close()
            self.tls = None

    async def _stop_listeners(self) -> None:
        """No new connections, then in-flight requests finish (at most SHUTDOWN_SECONDS)."""
        for listener in self._listeners:
            listener.close()
        if self._http1 is not None:
            await self._http1.shutdown(SHUTDOWN_SECONDS)
            self._http1 = None
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def server_limits(limits: Limits) -> ServerLimits:
    """The proxy listener's HTTP/1.1 limits, fixed when it starts (a reload keeps them)."""
    return ServerLimits(
        max_header_bytes=limits.max_header_bytes,
        max_headers=limits.max_headers,
        header_timeout=limits.header_read_timeout,
        keepalive_timeout=limits.keepalive_timeout,
        body_timeout=limits.body_read_timeout,
    )


def _ports(runner: web.AppRunner | None) -> list[int]:
    if runner is None:
        return []
    return [int(address[1]) for address in runner.addresses]


async def serve(
    config: ServiceConfig,
    *,
    config_path: Path | None = None,
    runtime: Runtime | None = None,
    extra_apps: Sequence[ExtraApp] = (),
    reuse_port: bool = False,
    announce: bool = True,
    stop: asyncio.Event | None = None,
    workers: int = 1,
    schedule_scans: bool = True,
    tune_gc: bool = False,
) -> int:
    """Serve until SIGTERM / SIGINT (or ``stop`` is set); SIGHUP reloads. ``tune_gc``: this
    process only serves (wafproxy/gctune.py)."""
    stop_event = stop or asyncio.Event()
    server = ProxyServer(
        config,
        config_path=config_path,
        runtime=runtime,
        extra_apps=extra_apps,
        reuse_port=reuse_port,
        announce=announce,
        workers=workers,
        schedule_scans=schedule_scans,
    )
    await server.start()
    if tune_gc:
        gctune.tune()
    loop = asyncio.get_running_loop()
    assert server.reloader is not None
    handlers = {
        signal.SIGTERM: stop_event.set,
        signal.SIGINT: stop_event.set,
        signal.SIGHUP: server.reloader.request_reload,
    }
    for signum, callback in handlers.items():
        loop.add_signal_handler(signum, callback)
    try:
        await stop_event.wait()
        log.info("shutting down")
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)
        await server.stop()
    return 0


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every POSIX platform
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
