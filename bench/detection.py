"""Detection benchmark: replay a labelled corpus against a live wafproxy and score its answers.

A request counts as blocked when the proxy answers 403, as passed for any other status, and as an
error when no status comes back (errors are reported apart and left out of the rates).

    python bench/detection.py --corpus regression          # tests/regression/corpus.yaml
    python bench/detection.py --corpus crs --corpus-dir ../shared/corpus/crs
    python bench/detection.py --corpus csic --corpus-dir ../shared/corpus/csic2010 --paranoia 2
    python bench/detection.py --corpus params --corpus-dir ../shared/corpus/httpparams --limit 4000
    python bench/detection.py --target http://127.0.0.1:8080 --corpus regression

Without --target the script starts its own upstream (bench/upstream.py) and ``wafproxy run`` with
the shipped default web ACL (--paranoia N raises every group's ``paranoia_level`` to N) or with
--rules FILE... . The crs, csic and params corpora are read with the harness that ships with
them (wafbench.py beside the corpus directory, or --harness PATH), so requests are built byte
for byte as the reference numbers were measured; only the regression corpus needs nothing
outside this repository. Sampling (--limit) is this script's own, not the harness's: for the
numbers in bench/RESULTS.md run the harness itself, or this script without --limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
REGRESSION_DIR = ROOT / "tests" / "regression"
RULES_DIR = ROOT / "rules"
CORPORA = ("regression", "crs", "csic", "params")
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PLACEMENTS = ("query", "form", "json", "cookie")


@dataclass(frozen=True)
class Case:
    id: str
    label: str
    """attack, benign, or anything else (reported, not scored)."""
    kind: str
    """The attack class (or 'benign'); for crs the rule family, for csic the heuristic kind."""
    wire: bytes
    placement: str = ""


@dataclass
class Tally:
    blocked: int = 0
    passed: int = 0
    errors: int = 0

    def add(self, status: int | None) -> None:
        if status is None:
            self.errors += 1
        elif status == 403:
            self.blocked += 1
        else:
            self.passed += 1

    @property
    def sent(self) -> int:
        return self.blocked + self.passed

    def rate(self, label: str) -> float | None:
        """TPR for attacks, pass rate (TNR) for benign requests."""
        if not self.sent:
            return None
        return (self.blocked if label != "benign" else self.passed) / self.sent


@dataclass
class Report:
    by_kind: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_placement: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    overall: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))

    def attack_kinds(self) -> list[str]:
        return sorted(k for label, k in self.by_kind if label == "attack")

    def mean_tpr(self) -> float | None:
        rates = [self.by_kind[("attack", k)].rate("attack") for k in self.attack_kinds()]
        known = [r for r in rates if r is not None]
        return sum(known) / len(known) if known else None

    def tnr(self) -> float | None:
        return self.overall["benign"].rate("benign")

    def balanced(self) -> float | None:
        tpr, tnr = self.overall["attack"].rate("attack"), self.tnr()
        return None if tpr is None or tnr is None else (tpr + tnr) / 2


# -- corpora -----------------------------------------------------------------------------------
def placed(placement: str, name: str, value: str, host: str) -> bytes:
    """One value in one placement, as a browser would send it."""
    headers = [("Host", host), ("User-Agent", BROWSER_UA), ("Accept", BROWSER_ACCEPT)]
    body = b""
    if placement == "query":
        target = f"/search?{name}={urllib.parse.quote_plus(value, safe='')}"
        method = "GET"
    elif placement == "form":
        method, target = "POST", "/submit"
        body = f"{name}={urllib.parse.quote_plus(value, safe='')}".encode("ascii")
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    elif placement == "json":
        method, target = "POST", "/api/items"
        body = json.dumps({name: value}, ensure_ascii=False).encode("utf-8")
        headers.append(("Content-Type", "application/json"))
    elif placement == "cookie":
        method, target = "GET", "/"
        headers.append(("Cookie", f"{name}={urllib.parse.quote(value, safe='')}"))
    elif placement == "header":
        method, target = "GET", "/"
        headers.append(("X-Custom-Data", urllib.parse.quote(value, safe=" /:;,=")))
    else:
        raise ValueError(f"unknown placement {placement!r}")
    return raw_request(method, target, headers, body)


def raw_request(method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def load_regression(corpus_dir: Path, host: str = "localhost") -> list[Case]:
    """tests/regression/corpus.yaml: values in placements, and whole requests."""
    data = yaml.safe_load((corpus_dir / "corpus.yaml").read_text(encoding="utf-8"))
    cases: list[Case] = []
    names = ("q", "id", "name", "comment", "search", "email")
    for index, item in enumerate(data.get("values", [])):
        kind = str(item["class"])
        label = "benign" if kind == "benign" else "attack"
        for placement in item.get("placements", PLACEMENTS):
            name = names[index % len(names)]
            wire = placed(placement, name, str(item["value"]), host)
            cases.append(Case(f"value-{index}/{placement}", label, kind, wire, placement))
    for item in data.get("requests", []):
        kind = str(item["class"])
        cases.append(
            Case(
                str(item["id"]),
                str(item.get("label", "benign" if kind == "benign" else "attack")),
                kind,
                whole_request(item, host),
                "request",
            )
        )
    return cases


def whole_request(item: dict[str, Any], host: str) -> bytes:
    headers = [(str(n), str(v)) for n, v in item.get("headers", [])]
    given = {n.lower() for n, _ in headers}
    defaults = [("User-Agent", BROWSER_UA), ("Accept", BROWSER_ACCEPT)]
    headers = [("Host", host), *[(n, v) for n, v in defaults if n.lower() not in given], *headers]
    body = str(item.get("body", "")).encode("utf-8")
    return raw_request(str(item.get("method", "GET")), str(item["target"]), headers, body)


def load_harness(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("wafbench", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the corpus harness {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_shared(corpus: str, corpus_dir: Path, harness: Path, host: str) -> list[Case]:
    """crs, csic or params through their harness (wafbench.py), labelled as it labels them."""
    wafbench = load_harness(harness)
    if corpus == "crs":
        tests = wafbench.load_crs(str(corpus_dir), "")
    elif corpus == "csic":
        tests = wafbench.load_csic(str(corpus_dir), host)
    else:
        tests = wafbench.load_params(str(corpus_dir), host)
    return [
        Case(t.tid, t.label, t.set, t.wire, t.placeholder if corpus == "params" else "")
        for t in tests
        if t.wire is not None
    ]


def sample(cases: list[Case], limit: int, seed: int) -> list[Case]:
    """A fixed random sample of ``limit`` cases, keeping the label mix."""
    if not limit or limit >= len(cases):
        return cases
    rng = random.Random(seed)
    by_label: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_label[case.label].append(case)
    out: list[Case] = []
    for group in by_label.values():
        out += rng.sample(group, max(1, round(limit * len(group) / len(cases))))
    return out


# -- sending -----------------------------------------------------------------------------------
async def status_of(host: str, port: int, wire: bytes, timeout: float) -> int | None:
    """The status code of one request on its own connection, or None (refused, reset, timeout)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return None
    try:
        with contextlib.suppress(OSError):
            writer.write(wire)
            await asyncio.wait_for(writer.drain(), timeout)
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        if len(parts) < 2 or not line.startswith(b"HTTP/"):
            return None
        return int(parts[1])
    except (TimeoutError, OSError, ValueError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2)


