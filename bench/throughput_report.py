"""The throughput benchmark's settings, result rows and printed report."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from machine import machine_lines
from systems import System
from table import format_table
from wrkrun import WrkResult, WrkSettings

BASELINE = "bare"
HEADERS = [
    "system",
    "shape",
    "req/s",
    "p50 ms",
    "p99 ms",
    "peak RSS MiB",
    "x bare",
    "CPU µs/req",
    "x bare (CPU)",
    "target",
    "runs",
]


@dataclass(frozen=True)
class Options:
    duration: int
    runs: int
    warmup: int
    shapes: tuple[str, ...]
    systems: tuple[System, ...]
    wrk: WrkSettings
    sut_core: int
    markdown: bool


@dataclass(frozen=True)
class Row:
    system: System
    shape: str
    runs: tuple[WrkResult, ...]
    """One per round, in round order."""
    peak_rss_kib: int
    """The system's peak over the whole benchmark (every shape)."""
    logged: int | None = None
    """Decision log lines the system wrote (None: it keeps no decision log file)."""
    failure: str | None = None

    def median(self, metric: str) -> float | None:
        values = [float(getattr(r, metric)) for r in self.runs if r.valid]
        return statistics.median(values) if values else None


def ratio_to(row: Row, base: Row | None) -> float | None:
    """The median over rounds of this row's req/s over the baseline's in the same round."""
    if base is None:
        return None
    ratios = [
        run.requests_per_s / ref.requests_per_s
        for run, ref in zip(row.runs, base.runs, strict=False)
        if run.valid and ref.valid and ref.requests_per_s > 0
    ]
    return statistics.median(ratios) if ratios else None


def cpu_ratio_to(row: Row, base: Row | None) -> float | None:
    """The median over rounds of the baseline's CPU time per request over this row's: the
    same ratio as req/s for a system that saturates its core, without the run-to-run swings
    a shared host puts into wall-clock throughput (CPU time stolen by neighbours is not
    charged to the process)."""
    if base is None:
        return None
    ratios = [
        ref.cpu_us_per_request / run.cpu_us_per_request
        for run, ref in zip(row.runs, base.runs, strict=False)
        if run.valid and ref.valid and run.cpu_us_per_request and ref.cpu_us_per_request
    ]
    return statistics.median(ratios) if ratios else None


def report_rows(rows: Sequence[Row]) -> list[list[str]]:
    bases = {r.shape: r for r in rows if r.system.name == BASELINE and r.runs}
    out = []
    for row in rows:
        ratio = ratio_to(row, bases.get(row.shape))
        cpu_ratio = cpu_ratio_to(row, bases.get(row.shape))
        valid = sum(1 for run in row.runs if run.valid)
        out.append([
            row.system.name,
            row.shape,
            _num(row.median("requests_per_s"), "{:,.0f}"),
            _num(row.median("p50_ms"), "{:.2f}"),
            _num(row.median("p99_ms"), "{:.2f}"),
            f"{row.peak_rss_kib / 1024:.1f}" if row.runs else "",
            _num(ratio, "{:.2f}", missing=""),
            _num(row.median("cpu_us_per_request"), "{:.0f}", missing=""),
            _num(cpu_ratio, "{:.2f}", missing=""),
            _target(row.system.target, ratio, cpu_ratio),
            row.failure or f"{valid}/{len(row.runs)} valid",
        ])  # fmt: skip
    return out


def _num(value: float | None, fmt: str, missing: str = "invalid") -> str:
    return missing if value is None else fmt.format(value)


def _target(target: float | None, ratio: float | None, cpu_ratio: float | None) -> str:
    """Judged on both ratios: 'met' when both reach the target, 'MISSED' when neither does,
    'split' otherwise (the host's noise decides; see the CPU column)."""
    if target is None:
        return ""
    judged = [r >= target for r in (ratio, cpu_ratio) if r is not None]
    if not judged:
        return f">={target:.2f}: n/a"
    verdict = "met" if all(judged) else "MISSED" if not any(judged) else "split"
    return f">={target:.2f}: {verdict}"


def system_notes(rows: Sequence[Row]) -> list[str]:
    notes = {}
    for row in rows:
        logged = "" if row.logged is None else f" ({row.logged:,} decision log lines)"
        notes[row.system.name] = f"{row.system.name}: {row.system.what}{logged}"
    return list(notes.values())


def print_report(opts: Options, rows: Sequence[Row]) -> None:
    bullet = "- " if opts.markdown else ""
    print("\n".join(bullet + line for line in machine_lines()))
    print(
        f"{bullet}wrk -t{opts.wrk.threads} -c{opts.wrk.connections} -d{opts.duration}s "
        f"(core {opts.wrk.core}), systems under test on core {opts.sut_core}; "
        f"{opts.runs} interleaved rounds after a {opts.warmup} s warm-up; medians; "
        f"x bare = median of per-round ratios (req/s; and CPU time per request, inverted)"
    )
    print()
    print(format_table(HEADERS, report_rows(rows), opts.markdown))
    print()
    print("\n".join(bullet + note for note in system_notes(rows)))
    for row in rows:
        for index, run in enumerate(row.runs):
            for problem in run.problems:
                where = f"{row.system.name} {row.shape} round {index + 1}"
                print(f"invalid run: {where}: {problem}", file=sys.stderr)
