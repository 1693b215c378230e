"""Threat detection's cost: proxy throughput with detection on vs off, and detector memory.

1. Throughput: the shipped default rules (decision log off) with and without a ``detect:``
   section (every detector at its defaults, the demo's login route; remediation off so the
   load generator's single address is never blocked, which would turn the run into 403s),
   next to the bare proxy, in the same interleaved rounds as throughput.py (wrk and the
   upstream on one core, the proxies on another, R1/R2 shapes). The ratio on/off is taken per
   round and shape, then the median (target >= 0.95).
2. Memory: Observations fed straight to every detector (no server) from ``--clients`` distinct
   addresses, each client making a not-found probe, a failed login under its own username and
   an ordinary page view. tracemalloc measures what the detectors hold once every table is
   full (``max_keys`` clients) and at the end; the second must not exceed the first by much:
   per-key tables are bounded, whatever the number of clients.

    python bench/detect_bench.py [--duration 10] [--runs 3] [--clients 1000000] [--markdown]
    python bench/detect_bench.py --quick          # the smoke test's tiny run
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import shutil
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from machine import machine_lines
from procs import free_port
from reqshapes import DEFAULT_SHAPE_DIR, SHAPE_NAMES, check_shape_dir
from systems import SYSTEMS, Context, Launch, System, wafproxy_cmd
from table import format_table
from throughput import run_all
from throughput_report import Options, Row
from wrkrun import WrkSettings

from wafproxy.detect import build_detectors
from wafproxy.detect.detector import Detector
from wafproxy.detect.observation import Observation

TARGET = 0.95
DETECT_SECTION: dict[str, object] = {
    "login_routes": [{"path": "/login", "username_field": "username"}],
    "remediation": {"enabled": False},
}
START = 1_800_000_000.0
SPREAD_SECONDS = 3600.0
"""The simulated time the clients' requests are spread over."""


# -- 1. throughput -------------------------------------------------------------------------------
def detect_system(on: bool) -> System:
    def launch(ctx: Context) -> Launch:
        port, admin = free_port(), free_port()
        config: dict[str, object] = {
            "listeners": [f"127.0.0.1:{port}"],
            "upstreams": {"app": {"targets": [ctx.upstream_url]}},
            "routes": [{"upstream": "app"}],
            "admin": {"listen": f"127.0.0.1:{admin}"},
            "decision_log": {"destination": "off"},
            "findings": {"store": ":memory:"},
        }
        if on:
            config["detect"] = DETECT_SECTION
        path = ctx.work_dir / f"detect-{'on' if on else 'off'}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return Launch([*wafproxy_cmd(), "-c", str(path)], port)

    name = "detect-on" if on else "detect-off"
    what = f"wafproxy run -c: default rules, log off, detection {'on' if on else 'off'}"
    return System(name, what, None, launch)


BARE = next(s for s in SYSTEMS if s.name == "bare")
BENCH_SYSTEMS = (BARE, detect_system(on=False), detect_system(on=True))


def round_ratios(on: Row, off: Row) -> list[float]:
    pairs = zip(on.runs, off.runs, strict=False)
    return [a.requests_per_s / b.requests_per_s for a, b in pairs if a.valid and b.valid]


def cpu_round_ratios(on: Row, off: Row) -> list[float]:
    """off's CPU time per request over on's, per round: the req/s ratio of a process that
    saturates its core, without a shared host's swings in wall-clock throughput."""
    pairs = zip(on.runs, off.runs, strict=False)
    return [
        b.cpu_us_per_request / a.cpu_us_per_request
        for a, b in pairs
        if a.valid and b.valid and a.cpu_us_per_request and b.cpu_us_per_request
    ]


