"""Machine instructions per request of a whole serving process, counted by callgrind under wrk.

Why: `instructions.py` counts evaluate() alone; this counts everything a request costs in user
space (aiohttp, the upstream hop, metrics, the decision log, the engine) for the same systems as
`throughput.py`, with the same ±1 % steadiness, so a change to the proxy's request path can be
compared between two versions on a noisy host. Kernel time is not in the counts.

Each system runs under ``valgrind --tool=callgrind`` on core 0 (the upstream and wrk on core 1);
per shape, after a warm-up the counts are zeroed (``callgrind_control -z``), wrk runs for the
measured seconds, the counts are dumped (``-d``) and divided by the requests wrk completed.
Needs valgrind and wrk (Debian packages ``valgrind`` and ``wrk``).

    python bench/proxy_instructions.py [--systems bare,waf-empty] [--shapes R1,R2]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from procs import free_port, pinned, running
from reqshapes import BENCH_DIR, DEFAULT_SHAPE_DIR
from systems import SYSTEMS, Context
from wrkrun import WrkSettings, run_wrk

SUMMARY = re.compile(r"^(?:summary|totals): (\d+)$", re.MULTILINE)
STARTUP_UNDER_VALGRIND = 900.0
"""Seconds a system may take to answer its first request under callgrind (compiling and
loading the default rules runs ~50x slower there)."""


@dataclass(frozen=True)
class Count:
    system: str
    shape: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> int:
        return self.instructions // max(1, self.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="bare,waf-empty,waf-empty-logoff,waf-default")
    parser.add_argument("--shapes", default="R1,R2")
    parser.add_argument("--warmup", type=int, default=20, help="seconds of wrk before counting")
    parser.add_argument("--seconds", type=int, default=10, help="seconds counted")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install valgrind wrk)")
    chosen = [s for s in SYSTEMS if s.name in args.systems.split(",") and s.launch is not None]
    if not chosen:
        sys.exit(f"no known system in {args.systems!r}")
    wrk = WrkSettings(DEFAULT_SHAPE_DIR, connections=args.connections)
    print("| system | shape | requests counted | instructions per request |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="wafproxy-cg-") as tmp:
        work = Path(tmp)
        with upstream_running(work, wrk.core) as ctx:
            for system in chosen:
                for count in count_system(system.name, ctx, work, wrk, args):
                    print(
                        f"| {count.system} | {count.shape} | {count.requests:,} "
                        f"| {count.per_request:,} |",
                        flush=True,
                    )


@contextlib.contextmanager
def upstream_running(work: Path, core: int) -> Iterator[Context]:
    port = free_port()
    cmd = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port)]
    with running("upstream", pinned(core, cmd), ready_port=port, log_dir=work):
        yield Context(f"http://127.0.0.1:{port}", work)


def count_system(
    name: str, ctx: Context, work: Path, wrk: WrkSettings, args: argparse.Namespace
) -> list[Count]:
    system = next(s for s in SYSTEMS if s.name == name)
    assert system.launch is not None
    launch = system.launch(ctx)
    out = work / f"cg.{name}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *launch.cmd]
    counts = []
    with running(
        name,
        pinned(0, cmd),
        ready_port=launch.port,
        log_dir=work,
        stdout=launch.stdout,
        ready_timeout=STARTUP_UNDER_VALGRIND,
    ) as proc:
        pid = proc.proc.pid
        for shape in args.shapes.split(","):
            run_wrk(wrk, launch.port, shape, args.warmup)
            callgrind_control("-z", pid)
            result = run_wrk(wrk, launch.port, shape, args.seconds)
            callgrind_control("-d", pid)
            if not result.valid:
                sys.exit(f"{name} {shape}: invalid run: {'; '.join(result.problems)}")
            counts.append(Count(name, shape, result.requests, newest_dump_total(out, pid)))
    return counts


def callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def newest_dump_total(out: Path, pid: int) -> int:
    """The instructions in the newest ``-d`` dump (``<out>.<pid>.<n>``)."""
    dumps = sorted(out.parent.glob(f"{out.name}.{pid}.*"), key=lambda p: int(p.suffix.lstrip(".")))
    if not dumps:
        sys.exit(f"no callgrind dump for pid {pid} in {out.parent}")
    found = SUMMARY.search(dumps[-1].read_text(errors="replace"))
    if found is None:
        sys.exit(f"no summary line in {dumps[-1]}")
    return int(found.group(1))


if __name__ == "__main__":
    main()
