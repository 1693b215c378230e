"""Start processes pinned to a core, wait until they answer HTTP, read their peak RSS, stop them."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT = 60.0
NON_2XX_GRACE = 5.0


class StartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    """stderr (and stdout unless redirected elsewhere) of the process."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(core: int, cmd: Sequence[str]) -> list[str]:
    """``taskset`` execs the command, so the Popen pid is the pinned process itself."""
    return ["taskset", "-c", str(core), *cmd]


@contextlib.contextmanager
def running(
    name: str,
    cmd: Sequence[str],
    *,
    ready_port: int,
    log_dir: Path,
    stdout: Path | None = None,
    cwd: Path | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[Running]:
    """Run ``cmd`` until the block ends; ready once GET / on ``ready_port`` answers 2xx."""
    log = log_dir / f"{name}.stderr.log"
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(log.open("wb"))
        out = stack.enter_context(stdout.open("wb")) if stdout is not None else err
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=cwd)
        try:
            wait_ready(name, proc, ready_port, log, ready_timeout)
            yield Running(name, proc, log)
        finally:
            stop(proc)


def wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    port: int,
    log: Path,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Wait for a 2xx; give up early when the port keeps answering something else."""
    deadline = time.monotonic() + timeout
    refusing_since: float | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"{name} exited with {proc.returncode}:\n{tail(log)}")
        status = probe(port)
        if status is not None and 200 <= status < 300:
            return
        if status is None:
            refusing_since = None
        elif refusing_since is None:
            refusing_since = time.monotonic()
        elif time.monotonic() - refusing_since > NON_2XX_GRACE:
            raise StartError(f"{name} answers GET / with {status}:\n{tail(log)}")
        time.sleep(0.1)
    raise StartError(f"{name} not ready after {timeout:.0f} s:\n{tail(log)}")


def probe(port: int) -> int | None:
    """The status of GET / on the port, or None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": "shop.example.com"})
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (via /proc/PID/task/*/children)."""
    out = [pid]
    index = 0
    while index < len(out):
        out.extend(_children(out[index]))
        index += 1
    return out


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(p) for p in text.split())
    return found


def peak_rss_kib(pid: int) -> int:
    """Sum of VmHWM (peak resident set) over ``pid`` and its descendants, in KiB."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far (every thread counted)."""
    ticks = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / CLOCK_TICKS