def throughput_table(rows: Sequence[Row], markdown: bool) -> tuple[str, bool, bool]:
    """The table, whether every shape met the target, and whether every run was valid."""
    by_key = {(r.system.name, r.shape): r for r in rows}
    lines, ok = [], True
    valid = all(r.runs and all(run.valid for run in r.runs) for r in rows)
    for shape in dict.fromkeys(r.shape for r in rows):
        off, on, bare = (by_key.get((n, shape)) for n in ("detect-off", "detect-on", "bare"))
        if on is None or off is None:
            continue
        ratios = round_ratios(on, off)
        ratio = statistics.median(ratios) if ratios else None
        cpu_ratios = cpu_round_ratios(on, off)
        cpu_ratio = statistics.median(cpu_ratios) if cpu_ratios else None
        ok = ok and ratio is not None and ratio >= TARGET
        ok = ok and (cpu_ratio is None or cpu_ratio >= TARGET)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"
        lines.append([
            shape, _rate(bare), _rate(off), _rate(on), _num(ratio), spread, _num(cpu_ratio),
            f">= {TARGET}",
            f"{sum(r.valid for r in on.runs)}/{len(on.runs)}",
            f"{on.peak_rss_kib / 1024:.0f} / {off.peak_rss_kib / 1024:.0f}",
        ])  # fmt: skip
    headers = ["shape", "bare req/s", "off req/s", "on req/s", "on/off", "rounds", "on/off (CPU)",
               "target", "runs", "peak RSS MiB on/off"]  # fmt: skip
    return format_table(headers, lines, markdown), ok, valid


def _rate(row: Row | None) -> str:
    value = row.median("requests_per_s") if row is not None else None
    return "-" if value is None else f"{value:,.0f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- 2. memory -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryResult:
    clients: int
    seconds: float
    """Feeding every client untraced (the observations/s the detectors manage)."""
    traced_clients: int
    traced_bytes: int
    """What the detectors hold after the first ``traced_clients`` clients (tracemalloc)."""
    full_at: int
    """Clients fed when the largest per-key tables reached ``max_keys``."""
    rss_full: float
    rss_end: float
    """Resident MiB when the tables were full and after every client."""
    keys: dict[str, tuple[int, int]]
    """Detector -> (state_keys at the end, its max_keys)."""
    max_keys: int

    @property
    def per_client(self) -> float:
        return self.traced_bytes / self.traced_clients if self.traced_clients else 0.0


TRACED_CLIENTS = 20_000


def client_address(n: int) -> str:
    return str(ipaddress.IPv4Address(0x0A000000 + n))  # 10.0.0.0/8 holds 16 M clients


def client_observations(n: int, now: float) -> Iterator[Observation]:
    ip = client_address(n)

    def obs(
        suffix: str, method: str, path: str, status: int, out: int, **login: Any
    ) -> Observation:
        return Observation(
            time=now, request_id=f"r{n:x}{suffix}", client_ip=ip, method=method,
            host="shop.example.com", route="*/", path=path, status=status, bytes_in=0,
            bytes_out=out, latency=0.002, user_agent="Mozilla/5.0", action="ALLOW",
            terminating_rule="Default_Action", **login,
        )  # fmt: skip

    yield obs("a", "GET", f"/old-{n % 977}.php", 404, 300)
    yield obs("b", "POST", "/login", 401, 900, username=f"user{n}", login_failed=True)
    yield obs("c", "GET", "/products", 200, 5200)


def feed(detectors: Sequence[Detector], first: int, last: int, clients: int) -> None:
    step = SPREAD_SECONDS / clients
    for n in range(first, last):
        for obs in client_observations(n, START + n * step):
            for detector in detectors:
                for _ in detector.observe(obs):
                    pass