async def send_all(
    host: str, port: int, cases: Sequence[Case], workers: int, timeout: float
) -> dict[str, int | None]:
    gate = asyncio.Semaphore(workers)
    statuses: dict[str, int | None] = {}

    async def one(case: Case) -> None:
        async with gate:
            statuses[case.id] = await status_of(host, port, case.wire, timeout)

    await asyncio.gather(*(one(case) for case in cases))
    return statuses


def score(cases: Sequence[Case], statuses: dict[str, int | None]) -> Report:
    report = Report()
    for case in cases:
        status = statuses.get(case.id)
        report.overall[case.label].add(status)
        report.by_kind[(case.label, case.kind)].add(status)
        if case.placement:
            report.by_placement[
                (case.label if case.label == "benign" else case.kind, case.placement)
            ].add(status)
    return report


# -- the system under test -----------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def paranoia_acl(level: int | None, work: Path) -> Path:
    """The shipped default web ACL, with every managed group raised to paranoia ``level``
    (a group the default already runs higher keeps its level); None: as shipped."""
    shipped = RULES_DIR / "default.yaml"
    if level is None:
        return shipped
    acl = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    for rule in acl["rules"]:
        group = rule["statement"].get("managed_rule_group")
        if group is not None:
            group["paranoia_level"] = max(level, int(group.get("paranoia_level", 1)))
    path = work / f"default-pl{level}.yaml"
    path.write_text(yaml.safe_dump(acl, sort_keys=False), encoding="utf-8")
    return path


