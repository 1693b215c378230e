"""Proxy throughput: requests/s, p50/p99 latency and peak RSS of each system under test.

Starts a fast upstream (bench/upstream.py, core 1) and every selected system (core 0, idle until
its turn), warms each up, then runs ``--runs`` rounds; in a round wrk (core 1) loads each system
in turn with each shape. Interleaving keeps the systems' numbers comparable on a machine whose
background load drifts: ratios to the bare proxy are taken per round, then the median.

    python bench/throughput.py [--duration 3] [--runs 12] [--systems bare,waf-default] [--markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from procs import Running, StartError, cpu_seconds, free_port, peak_rss_kib, pinned, running
from reqshapes import BENCH_DIR, DEFAULT_SHAPE_DIR, SHAPE_NAMES, check_shape_dir
from systems import SYSTEM_NAMES, SYSTEMS, Context, System
from throughput_report import Options, Row, print_report
from wrkrun import WrkResult, WrkSettings, run_wrk


@dataclass(frozen=True)
class Target:
    """A started system under test."""

    system: System
    port: int
    pid: int
    decision_log: Path | None = None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=12, help="rounds (measured runs per row)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured wrk first")
    parser.add_argument("--shapes", default=",".join(SHAPE_NAMES), help="e.g. R1,R2")
    parser.add_argument(
        "--systems", default=",".join(SYSTEM_NAMES), help=f"any of {','.join(SYSTEM_NAMES)}"
    )
    parser.add_argument("--shape-dir", type=Path, default=DEFAULT_SHAPE_DIR)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sut-core", type=int, default=0, help="core of the systems under test")
    parser.add_argument("--load-core", type=int, default=1, help="core of wrk and the upstream")
    parser.add_argument("--markdown", action="store_true", help="print a table for RESULTS.md")
    args = parser.parse_args(argv)
    shapes = tuple(dict.fromkeys(s for s in args.shapes.split(",") if s))
    names = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(names) - set(SYSTEM_NAMES)) + sorted(set(shapes) - set(SHAPE_NAMES))
    if unknown or not names or not shapes or min(args.runs, args.duration) < 1:
        parser.error(f"bad --systems/--shapes/--runs/--duration: {', '.join(unknown) or 'value'}")
    wrk = WrkSettings(
        check_shape_dir(args.shape_dir), connections=args.connections, core=args.load_core
    )
    return Options(
        duration=args.duration,
        runs=args.runs,
        warmup=args.warmup,
        shapes=shapes,
        systems=tuple(s for s in SYSTEMS if s.name in names),
        wrk=wrk,
        sut_core=args.sut_core,
        markdown=args.markdown,
    )


def start_targets(
    opts: Options, ctx: Context, stack: contextlib.ExitStack, upstream: Running, port: int
) -> list[Target]:
    targets = []
    for system in opts.systems:
        if system.launch is None:
            targets.append(Target(system, port, upstream.proc.pid))
            continue
        launch = system.launch(ctx)
        progress(f"starting {system.name}")
        try:
            sut = stack.enter_context(
                running(
                    system.name,
                    pinned(opts.sut_core, launch.cmd),
                    ready_port=launch.port,
                    log_dir=ctx.work_dir,
                    stdout=launch.stdout,
                )
            )
        except StartError as exc:
            progress(f"    did not start: {exc}")
            continue
        targets.append(Target(system, launch.port, sut.proc.pid, launch.decision_log))
    return targets


def run_rounds(opts: Options, targets: Sequence[Target]) -> dict[tuple[str, str], list[WrkResult]]:
    """Each round visits every target; the starting target rotates so none is always first."""
    if opts.warmup > 0:
        progress("warm-up")
        for target in targets:
            for shape in opts.shapes:
                run_wrk(opts.wrk, target.port, shape, opts.warmup)
    results: dict[tuple[str, str], list[WrkResult]] = {}
    for index in range(opts.runs):
        progress(f"round {index + 1}/{opts.runs}")
        shift = index % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            for shape in opts.shapes:
                before = cpu_seconds(target.pid)
                result = run_wrk(opts.wrk, target.port, shape, opts.duration)
                result = with_cpu(result, cpu_seconds(target.pid) - before)
                note = "ok" if result.valid else "INVALID: " + "; ".join(result.problems)
                name = f"{target.system.name} {shape}"
                progress(f"    {name:<24} {result.requests_per_s:>9,.0f} req/s  {note}")
                results.setdefault((target.system.name, shape), []).append(result)
    return results


def with_cpu(result: WrkResult, seconds: float) -> WrkResult:
    if not result.requests:
        return result
    return dataclasses.replace(result, cpu_us_per_request=seconds / result.requests * 1e6)


def run_all(opts: Options) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="wafproxy-bench-") as tmp:
        work_dir = Path(tmp)
        with contextlib.ExitStack() as stack:
            port = free_port()
            cmd = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port)]
            upstream = stack.enter_context(
                running("upstream", pinned(opts.wrk.core, cmd), ready_port=port, log_dir=work_dir)
            )
            ctx = Context(f"http://127.0.0.1:{port}", work_dir)
            targets = start_targets(opts, ctx, stack, upstream, port) if opts.systems else []
            results = run_rounds(opts, targets) if targets else {}
            rss = {t.system.name: peak_rss_kib(t.pid) for t in targets}
        # every process has stopped: the decision logs are complete
        logged = {t.system.name: count_lines(t.decision_log) for t in targets}
        return build_rows(opts, results, rss, logged)


def build_rows(
    opts: Options,
    results: dict[tuple[str, str], list[WrkResult]],
    rss: dict[str, int],
    logged: dict[str, int | None],
) -> list[Row]:
    rows = []
    for system in opts.systems:
        for shape in opts.shapes:
            if system.name not in rss:
                rows.append(Row(system, shape, (), 0, failure="did not start"))
                continue
            runs = tuple(results.get((system.name, shape), ()))
            rows.append(Row(system, shape, runs, rss[system.name], logged.get(system.name)))
    return rows


def count_lines(path: Path | None) -> int | None:
    if path is None or not path.exists():
        return None
    with path.open("rb") as log:
        return sum(1 for _ in log)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y wrk util-linux", file=sys.stderr)
        return 2
    try:
        rows = run_all(opts)
    except StartError as exc:  # the upstream
        print(exc, file=sys.stderr)
        return 2
    print_report(opts, rows)
    complete = all(row.runs and all(run.valid for run in row.runs) for row in rows)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
