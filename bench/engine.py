"""Engine cost per request, without any server.

1. The shipped default web ACL against R1, R2 and a few typical requests: µs per evaluate().
2. Cost versus number of regex atoms: synthetic ACLs of N regex_match rules, and of one
   regex_pattern_set rule with N patterns, evaluated on R1; ratio to the 10-atom case.

Each evaluation gets a fresh WafRequest (it caches its parses on itself), built before the clock
starts; the time covers evaluate() including the request's lazy parsing (header map, query
arguments, cookies, body).

    python bench/engine.py [--iterations 2000] [--sizes 10,100,1000,10000] [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acl_gen import Layout, patterns, web_acl
from machine import machine_lines
from reqshapes import DEFAULT_SHAPE_DIR, SHAPE_NAMES, check_shape_dir, read_shape
from table import format_table

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.memo import clear_all
from wafproxy.acl.model import ActionKind, Verdict, WebAcl
from wafproxy.rawhttp import parse_raw_request
from wafproxy.request import WafRequest

SCALE_TARGET = 3.0
"""1 000 atoms must cost less than this many times 10 atoms (for N patterns in one set)."""
COMMON = (
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0\r\n"
    "Accept: */*\r\nAccept-Language: en-US,en;q=0.8\r\n"
)
JSON_BODY = (
    b'{"customer": {"id": 4711, "name": "Ada Lovelace", "email": "ada@example.org"}, '
    b'"items": [{"sku": "CDD18V2041", "qty": 1, "price": 129.99}, '
    b'{"sku": "BIT-SET-32", "qty": 2, "price": 19.5}], "coupon": null, "note": "leave at door"}'
)
TYPICAL = {
    "GET / (minimal)": f"GET / HTTP/1.1\r\n{COMMON}\r\n".encode(),
    "GET static asset": (
        f"GET /static/js/app.3f9c2b.js HTTP/1.1\r\n{COMMON}"
        "Referer: https://shop.example.com/\r\nCookie: sessionid=8f14e45fceea167a\r\n\r\n"
    ).encode(),
    "POST JSON 300 B": (
        f"POST /api/v1/orders HTTP/1.1\r\n{COMMON}Content-Type: application/json\r\n"
        f"Content-Length: {len(JSON_BODY)}\r\n\r\n"
    ).encode()
    + JSON_BODY,
    "GET 20 query args": (
        "GET /catalog?"
        + "&".join(f"f{i}=value+{i}" for i in range(20))
        + f" HTTP/1.1\r\n{COMMON}\r\n"
    ).encode(),
    "GET SQLi probe": (
        f"GET /items?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\n{COMMON}\r\n"
    ).encode(),
    "GET XSS probe": (
        f"GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\n{COMMON}\r\n"
    ).encode(),
}


@dataclass(frozen=True)
class Timing:
    median_us: float
    p99_us: float
    verdict: Verdict


def time_evaluations(
    acl: WebAcl, template: WafRequest, iterations: int, warmup: int, cold: bool = False
) -> Timing:
    """``cold``: every remembered per-value answer is forgotten before each evaluation (what
    a request whose every value is new costs); else values repeat, as the same request does."""
    verdict = evaluate(acl, dataclasses.replace(template))
    for _ in range(warmup):
        evaluate(acl, dataclasses.replace(template))
    fresh = [dataclasses.replace(template) for _ in range(iterations)]
    samples = []
    clock = time.perf_counter_ns
    for req in fresh:
        if cold:
            clear_all()
        start = clock()
        evaluate(acl, req)
        samples.append(clock() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Timing(statistics.median(samples) / 1000, p99 / 1000, verdict)


def outcome(verdict: Verdict) -> str:
    if verdict.error:
        return f"ERROR {verdict.error}"
    return f"{verdict.action.name} ({verdict.terminating_rule})"


# -- part 1: the default web ACL ------------------------------------------------------------------
def default_acl() -> WebAcl:
    acls = load_rule_files(default_rule_files()).acls
    return acls["default"] if "default" in acls else next(iter(acls.values()))


def request_set(shape_dir: Path) -> dict[str, WafRequest]:
    requests = {f"{name} (shape)": read_shape(shape_dir, name).raw() for name in SHAPE_NAMES}
    requests.update(TYPICAL)
    return {label: parse_raw_request(raw) for label, raw in requests.items()}


def default_acl_rows(args: argparse.Namespace) -> list[list[str]]:
    acl = default_acl()
    rows = []
    for label, template in request_set(args.shape_dir).items():
        timing = time_evaluations(acl, template, args.iterations, args.warmup)
        cold = time_evaluations(acl, template, args.iterations, args.warmup, cold=True)
        rows.append([
            label, f"{timing.median_us:.1f}", f"{timing.p99_us:.1f}", f"{cold.median_us:.1f}",
            outcome(timing.verdict),
        ])  # fmt: skip
    return rows


# -- part 2: cost versus number of atoms ----------------------------------------------------------
@dataclass(frozen=True)
class ScalePoint:
    layout: Layout
    size: int
    compile_s: float
    timing: Timing
    cold: Timing


def scale_point(args: argparse.Namespace, layout: Layout, size: int, r1: WafRequest) -> ScalePoint:
    items = patterns(size, args.seed)
    with tempfile.TemporaryDirectory(prefix="wafproxy-bench-") as tmp:
        path = Path(tmp) / f"scale-{layout.value}-{size}.yaml"
        path.write_text(web_acl(items, layout), encoding="utf-8")
        start = time.perf_counter()
        acl = load_rule_files([path]).acls["scale"]
        compile_s = time.perf_counter() - start
    timing = time_evaluations(acl, r1, args.scale_iterations, args.warmup)
    cold = time_evaluations(acl, r1, args.scale_iterations, args.warmup, cold=True)
    check_scale_acl(acl, r1, timing.verdict, items[-1].sample)
    return ScalePoint(layout, size, compile_s, timing, cold)


def check_scale_acl(acl: WebAcl, r1: WafRequest, verdict: Verdict, last_sample: str) -> None:
    """R1 must pass every pattern (full scan), and the last pattern must really be scanned."""
    if verdict.action is not ActionKind.ALLOW or verdict.matches:
        sys.exit(f"generated ACL matched R1: {outcome(verdict)}; try another --seed")
    probe = dataclasses.replace(r1, query_string=f"page=2&q={last_sample.replace(' ', '+')}")
    if evaluate(acl, probe).action is not ActionKind.BLOCK:
        sys.exit(f"the last generated pattern did not match its sample {last_sample!r}")


def scale_rows(points: Sequence[ScalePoint]) -> list[list[str]]:
    """The target is judged on the cold cost: with values remembered, scans cost nothing."""
    smallest = [p for p in points if p.size == min(q.size for q in points)]
    base = {p.layout: p.timing.median_us for p in smallest}
    cold_base = {p.layout: p.cold.median_us for p in smallest}
    rows = []
    for p in points:
        ratio = p.timing.median_us / base[p.layout]
        cold_ratio = p.cold.median_us / cold_base[p.layout]
        rows.append([
            p.layout.value, f"{p.size:,}", f"{p.compile_s:.2f}", f"{p.timing.median_us:.1f}",
            f"{p.timing.p99_us:.1f}", f"{ratio:.2f}", f"{p.cold.median_us:.1f}",
            f"{cold_ratio:.2f}", _scale_target(p, cold_ratio),
        ])  # fmt: skip
    return rows


def _scale_target(point: ScalePoint, ratio: float) -> str:
    if point.size != 1000:
        return ""
    return f"<{SCALE_TARGET:g}x: {'met' if ratio < SCALE_TARGET else 'MISSED'}"


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000, help="per default-ACL request")
    parser.add_argument("--scale-iterations", type=int, default=1000, help="per scale point")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured evaluations first")
    parser.add_argument("--sizes", default="10,100,1000,10000", help="atom counts to generate")
    parser.add_argument("--seed", type=int, default=1, help="pattern generator seed")
    parser.add_argument("--shape-dir", type=Path, default=DEFAULT_SHAPE_DIR)
    parser.add_argument("--markdown", action="store_true", help="print tables for RESULTS.md")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    if not args.sizes or args.sizes[0] < 1 or args.iterations < 1 or args.scale_iterations < 1:
        parser.error("--sizes, --iterations and --scale-iterations must be positive")
    check_shape_dir(args.shape_dir)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bullet = "- " if args.markdown else ""
    print("\n".join(bullet + line for line in machine_lines()))
    print(f"\nShipped default web ACL, {args.iterations} evaluations each:\n")
    headers = ["request", "median µs", "p99 µs", "cold median µs", "verdict"]
    print(format_table(headers, default_acl_rows(args), args.markdown))
    r1 = parse_raw_request(read_shape(args.shape_dir, "R1").raw())
    points = []
    for layout in Layout:
        for size in args.sizes:
            print(f"scale: {layout.value} {size}", file=sys.stderr, flush=True)
            points.append(scale_point(args, layout, size, r1))
    print(f"\nR1 against N regex atoms on all_query_arguments + url_decode, "
          f"{args.scale_iterations} evaluations each:\n")  # fmt: skip
    headers = [
        "layout", "atoms", "compile s", "median µs", "p99 µs", "x smallest", "cold median µs",
        "cold x smallest", "target (cold)",
    ]  # fmt: skip
    print(format_table(headers, scale_rows(points), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