def wait_until_answering(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    probe = raw_request(
        "GET",
        "/",
        [("Host", "localhost"), ("User-Agent", BROWSER_UA), ("Accept", BROWSER_ACCEPT)],
        b"",
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process on port {port} exited with {proc.returncode}")
        if asyncio.run(status_of("127.0.0.1", port, probe, 2.0)) is not None:
            return
        time.sleep(0.2)
    raise SystemExit(f"nothing answers on port {port}")


@contextlib.contextmanager
def launched(cmd: list[str], port: int) -> Iterator[None]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(port, proc, time.monotonic() + 120)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def system_under_test(rules: list[Path]) -> Iterator[tuple[str, int]]:
    upstream, proxy, admin = free_port(), free_port(), free_port()
    serve = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(upstream)]
    run = [
        sys.executable,
        "-m",
        "wafproxy",
        "run",
        "--upstream",
        f"http://127.0.0.1:{upstream}",
        "--listen",
        f"127.0.0.1:{proxy}",
        "--admin",
        f"127.0.0.1:{admin}",
        "--rules",
        *map(str, rules),
    ]
    with launched(serve, upstream), launched(run, proxy):
        yield "127.0.0.1", proxy


# -- output ------------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table_rows(report: Report) -> list[tuple[str, str, str, str]]:
    rows = [
        (
            kind,
            str(report.by_kind[("attack", kind)].sent),
            pct(report.by_kind[("attack", kind)].rate("attack")),
            "TPR",
        )
        for kind in report.attack_kinds()
    ]
    for (label, kind), tally in sorted(report.by_kind.items()):
        if label == "benign":
            rows.append(
                (
                    f"benign ({kind})" if kind != "benign" else "benign",
                    str(tally.sent),
                    pct(tally.rate("benign")),
                    "TNR",
                )
            )
    return rows


def render(report: Report, markdown: bool) -> str:
    rows = table_rows(report)
    summary = [
        ("mean TPR over classes", "", pct(report.mean_tpr()), ""),
        (
            "overall attack TPR",
            str(report.overall["attack"].sent),
            pct(report.overall["attack"].rate("attack")),
            "",
        ),
        ("benign pass rate", str(report.overall["benign"].sent), pct(report.tnr()), ""),
        ("balanced score", "", pct(report.balanced()), ""),
    ]
    placements = sorted({p for _, p in report.by_placement})
    lines: list[str] = []
    if markdown:
        lines += ["| class | n | rate % | |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows + summary]
    else:
        lines += [f"{a:42} {b:>7} {c:>6}% {d}" for a, b, c, d in rows + summary]
    if placements:
        lines.append("")
        lines.append("per placement: " + ", ".join(placements))
        for key in sorted({k for k, _ in report.by_placement}):
            cells = [
                pct(report.by_placement[(key, p)].rate("benign" if key == "benign" else "attack"))
                for p in placements
            ]
            lines.append(f"  {key:28} " + "  ".join(f"{c:>6}" for c in cells))
    errors = sum(t.errors for t in report.overall.values())
    lines.append(f"\nerrors (no answer, left out of the rates): {errors}")
    return "\n".join(lines)


def as_json(report: Report, statuses: dict[str, int | None], cases: Sequence[Case]) -> str:
    return json.dumps(
        {
            "classes": {
                k: {"n": t.sent, "rate": t.rate(label)} for (label, k), t in report.by_kind.items()
            },
            "mean_tpr": report.mean_tpr(),
            "benign_tnr": report.tnr(),
            "balanced": report.balanced(),
            "tests": [
                {
                    "id": c.id,
                    "label": c.label,
                    "class": c.kind,
                    "placement": c.placement,
                    "status": statuses.get(c.id),
                }
                for c in cases
            ],
        },
        indent=1,
    )


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=CORPORA, default="regression")
    parser.add_argument("--corpus-dir", type=Path, help="default: tests/regression for regression")
    parser.add_argument("--harness", type=Path, help="wafbench.py (default: beside the corpus dir)")
    parser.add_argument("--target", help="an already running proxy, e.g. http://127.0.0.1:8080")
    parser.add_argument("--rules", type=Path, nargs="+", help="rule files (default: shipped)")
    parser.add_argument(
        "--paranoia",
        type=int,
        choices=(1, 2, 3, 4),
        help="raise every group of the shipped default to this level (default: as shipped)",
    )
    parser.add_argument("--host-header", default="localhost")
    parser.add_argument("--limit", type=int, default=0, help="a fixed random sample of N cases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, help="write every case and its status here")
    return parser.parse_args(argv)


def load_cases(args: argparse.Namespace) -> list[Case]:
    if args.corpus == "regression":
        return load_regression(args.corpus_dir or REGRESSION_DIR, args.host_header)
    if args.corpus_dir is None:
        raise SystemExit(f"--corpus {args.corpus} needs --corpus-dir")
    harness = args.harness or args.corpus_dir.parent / "wafbench.py"
    return load_shared(args.corpus, args.corpus_dir, harness, args.host_header)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cases = sample(load_cases(args), args.limit, args.seed)
    with contextlib.ExitStack() as stack:
        if args.target:
            url = urllib.parse.urlsplit(args.target)
            host, port = url.hostname or "127.0.0.1", url.port or 80
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            rules = args.rules or [paranoia_acl(args.paranoia, work)]
            host, port = stack.enter_context(system_under_test(rules))
        started = time.monotonic()
        statuses = asyncio.run(send_all(host, port, cases, args.workers, args.timeout))
    report = score(cases, statuses)
    print(render(report, args.markdown))
    print(
        f"{len(cases)} requests in {time.monotonic() - started:.1f} s "
        f"({Counter(c.label for c in cases)})"
    )
    if args.json:
        args.json.write_text(as_json(report, statuses, cases), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
