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
SUMMARY = re.compile(rb"^summary: (\d+)$", re.MULTILINE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="R1,R2", help="shape names (bench/shapes)")
    parser.add_argument("--evaluations", type=int, default=400, help="measured evaluations")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--cold", action="store_true", help="every value new (memos forgotten)")
    kinds.add_argument("--new-value", action="store_true", help="one new argument value each")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape, evaluations, measure, kind = args.child
        evaluate_shape(shape, int(evaluations), measure == "measure", kind)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    kind = "cold" if args.cold else "new-value" if args.new_value else "warm"
    for shape in args.shapes.split(","):
        per_eval = instructions_per_evaluation(shape, args.evaluations, kind)
        print(f"{shape}: {per_eval:,} instructions per {kind} evaluation")


def instructions_per_evaluation(shape: str, evaluations: int, kind: str = "warm") -> int:
    with ThreadPoolExecutor(max_workers=2) as pool:
        idle, busy = pool.map(
            lambda mode: counted_instructions(shape, evaluations, mode, kind), ("idle", "measure")
        )
    return (busy - idle) // evaluations


def counted_instructions(shape: str, evaluations: int, mode: str, kind: str = "warm") -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             __file__, "--child", shape, str(evaluations), mode, kind],
            check=True, capture_output=True,
        )  # fmt: skip
        found = SUMMARY.search(out.read_bytes())
        if found is None:
            sys.exit(f"no summary line in callgrind's output for {shape}")
        return int(found.group(1))


def evaluate_shape(shape: str, evaluations: int, measure: bool, kind: str = "warm") -> None:
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
    for req in measured:
        if kind == "cold":
            clear_all()
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
