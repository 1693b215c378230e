"""Rate-based rules and IP sets: what they add to a request, what they cost in memory.

1. Engine cost per request (R1, the shipped default web ACL as the baseline) with one and with
   five rate-based rules, on the memory backend and on the Redis backend (evaluate + the one
   round trip to a real redis-server on loopback), as ratios to the same ACL without them.
   Clients come from 10 000 addresses, so keys look like real traffic and few are limited.
2. Memory of the memory backend's counters for 1 000 000 keys (tracemalloc), bytes per key;
   and the cost of each further second a key is active in its window.
3. IP set lookups at 10 and at 100 000 CIDRs (random addresses, half in the set), the ratio
   (target < 2), and the time to load 100 000 CIDRs from a rule file's IP list.

    python bench/rate_bench.py [--requests 20000] [--keys 1000000] [--markdown] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from machine import machine_lines
from reqshapes import DEFAULT_SHAPE_DIR, read_shape
from table import format_table

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.ipset import IpSet, build_ip_set
from wafproxy.acl.model import WebAcl
from wafproxy.rawhttp import parse_raw_request
from wafproxy.request import WafRequest
from wafproxy.state.config import Backend, RedisConfig, StateConfig
from wafproxy.state.memory import MemoryState
from wafproxy.state.metrics import StateMetrics
from wafproxy.state.window import RateCounters

LOOKUP_TARGET = 2.0
RATE_RULES = [
    "rate_based: {limit: 2000, evaluation_window_sec: 300}",
    "rate_based: {limit: 100, evaluation_window_sec: 60, aggregate_key_type: custom_keys, "
    "custom_keys: [{header: {name: user-agent, transforms: [lowercase]}}, ip]}",
    "rate_based: {limit: 500, aggregate_key_type: custom_keys, custom_keys: "
    "[{uri_path: {transforms: [lowercase]}}, http_method]}",
    "rate_based: {limit: 50, evaluation_window_sec: 60, scope_down_statement: "
    "{byte_match: {field: uri_path, constraint: starts_with, value: /login}}}",
    "rate_based: {limit: 10000, aggregate_key_type: custom_keys, custom_keys: "
    "[{cookie: {name: session}}, {query_argument: {name: q}}]}",
]


# -- ACLs and requests --------------------------------------------------------------------------
def acl_with_rate_rules(count: int, directory: Path) -> WebAcl:
    """The shipped default web ACL with ``count`` rate-based rules (count action) in front."""
    default = load_rule_files(default_rule_files()).acls["default"]
    if count == 0:
        return default
    lines = ["web_acl: rates", "default_action: allow", "rules:"]
    for i, statement in enumerate(RATE_RULES[:count]):
        lines += [f"  - name: rate-{i}", f"    priority: {i}", "    action: count",
                  "    statement:", f"      {statement}"]  # fmt: skip
    path = directory / f"rates-{count}.yaml"
    path.write_text("\n".join(lines) + "\n")
    rates = load_rule_files([path]).acls["rates"]
    return replace(default, rules=rates.rules + default.rules)


def requests(count: int, shape_dir: Path) -> list[WafRequest]:
    raw = read_shape(shape_dir, "R1").raw()
    rng = random.Random(1)
    out = []
    for _ in range(count):
        req = parse_raw_request(raw)
        ip = f"10.{rng.randrange(40)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
        out.append(replace(req, client_ip=ip))
    return out


# -- 1. added cost per request --------------------------------------------------------------------
def time_memory(acl: WebAcl, reqs: Sequence[WafRequest], state: MemoryState | None) -> float:
    now = time.time()
    begin = time.perf_counter()
    for req in reqs:
        evaluate(acl, req, now=now, rate=state)
    return (time.perf_counter() - begin) / len(reqs) * 1e6


async def time_redis(acl: WebAcl, reqs: Sequence[WafRequest], url: str) -> tuple[float, float]:
    """(µs per request one at a time, µs per request with 32 in flight)."""
    from wafproxy.state.redis import RedisState

    config = StateConfig(backend=Backend.REDIS, redis=RedisConfig(url=url, timeout=1.0))
    state = RedisState(config, StateMetrics())
    await state.start()
    now = time.time()

    async def one(req: WafRequest) -> None:
        view = state.rate_view(now)
        evaluate(acl, req, now=now, rate=view)
        if await state.settle(view, now):
            evaluate(acl, req, now=now, rate=view)

    try:
        begin = time.perf_counter()
        for req in reqs:
            await one(req)
        serial = (time.perf_counter() - begin) / len(reqs) * 1e6
        queue = list(reqs)

        async def worker() -> None:
            while queue:
                await one(queue.pop())

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        parallel = (time.perf_counter() - begin) / len(reqs) * 1e6
    finally:
        await state.close()
    return serial, parallel


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def cost_table(args: argparse.Namespace, directory: Path) -> list[list[str]]:
    reqs = requests(args.requests, args.shape_dir)
    acls = {n: acl_with_rate_rules(n, directory) for n in (0, 1, 5)}
    costs: dict[int, list[float]] = {0: [], 1: [], 5: []}
    for _ in range(args.rounds):  # interleaved, best of each: robust to a busy machine
        for n in (0, 1, 5):
            state = fresh_memory(directory) if n else None
            costs[n].append(time_memory(acls[n], reqs, state))
    base = min(costs[0])
    rows = [["no rate rules (default ACL)", "-", f"{base:.1f}", "-", "1.00"]]
    for n in (1, 5):
        cost = min(costs[n])
        rows.append(
            [_label(n), "memory", f"{cost:.1f}", f"{cost - base:+.1f}", f"{cost / base:.2f}"]
        )
    if args.no_redis:
        return rows
    with redis_server() as url:
        if url is None:
            rows.append(["(redis-server not installed)", "redis", "-", "-", "-"])
            return rows
        for n in (1, 5):
            runs = [asyncio.run(time_redis(acls[n], reqs, url)) for _ in range(args.rounds)]
            serial = min(r[0] for r in runs)
            parallel = min(r[1] for r in runs)
            for what, cost in (("redis, 1 in flight", serial), ("redis, 32 in flight", parallel)):
                rows.append(
                    [_label(n), what, f"{cost:.1f}", f"{cost - base:+.1f}", f"{cost / base:.2f}"]
                )
    return rows


def _label(n: int) -> str:
    return f"{n} rate rule{'s' * (n > 1)}"


def fresh_memory(directory: Path) -> MemoryState:
    return MemoryState(StateConfig(), StateMetrics(), directory=directory / "state")


def best(run: Callable[[], float], repeat: int = 3) -> float:
    return min(run() for _ in range(repeat))


# -- 2. memory per key ---------------------------------------------------------------------
def memory_rows(keys: int) -> list[list[str]]:
    gc.collect()
    tracemalloc.start()
    counters = RateCounters(max_keys=keys + 1)
    second = int(time.time())
    for i in range(keys):
        counters.hit(
            "acl//rule",
            300,
            f"{10 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            second,
        )
    one_bucket, _ = tracemalloc.get_traced_memory()
    sample = min(keys, 100_000)
    for s in range(1, 11):  # 10 more active seconds for 100 000 of the keys
        for i in range(sample):
            key = f"{10 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            counters.hit("acl//rule", 300, key, second + s)
    eleven, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_key = one_bucket / keys
    per_second = (eleven - one_bucket) / sample / 10
    return [
        [f"{keys:,} keys, 1 active second each", f"{one_bucket / 2**20:.0f} MiB", f"{per_key:.0f}"],
        ["each further active second of a key", "-", f"{per_second:.1f}"],
    ]


# -- 3. IP set lookups ---------------------------------------------------------------------
def random_cidrs(count: int, rng: random.Random) -> list[str]:
    v4 = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24"
          for _ in range(count * 9 // 10)]  # fmt: skip
    v6 = [f"2001:db8:{rng.randrange(65536):x}::/48" for _ in range(count - len(v4))]
    return v4 + v6


def probes(ip_set: IpSet, cidrs: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """Half addresses inside entries of the set, half random; all distinct (no parse cache)."""
    out = set()
    while len(out) < count:
        if len(out) % 2:
            base = rng.choice(cidrs).split("/")[0]
            out.add(
                base.rsplit(".", 1)[0] + f".{rng.randrange(1, 255)}"
                if "." in base
                else base + f"{rng.randrange(1, 65535):x}"
            )
        else:
            octets = (
                rng.randrange(1, 223),
                rng.randrange(256),
                rng.randrange(256),
                rng.randrange(256),
            )
            out.add(".".join(map(str, octets)))
    return list(out)


def time_lookups(ip_set: IpSet, addresses: Sequence[str]) -> float:
    begin = time.perf_counter()
    for address in addresses:
        address in ip_set  # noqa: B015
    return (time.perf_counter() - begin) / len(addresses) * 1e9


def lookup_rows(directory: Path) -> tuple[list[list[str]], float]:
    rng = random.Random(2)
    rows = []
    costs = {}
    for size in (10, 100_000):
        cidrs = random_cidrs(size, rng)
        ip_set = build_ip_set("bench", cidrs)
        addresses = probes(ip_set, cidrs, 50_000, rng)
        hits = sum(a in ip_set for a in addresses[:1000])
        costs[size] = statistics.median(time_lookups(ip_set, addresses) for _ in range(3))
        rows.append([f"{size:,} CIDRs", f"{costs[size]:.0f}", f"{hits / 10:.0f} %"])
    ratio = costs[100_000] / costs[10]
    path = directory / "big.txt"
    path.write_text("# 100 000 entries\n" + "\n".join(random_cidrs(100_000, rng)) + "\n")
    rules = directory / "big.yaml"
    rules.write_text(
        "web_acl: big\ndefault_action: allow\nip_sets: {big: {file: big.txt}}\nrules:\n"
        "  - {name: r, priority: 1, action: block, statement: {ip_set: {ref: big}}}\n"
    )
    begin = time.perf_counter()
    load_rule_files([rules])
    rows.append(
        [
            "load 100 000 CIDRs (rule file + IP list)",
            f"{(time.perf_counter() - begin) * 1e3:.0f} ms",
            "",
        ]
    )
    return rows, ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--shape-dir", type=Path, default=DEFAULT_SHAPE_DIR)
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis backend")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    md = args.markdown
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print("\n## Added cost per request (R1, default web ACL + rate-based rules)\n")
        print(
            format_table(
                ["ACL", "backend", "µs/request", "added µs", "ratio"],
                cost_table(args, directory),
                md,
            )
        )
        print("\n## Memory backend: counters\n")
        print(format_table(["what", "traced memory", "bytes per key"], memory_rows(args.keys), md))
        print("\n## IP set lookups\n")
        rows, ratio = lookup_rows(directory)
        print(format_table(["set", "ns/lookup", "hits"], rows, md))
        verdict = "ok" if ratio < LOOKUP_TARGET else "OVER TARGET"
        print(
            f"\n100 000 / 10 CIDRs lookup cost: {ratio:.2f}x (target < {LOOKUP_TARGET}): {verdict}"
        )
    return 0 if ratio < LOOKUP_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
