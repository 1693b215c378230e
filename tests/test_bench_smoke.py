"""Keep bench/ from rotting: run each benchmark script in a tiny mode and read its report."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.model import ActionKind, WebAcl

BENCH = Path(__file__).resolve().parent.parent / "bench"
WRK_SAMPLE = """\
Running 1s test @ http://127.0.0.1:8080/
  1 threads and 32 connections
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.70ms
     99%    1.25s
  6000 requests in 1.00s, 1.00MB read
{extra}Requests/sec:   6000.50
Transfer/sec:      1.00MB
WRKDONE requests=6000 status_errors={errors} connect=0 read=0 write=0 timeout=0
"""

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None or shutil.which("taskset") is None,
    reason="wrk and taskset needed: apt-get install -y wrk",
)


def run_script(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def report_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """(system, shape) -> the row's cells, from the plain table."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) > 2 and cells[1] in ("R1", "R2"):
            rows[(cells[0], cells[1])] = cells
    return rows


def test_wrk_report_is_read_and_non_2xx_invalidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    parse_wrk = importlib.import_module("wrkrun").parse_wrk

    good = parse_wrk(WRK_SAMPLE.format(extra="", errors=0))
    assert good.valid
    assert (good.requests_per_s, good.p50_ms, good.p99_ms) == (6000.5, 0.85, 1250.0)
    bad = parse_wrk(WRK_SAMPLE.format(extra="  Non-2xx or 3xx responses: 7\n", errors=7))
    assert bad.problems == ("7 non-2xx answers",)
    assert not parse_wrk("Requests/sec: 10\n").valid


@needs_wrk
def test_throughput_baselines_run() -> None:
    done = run_script(
        "throughput.py", "--duration", "1", "--runs", "1", "--warmup", "0",
        "--systems", "upstream,bare", "--shapes", "R2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = report_rows(done.stdout)
    assert set(rows) == {("upstream", "R2"), ("bare", "R2")}
    assert all("1/1" in row for row in rows.values())
    assert rows[("bare", "R2")][6] == "1.00"  # the ratio column
    assert float(rows[("upstream", "R2")][2].replace(",", "")) > 0


@needs_wrk
@pytest.mark.slow
def test_throughput_every_system_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    names = importlib.import_module("systems").SYSTEM_NAMES
    done = run_script(
        "throughput.py", "--duration", "1", "--runs", "1", "--warmup", "0", timeout=600
    )
    assert done.returncode == 0, done.stderr
    rows = report_rows(done.stdout)
    assert {system for system, _ in rows} == set(names)
    assert len(rows) == 2 * len(names)
    assert all("1/1" in row for row in rows.values())
    for system in ("waf-empty", "waf-default", "waf-bodyscan", "waf-noscan", "waf-default-logfile"):
        note = next(line for line in done.stdout.splitlines() if line.startswith(f"{system}:"))
        assert "decision log lines" in note and "(0 decision" not in note, note


def test_throughput_rejects_unknown_system() -> None:
    done = run_script("throughput.py", "--systems", "nginx")
    assert done.returncode != 0
    assert "nginx" in done.stderr


def test_body_floor_scans_the_body_as_the_default_web_acl_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """waf-bodyscan's web ACL: the default web ACL's scan groups on the body, and no other."""
    monkeypatch.syspath_prepend(str(BENCH))
    body_scan_acl = importlib.import_module("body_floor").body_scan_acl
    path = tmp_path / "body-scan.yaml"
    path.write_text(yaml.safe_dump(body_scan_acl(), sort_keys=False), encoding="utf-8")

    def scans(acl: WebAcl) -> list[tuple[str, tuple[str, ...], int]]:
        pairs = zip(acl.scan_inputs, acl.match_groups, strict=True)
        return sorted((inp.field.key, inp.names, len(g.atom_ids)) for inp, g in pairs)

    (floor,) = load_rule_files([path]).acls.values()
    default = load_rule_files(default_rule_files()).acls["default"]
    body = [scan for scan in scans(default) if scan[0].startswith("body")]
    assert body and scans(floor) == body
    assert {rule.action.kind for rule in floor.rules if rule.action} == {ActionKind.COUNT}


def test_engine_runs() -> None:
    done = run_script(
        "engine.py", "--iterations", "20", "--scale-iterations", "20", "--warmup", "2",
        "--sizes", "10,30",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "R2 (shape)" in done.stdout
    assert "BLOCK" in done.stdout  # the attack probes
    for layout in ("rules", "patterns"):
        assert any(line.split()[:2] == [layout, "30"] for line in done.stdout.splitlines())


def test_instructions_child_evaluates_a_shape() -> None:
    """What each callgrind child runs (valgrind itself is a dev tool, not installed by CI)."""
    runs = [("R2", "warm"), ("R2", "cold"), ("R2", "new-value"), ("R1", "new-value")]
    for shape, kind in runs:
        done = run_script("instructions.py", "--child", shape, "3", "measure", kind)
        assert done.returncode == 0, done.stderr
    pressed = run_script(
        "instructions.py", "--child", "R1", "3", "idle", "warm", "--pressure", "64"
    )
    assert pressed.returncode == 0, pressed.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="apt-get install -y valgrind")
def test_instructions_counts_an_evaluation() -> None:
    done = run_script("instructions.py", "--shapes", "R1", "--evaluations", "20", timeout=600)
    assert done.returncode == 0, done.stderr
    count = int(done.stdout.split()[1].replace(",", ""))
    assert 10_000 < count < 10_000_000


@pytest.mark.slow
@needs_wrk
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="apt-get install -y valgrind")
def test_proxy_instructions_counts_a_request() -> None:
    done = run_script(
        "proxy_instructions.py", "--systems", "bare", "--shapes", "R1",
        "--warmup", "2", "--seconds", "2", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| bare | R1 |"))
    requests, per_request = (int(cell.replace(",", "")) for cell in row.split("|")[3:5])
    assert requests > 0
    assert 50_000 < per_request < 50_000_000


@needs_wrk
def test_detect_bench_quick_runs() -> None:
    done = run_script("detect_bench.py", "--quick")
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("## Throughput")[1].split("## Detector memory")[0]
    row = next(line.split() for line in table.splitlines() if line.startswith("R1"))
    assert float(row[4]) > 0 and "1/1" in row  # the on/off ratio; the run was valid
    assert "bytes" in done.stdout and "request_flood" in done.stdout