def max_keys_of(detector: Detector) -> int:
    settings = getattr(detector, "settings", None)
    return int(getattr(settings, "max_keys", 0))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def traced(detectors: Sequence[Detector], count: int, clients: int) -> int:
    """Bytes the detectors hold after ``count`` clients, from tracemalloc (which slows every
    allocation several times over, so only this first stretch is traced)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    feed(detectors, 0, count, clients)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held


def measure_memory(clients: int, progress: Callable[[str], None]) -> MemoryResult:
    detectors = build_detectors({}, Path.cwd())
    max_keys = max(max_keys_of(d) for d in detectors)
    full_at = min(clients, max_keys)
    first = min(clients, TRACED_CLIENTS)
    held = traced(detectors, first, clients)
    progress(f"memory: {first:,} clients traced: {held / first:,.0f} bytes per client")
    started = time.perf_counter()
    feed(detectors, first, full_at, clients)
    gc.collect()
    rss_full = rss_mib()
    progress(f"memory: {full_at:,} clients (tables full): RSS {rss_full:.0f} MiB")
    feed(detectors, full_at, clients, clients)
    gc.collect()
    seconds = time.perf_counter() - started
    progress(f"memory: {clients:,} clients: RSS {rss_mib():.0f} MiB after {seconds:.0f} s")
    keys = {d.name: (d.state_keys(), max_keys_of(d)) for d in detectors}
    rss_end = rss_mib()
    return MemoryResult(clients, seconds, first, held, full_at, rss_full, rss_end, keys, max_keys)


def memory_report(m: MemoryResult, markdown: bool) -> str:
    rows = [[name, f"{held:,}", f"{bound:,}"] for name, (held, bound) in m.keys.items()]
    fed = 3 * (m.clients - m.traced_clients)
    rate = f"{fed / m.seconds:,.0f}" if fed and m.seconds > 0 else "n/a"
    lines = [
        f"clients: {m.clients:,}, 3 observations each (a 404, a failed login under its own "
        f"username, a page view); {rate} observations/s through every detector",
        f"held per client (tracemalloc, first {m.traced_clients:,} clients): "
        f"{m.per_client:,.0f} bytes",
        f"bound: {m.per_client:,.0f} B x max_keys {m.max_keys:,} = "
        f"{m.per_client * m.max_keys / 2**20:,.0f} MiB per worker process",
        f"RSS with the tables full ({m.full_at:,} clients): {m.rss_full:,.0f} MiB; after "
        f"{m.clients:,} clients: {m.rss_end:,.0f} MiB (x{m.rss_end / max(m.rss_full, 1):.2f})",
        "",
        format_table(["detector", "keys held", "max_keys"], rows, markdown),
    ]
    return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shapes", default=",".join(SHAPE_NAMES))
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--shape-dir", type=Path, default=DEFAULT_SHAPE_DIR)
    parser.add_argument("--no-throughput", action="store_true", help="memory only")
    parser.add_argument("--no-memory", action="store_true", help="throughput only")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 s, 1 round, R1, 3 000 clients")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.warmup, args.shapes = 1, 1, 0, "R1"
        args.clients = min(args.clients, 3_000)
    return args


def throughput(args: argparse.Namespace) -> tuple[str, bool, bool]:
    shapes = tuple(s for s in args.shapes.split(",") if s)
    opts = Options(
        duration=args.duration, runs=args.runs, warmup=args.warmup, shapes=shapes,
        systems=BENCH_SYSTEMS, wrk=WrkSettings(check_shape_dir(args.shape_dir)), sut_core=0,
        markdown=args.markdown,
    )  # fmt: skip
    return throughput_table(run_all(opts), args.markdown)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ok = True
    print("\n".join(machine_lines()))
    if not args.no_throughput:
        if shutil.which("wrk") is None or shutil.which("taskset") is None:
            print("missing wrk/taskset: apt-get install -y wrk util-linux", file=sys.stderr)
            return 2
        table, met, valid = throughput(args)
        ok = valid and (met or args.quick)  # a 1 s run shows the script works, not the cost
        print(f"\n## Throughput, detection on vs off (target on/off >= {TARGET})\n")
        print(table)
    if not args.no_memory:
        result = measure_memory(args.clients, progress)
        print(f"\n## Detector memory, {args.clients:,} distinct clients\n")
        print(memory_report(result, args.markdown))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
