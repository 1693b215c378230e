"""Machine instructions per evaluation of the shipped default web ACL, counted by callgrind.

Why: on a shared host wall-clock timings of one version move by ±30 % from run to run, so an
engine change worth 5 % cannot be seen in bench/engine.py's microseconds. Instruction counts
move by about 1 %. Run this on two versions (a git worktree on PYTHONPATH for the other one) to
compare them; it needs valgrind (Debian package ``valgrind``).

Each shape runs in two child interpreters under callgrind that do the same set-up (rules, warm-up,
N fresh requests); one then evaluates the N requests, the other does not. The difference of their
totals divided by N is the cost of one warm evaluation.

    python bench/instructions.py [--shapes R1,R2] [--evaluations 400] [--cold | --new-value]

``--cold`` forgets every remembered per-value answer before each evaluation (what a request
whose every value is new costs; the idle child forgets as often, so the count is the evaluation's).
``--new-value`` adds one argument whose value is new in every request (to the body of a form,
else to the query string): the usual case of real traffic, where most values repeat.

``--pressure KB`` writes to KB of other memory before each evaluation (in both children) and has
callgrind simulate a 512 KB last-level cache (about an L2 per core: kept at 512 KB so counts
stay comparable, though the development host now reports 1 MB), so it also counts the
evaluation's cache misses. Why: in the proxy every other request's work runs between two
evaluations and evicts the engine's code and data; an evaluation then costs 1.5-3x its time in
a loop (bench/RESULTS.md, 2026-11-30 04:00), and what a change does to that is a miss count.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from itertools import count, islice
from pathlib import Path

from wafproxy.request import WafRequest

WARMUP = 200
SUMMARY = re.compile(rb"^summary: ([\d ]+)$", re.MULTILINE)
LAST_LEVEL = "--LL=524288,8,64"
"""The simulated last-level cache: 512 KB, 8-way, 64-byte lines (an L2 per core; fixed so that
counts from different days compare)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="R1,R2", help="shape names (bench/shapes)")
    parser.add_argument("--evaluations", type=int, default=400, help="measured evaluations")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--cold", action="store_true", help="every value new (memos forgotten)")
    kinds.add_argument("--new-value", action="store_true", help="one new argument value each")
    parser.add_argument(
        "--pressure", type=int, default=0, metavar="KB",
        help="write to KB of other memory before each evaluation; count cache misses too",
    )  # fmt: skip
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pressure < 0:
        parser.error("--pressure: a number of KB, 0 or more")
    if args.child:
        shape, evaluations, measure, kind = args.child
        evaluate_shape(shape, int(evaluations), measure == "measure", kind, args.pressure)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    kind = "cold" if args.cold else "new-value" if args.new_value else "warm"
    for shape in args.shapes.split(","):
        instructions, misses = per_evaluation(shape, args.evaluations, kind, args.pressure)
        if args.pressure:
            print(
                f"{shape}: {instructions:,} instructions and {misses:,} cache misses per {kind}"
                f" evaluation ({args.pressure} KB written between evaluations)"
            )
        else:
            print(f"{shape}: {instructions:,} instructions per {kind} evaluation")


def per_evaluation(
    shape: str, evaluations: int, kind: str = "warm", pressure: int = 0
) -> tuple[int, int]:
    """Instructions and simulated last-level cache misses (0 without ``pressure``) of one
    evaluation."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        idle, busy = pool.map(
            lambda mode: counted_events(shape, evaluations, mode, kind, pressure),
            ("idle", "measure"),
        )
    return (busy[0] - idle[0]) // evaluations, (busy[1] - idle[1]) // evaluations


def counted_events(
    shape: str, evaluations: int, mode: str, kind: str = "warm", pressure: int = 0
) -> tuple[int, int]:
    """Instructions and last-level misses (instruction and data, read and write) of a child."""
    cache = ["--cache-sim=yes", LAST_LEVEL] if pressure else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", *cache, f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", shape, str(evaluations), mode, kind,
             "--pressure", str(pressure)],
            check=True, capture_output=True,
        )  # fmt: skip
        found = SUMMARY.search(out.read_bytes())
        if found is None:
            sys.exit(f"no summary line in callgrind's output for {shape}")
        events = [int(n) for n in found.group(1).split()]
        # with the cache simulated: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
        return events[0], sum(events[6:9]) if pressure else 0


def evaluate_shape(
    shape: str, evaluations: int, measure: bool, kind: str = "warm", pressure: int = 0
) -> None:
    from engine import default_acl, request_set
    from reqshapes import DEFAULT_SHAPE_DIR

    from wafproxy.acl.engine import evaluate
    from wafproxy.acl.memo import clear_all

    acl = default_acl()
    template = request_set(DEFAULT_SHAPE_DIR)[f"{shape} (shape)"]
    fresh = kind == "new-value"
    made = (
        with_new_value(template, n) if fresh else dataclasses.replace(template) for n in count()
    )
    warmup = list(islice(made, WARMUP))
    measured = list(islice(made, evaluations))
    gc.disable()
    for req in warmup:
        evaluate(acl, req)
    other = bytearray(pressure * 1024)
    lines = bytes(len(range(0, len(other), 64)))
    for req in measured:
        if kind == "cold":
            clear_all()
        if pressure:
            other[::64] = lines  # one write per cache line: evicts what the last evaluation left
        if measure:
            evaluate(acl, req)


def with_new_value(template: WafRequest, n: int) -> WafRequest:
    """The request with one more argument, ``bench=<n>``: in the body of a form, else in the
    query string."""
    if template.content_type == "application/x-www-form-urlencoded":
        body = template.body + b"&bench=%d" % n
        return dataclasses.replace(template, body=body, body_size=len(body))
    query = f"{template.query_string}&bench={n}" if template.query_string else f"bench={n}"
    return dataclasses.replace(template, query_string=query)


if __name__ == "__main__":
    main()
