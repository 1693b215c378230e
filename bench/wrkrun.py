"""Run wrk with the shapes' req.lua and read its --latency report and the WRKDONE line."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import pinned

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
DONE = re.compile(r"^WRKDONE (.*)$", re.M)
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


@dataclass(frozen=True)
class WrkSettings:
    shape_dir: Path
    threads: int = 1
    connections: int = 32
    core: int = 1


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    problems: tuple[str, ...]
    """Why the run does not count (non-2xx answers, socket errors); empty when valid."""
    requests: int = 0
    """Requests completed (wrk's WRKDONE line)."""
    cpu_us_per_request: float | None = None
    """CPU time the system under test spent per request during the run (set by the caller)."""

    @property
    def valid(self) -> bool:
        return not self.problems


def run_wrk(settings: WrkSettings, port: int, shape: str, duration: int) -> WrkResult:
    cmd = [
        "wrk", f"-t{settings.threads}", f"-c{settings.connections}", f"-d{duration}s",
        "--latency", "-s", str(settings.shape_dir / "req.lua"), f"http://127.0.0.1:{port}/",
        "--", str(settings.shape_dir), shape,
    ]  # fmt: skip
    done = subprocess.run(
        pinned(settings.core, cmd), capture_output=True, text=True, timeout=duration + 60
    )
    if done.returncode != 0:
        return WrkResult(0.0, 0.0, 0.0, (f"wrk exited {done.returncode}: {done.stderr.strip()}",))
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> WrkResult:
    rps = RPS.search(text)
    percentiles = {m[1]: float(m[2]) * UNITS_MS[m[3]] for m in PERCENTILE.finditer(text)}
    problems = list(_done_problems(text))
    if (non2xx := NON_2XX.search(text)) and int(non2xx[1]):
        problems.append(f"{non2xx[1]} non-2xx answers")
    if rps is None or set(percentiles) != {"50", "99"}:
        problems.append("unreadable wrk report")
    done = DONE.search(text)
    counts = dict(part.split("=", 1) for part in done[1].split()) if done else {}
    return WrkResult(
        requests_per_s=float(rps[1]) if rps else 0.0,
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        problems=tuple(dict.fromkeys(problems)),
        requests=int(counts.get("requests", "0")),
    )


def _done_problems(text: str) -> list[str]:
    done = DONE.search(text)
    if done is None:
        return ["no WRKDONE line (is req.lua in use?)"]
    counts = dict(part.split("=", 1) for part in done[1].split())
    out = [f"{v} {_label(k)}" for k, v in counts.items() if k != "requests" and int(v)]
    if int(counts.get("requests", "0")) == 0:
        out.append("no requests completed")
    return out


def _label(count: str) -> str:
    return "non-2xx answers" if count == "status_errors" else f"{count} errors"
