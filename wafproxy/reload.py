"""The one swappable reference, and reloads (SIGHUP or a changed file).

A reload builds the new Runtime completely (off the event loop: compiling rules can take a
while), then swaps ``RuntimeRef.current``. Requests hold the Generation they started with, so
in-flight requests finish on the old config; the old generation's upstream pools are closed once
its last request is done. A failed reload changes nothing but the error counter and the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wafproxy import gctune
from wafproxy.clientip import ClientIpResolver
from wafproxy.config.load import load_service_config
from wafproxy.config.model import ServiceConfig
from wafproxy.config.runtime import Runtime, build_runtime
from wafproxy.errors import ConfigError, ConfigErrors
from wafproxy.upstream_pool import UpstreamPool

log = logging.getLogger("wafproxy")
POLL_SECONDS = 1.0
DRAIN_LIMIT_SECONDS = 600.0
RESTART_FIELDS = ("max_header_bytes", "max_headers", "header_read_timeout", "keepalive_timeout")


@dataclass(eq=False)
class Generation:
    """A Runtime plus the live objects built for it (pools keep their connections)."""

    runtime: Runtime
    pools: Mapping[str, UpstreamPool]
    clientip: ClientIpResolver
    in_flight: int = 0
    retired: asyncio.Event | None = field(default=None, repr=False)

    @property
    def config(self) -> ServiceConfig:
        return self.runtime.config


def new_generation(runtime: Runtime, previous: Generation | None = None) -> Generation:
    """Pools whose upstream config did not change are carried over (keep-alive connections and
    failure state); changed ones start fresh but keep the state of targets still listed."""
    old = previous.pools if previous is not None else {}
    pools: dict[str, UpstreamPool] = {}
    for name, upstream in runtime.config.upstreams.items():
        prior = old.get(name)
        if prior is not None and prior.config == upstream:
            pools[name] = prior
            continue
        pools[name] = UpstreamPool(upstream)
        if prior is not None:
            pools[name].adopt_health(prior)
    return Generation(runtime, pools, ClientIpResolver(runtime.config.client_ip))


class InUse:
    """``with ref.use() as gen``: counts the request in its generation (a class, not a
    generator-based context manager: this runs for every request)."""

    __slots__ = ("gen",)

    def __init__(self, gen: Generation) -> None:
        self.gen = gen

    def __enter__(self) -> Generation:
        self.gen.in_flight += 1
        return self.gen

    def __exit__(self, *exc: object) -> None:
        gen = self.gen
        gen.in_flight -= 1
        if gen.in_flight == 0 and gen.retired is not None:
            gen.retired.set()


class RuntimeRef:
    def __init__(self, generation: Generation) -> None:
        self.current = generation

    def use(self) -> InUse:
        """The generation a request runs on from start to finish."""
        return InUse(self.current)

    def swap(self, new: Generation) -> Generation:
        old, self.current = self.current, new
        return old

    async def close(self) -> None:
        for pool in self.current.pools.values():
            await pool.close()


async def retire(old: Generation, new: Generation) -> None:
    """Close the old generation's pools that the new one does not use, after its last request."""
    stale = [p for p in old.pools.values() if all(p is not q for q in new.pools.values())]
    if not stale:
        return
    try:
        if old.in_flight:
            old.retired = asyncio.Event()
            await asyncio.wait_for(old.retired.wait(), DRAIN_LIMIT_SECONDS)
    except TimeoutError:
        log.warning("closing old upstream pools with %d requests still running", old.in_flight)
    finally:  # also when cancelled at shutdown: no session is left unclosed
        for pool in stale:
            await pool.close()


ReloadCounter = Callable[[str], None]
"""Called with ``success`` or ``error`` (the config_reloads metric)."""


class Reloader:
    def __init__(
        self, ref: RuntimeRef, count: ReloadCounter, *, config_path: Path | None = None
    ) -> None:
        self.ref = ref
        self.count = count
        self.config_path = config_path
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen = file_signature(self._watched())

    def _watched(self) -> Sequence[Path]:
        current = self.ref.current
        files = list(current.config.watched_files())
        files += [p for p in current.runtime.rule_set.read_files if p not in files]  # IP lists
        if self.config_path is not None and self.config_path not in files:
            files.insert(0, self.config_path)
        return files

    def _build(self) -> Runtime:
        if self.config_path is None:
            return build_runtime(self.ref.current.config)
        return build_runtime(load_service_config(self.config_path))

    async def reload(self) -> bool:
        """Build, then swap. True when the new config is live."""
        async with self._lock:
            before = file_signature(self._watched())
            try:
                runtime = await asyncio.to_thread(self._build)
            except (ConfigErrors, ConfigError) as exc:
                self._seen = before
                return self._failed(exc)
            except Exception:
                self._seen = before
                log.exception("reload failed")
                self.count("error")
                return False
            self._apply(runtime)
            self._seen = file_signature(self._watched())
            return True

    def _failed(self, exc: ConfigErrors | ConfigError) -> bool:
        errors = exc.errors if isinstance(exc, ConfigErrors) else (exc,)
        for error in errors:
            log.error("reload failed: %s", error)
        log.error("reload failed: keeping the running config")
        self.count("error")
        return False

    def _apply(self, runtime: Runtime) -> None:
        old = self.ref.current
        warn_restart_needed(old.config, runtime.config)
        new = new_generation(runtime, old)
        self.ref.swap(new)
        gctune.settle()
        self._spawn(retire(old, new))
        for warning in runtime.rule_set.warnings:
            log.warning("%s", warning)
        log.info("config reloaded")
        self.count("success")

    def request_reload(self) -> None:
        """For signal handlers: start a reload without waiting for it."""
        self._spawn(self.reload_quietly())

    async def reload_quietly(self) -> None:
        await self.reload()

    def _spawn(self, coro: object) -> None:
        assert asyncio.iscoroutine(coro)
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def watch(self, interval: float = POLL_SECONDS) -> None:
        """Poll the config and rule files' mtimes; reload when any changed. Runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self._lock.locked():
                continue
            if file_signature(self._watched()) != self._seen:
                await self.reload()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


Signature = tuple[tuple[str, int, int], ...]


def file_signature(paths: Sequence[Path]) -> Signature:
    """(path, mtime_ns, size) per file; a missing file is (path, -1, -1)."""
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), -1, -1))
    return tuple(out)


def warn_restart_needed(old: ServiceConfig, new: ServiceConfig) -> None:
    if old.listeners != new.listeners:
        log.warning("listeners changed: restart wafproxy to apply (still serving the old ones)")
    if old.admin.listen != new.admin.listen:
        log.warning("admin.listen changed: restart wafproxy to apply")
    if old.state != new.state:
        log.warning("state changed: restart wafproxy to apply (still using the old one)")
    for name in RESTART_FIELDS:
        if getattr(old.limits, name) != getattr(new.limits, name):
            log.warning("limits.%s changed: restart wafproxy to apply", name)
