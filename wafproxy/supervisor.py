"""Multi-process serving: forked workers sharing the listeners (SO_REUSEPORT), one metrics dir."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import values

from wafproxy.config.model import ServiceConfig
from wafproxy.config.runtime import Runtime
from wafproxy.metrics import MULTIPROC_ENV, mark_process_dead
from wafproxy.proxy_server import SHUTDOWN_SECONDS, ExtraApp, run_loop, serve

log = logging.getLogger("wafproxy")


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
            return run_loop(
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
