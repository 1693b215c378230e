"""The aiohttp edge: the proxy and admin apps, the guarded HTTP protocol, serving, and workers.

``run()`` is what ``wafproxy run`` calls; ``ProxyServer`` is the same thing in-process (tests,
embedding). Two protections aiohttp lacks live here: a header-read deadline (a client trickling
header bytes is cut off after ``limits.header_read_timeout``), and quiet, counted 400s for
requests that do not parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from prometheus_client import values

from wafproxy import gctune
from wafproxy.admin.app import build_admin_app
from wafproxy.config.model import Address, ServiceConfig
from wafproxy.config.runtime import Runtime, build_runtime
from wafproxy.decisionlog import DecisionLog
from wafproxy.detect.service import DetectService
from wafproxy.kms.tls import TlsManager, start_tls
from wafproxy.metrics import MULTIPROC_ENV, Metrics, mark_process_dead
from wafproxy.proxy import ProxyHandler, error_response, new_request_id
from wafproxy.reload import Reloader, RuntimeRef, new_generation
from wafproxy.scan.sidecar import Sidecars, create_sidecars
from wafproxy.state import SharedState, create_state, workers_notice
from wafproxy.state.metrics import StateMetrics

__all__ = [
    "AppKeys",
    "ProxyServer",
    "build_admin_app",
    "build_proxy_app",
    "run",
    "serve",
]

log = logging.getLogger("wafproxy")
SHUTDOWN_SECONDS = 15.0
ExtraApp = tuple[web.Application, str, int]


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
    return app


# -- the guarded protocol --------------------------------------------------------------------------
@dataclass(frozen=True)
class EdgeGuard:
    header_timeout: float
    on_bad_request: Callable[[str], None]
    id_header: Callable[[], str]


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol plus a deadline for a request's headers, armed when a connection
    opens and when the first byte of a next request arrives, disarmed once headers parse."""

    def __init__(self, manager: web.Server, *, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._armed_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and data and self._idle():
            self._arm()
        queued = len(self._messages)
        super().data_received(data)
        if self._header_timer is not None and self._request_count > self._armed_count:
            self._disarm()
        if len(self._messages) > queued and self._current_request is not None:
            self._fail_open_body(list(self._messages)[queued:])

    def _fail_open_body(self, new: Sequence[tuple[object, object]]) -> None:
        """aiohttp turns a parse error inside a streaming body (bad chunk framing) into a 400
        for a *next* request and leaves the current body waiting forever; hand the error to the
        body reader instead, so the request fails now."""
        assert self._current_request is not None
        content = self._current_request.content
        for message, _ in new:
            error = getattr(message, "exc", None)
            if isinstance(error, Exception) and not content.is_eof():
                content.set_exception(error)
                return

    def _idle(self) -> bool:
        return not (
            self._request_in_progress
            or self._messages
            or self._upgraded
            or self._payload_parser is not None
        )

    def _arm(self) -> None:
        self._armed_count = self._request_count
        self._header_timer = self._loop.call_later(self._guard.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self._request_count == self._armed_count and not self._request_in_progress:
            self._guard.on_bad_request("timeout")
            log.debug("closing a connection that did not send its headers in time")
            self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp logs every unparsable request with a traceback; a public listener sees
        plenty, so they are counted and logged at debug. A 500 means a bug: that one is logged."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        if status >= 500:
            log.error("unhandled error for %s %s", request.method, request.path, exc_info=exc)
        else:
            self._guard.on_bad_request(_bad_request_reason(exc))
            if not isinstance(exc, BadHttpMethod):
                log.debug("bad request from %s: %s", request.remote, message or exc)
        response = error_response(status, new_request_id(), self._guard.id_header())
        response.force_close()
        return response


def _bad_request_reason(exc: BaseException | None) -> str:
    if isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
        return "header_too_large"
    return "malformed"


class GuardedServer(web.Server):
    def __init__(self, handler: Any, *, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class EdgeRunner(web.AppRunner):
    def __init__(self, app: web.Application, guard: EdgeGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        """The proxy app has no routes: its handler is called directly, skipping the router
        (which would build a 404 exception for every request) and the middleware chain."""
        plain = await super()._make_server()
        handler = self._app.get(AppKeys.handler)
        return GuardedServer(
            handler.handle if handler is not None else plain.request_handler,
            guard=self._guard,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )


# -- serving ---------------------------------------------------------------------------------------
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
        self._proxy_runner: web.AppRunner | None = None
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
        guard = EdgeGuard(
            header_timeout=config.limits.header_read_timeout,
            on_bad_request=lambda reason: metrics.bad_requests.labels(reason).inc(),
            id_header=lambda: ref.current.config.request_id.header,
        )
        proxy = EdgeRunner(
            build_proxy_app(ref, metrics, dlog, self.state, self.sidecars.detect, self.clock),
            guard,
            access_log=None,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        self._proxy_runner = await self._serve(proxy, config.listeners, "proxy")
        if config.admin.listen is not None:
            admin_app = build_admin_app(ref, metrics, self.state, self.sidecars.admin_routes)
            admin = web.AppRunner(admin_app, access_log=None)
            self._admin_runner = await self._serve(admin, (config.admin.listen,), "admin")
        for app, host, port in self.extra_apps:
            runner = web.AppRunner(app, access_log=None)
            await self._serve(runner, (Address(host, port),), "upstream")

    async def _serve(
        self, runner: web.AppRunner, addresses: Sequence[Address], what: str
    ) -> web.AppRunner:
        await runner.setup()
        self._runners.append(runner)
        for address in addresses:
            tls = self.tls.context_for(address) if self.tls and what == "proxy" else None
            site = web.TCPSite(
                runner, address.host, address.port, reuse_port=self.reuse_port, ssl_context=tls
            )
            await site.start()
            if self.announce:
                bound = Address(address.host, site.port)
                url = f"{'https' if tls else 'http'}://{bound}"
                print(f"wafproxy: {what} listening on {url}", file=sys.stderr, flush=True)
        return runner

    @property
    def proxy_ports(self) -> list[int]:
        return _ports(self._proxy_runner)

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
        for runner in self._runners:  # in-flight requests finish first (SHUTDOWN_SECONDS)
            await runner.cleanup()
        self._runners.clear()
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

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


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


def run(
    config: ServiceConfig,
    *,
    config_path: Path | None,
    workers: int = 1,
    extra_apps: Sequence[ExtraApp] = (),
) -> int:
    """Blocking. Compiles the rules first (raising ConfigErrors), then serves under uvloop;
    ``workers > 1`` forks that many processes sharing the listeners (SO_REUSEPORT)."""
    runtime = build_runtime(config)
    notice = workers_notice(config.state, workers)
    if notice is not None:
        log.warning("%s", notice)
    if workers <= 1:
        return _run_loop(
            serve(
                config,
                config_path=config_path,
                runtime=runtime,
                extra_apps=extra_apps,
                tune_gc=True,
            )
        )
    return Supervisor(config, config_path, runtime, workers, extra_apps).run()


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every POSIX platform
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- workers ---------------------------------------------------------------------------------------
class Supervisor:
    """Forks the workers, restarts one that dies, forwards SIGHUP, stops all on SIGTERM/SIGINT."""

    RESPAWN_GAP = 1.0
    STARTUP_GRACE = 3.0
    """A worker exiting with an error this soon after start (a port in use, say) fails the run."""

    def __init__(
        self,
        config: ServiceConfig,
        config_path: Path | None,
        runtime: Runtime,
        workers: int,
        extra_apps: Sequence[ExtraApp],
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.runtime = runtime
        self.workers = workers
        self.extra_apps = tuple(extra_apps)
        self.children: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self._stop = False
        self._hup = False
        self._failed = False
        self._born = time.monotonic()

    def run(self) -> int:
        metrics_dir = enable_multiprocess_metrics()
        previous = {s: signal.signal(s, self._on_signal) for s in _SUPERVISED}
        try:
            for index in range(self.workers):
                self._spawn(index)
            self._loop()
        finally:
            self._stop_children()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 1 if self._failed else 0

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        else:
            self._stop = True

    def _loop(self) -> None:
        pending: dict[int, float] = {}
        while not self._stop and not self._failed:
            if self._hup:
                self._hup = False
                self._signal_children(signal.SIGHUP)
            for index in self._reap():
                pending[index] = self.started.get(index, 0.0) + self.RESPAWN_GAP
            now = time.monotonic()
            for index, when in list(pending.items()):
                if when <= now:
                    del pending[index]
                    self._spawn(index)
            time.sleep(0.1)

    def _reap(self) -> list[int]:
        dead = []
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            index = self.children.pop(pid, None)
            if index is None:
                continue
            mark_process_dead(pid)
            code = os.waitstatus_to_exitcode(status)
            if code > 0 and time.monotonic() - self._born < self.STARTUP_GRACE:
                log.error("worker %d failed to start (exit code %d); stopping", index, code)
                self._failed = True
            else:
                log.warning("worker %d (pid %d) exited with code %d; restarting", index, pid, code)
            dead.append(index)
        return dead

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(self._child(index))
        self.children[pid] = index
        self.started[index] = time.monotonic()

    def _child(self, index: int) -> int:
        try:
            for signum in _SUPERVISED:
                signal.signal(signum, signal.SIG_DFL)
            return _run_loop(
                serve(
                    self.config,
                    config_path=self.config_path,
                    runtime=self.runtime,
                    extra_apps=self.extra_apps if index == 0 else (),
                    reuse_port=True,
                    announce=index == 0,
                    workers=self.workers,
                    schedule_scans=index == 0,
                    tune_gc=True,
                )
            )
        except OSError as exc:  # the usual one: a port in use
            log.error("worker %d: %s", index, exc)
            return 1
        except BaseException:
            log.exception("worker %d failed", index)
            return 1
        finally:
            logging.shutdown()

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _stop_children(self) -> None:
        self._signal_children(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_SECONDS + 5
        while self.children and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
                continue
            self.children.pop(pid, None)
        self._signal_children(signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


_SUPERVISED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def enable_multiprocess_metrics() -> str:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this run, so one scrape of any worker shows them all.

    prometheus_client picks its value store when it is first imported; the CLI may already have
    imported it, so the choice is made again here, before any worker creates a metric.
    """
    path = tempfile.mkdtemp(prefix="wafproxy-metrics-")
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path
