"""``wafproxy scan`` and ``wafproxy findings`` as a user runs them, and docs/scan.md current."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from apps import Served

from wafproxy.scan.docs import render, splice

ROOT = Path(__file__).resolve().parent.parent.parent


async def wafproxy(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wafproxy",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_scan_a_target_record_findings_propose_rules_and_triage(
    weak: Served, tmp_path: Path
) -> None:
    store = tmp_path / "findings.db"
    rules = tmp_path / "patches.yaml"
    code, out, err = await wafproxy(
        "scan",
        "--target",
        weak.url,
        "--ports",
        "none",
        "--rate",
        "500",
        "--store",
        str(store),
        "--propose-rules",
        str(rules),
        "--format",
        "sarif",
        "--fail-on",
        "critical",
    )
    assert code == 3, err  # critical findings and --fail-on critical
    assert json.loads(out)["version"] == "2.1.0"
    assert "virtual patch rule(s) in count mode" in err
    assert rules.exists() and (tmp_path / "patches.tests.yaml").exists()
    code, out, err = await wafproxy("test", str(tmp_path / "patches.tests.yaml"))
    assert code == 0 and " 0 failed" in out
    code, out, err = await wafproxy(
        "findings", "list", "--store", str(store), "--severity", "critical"
    )
    assert code == 0 and "Environment file with secrets exposed" in out
    assert "Security headers grade" not in out
    env_id = next(line.split()[0] for line in out.splitlines() if "/.env" in line)
    code, out, _ = await wafproxy("findings", "archive", env_id[:8], "--store", str(store))
    assert code == 0 and "archived" in out
    code, out, _ = await wafproxy(
        "findings", "list", "--store", str(store), "--json", "--status", "archived"
    )
    assert [json.loads(line)["subject"] for line in out.splitlines()] == ["path:/.env"]
    code, out, _ = await wafproxy("findings", "show", env_id, "--store", str(store))
    assert json.loads(out)["status"] == "archived"
    code, out, _ = await wafproxy("findings", "unarchive", env_id, "--store", str(store))
    assert code == 0 and "active" in out


async def test_scan_command_line_errors(tmp_path: Path) -> None:
    code, _, err = await wafproxy("scan")
    assert code == 1 and "give --target URL" in err
    code, _, err = await wafproxy("scan", "--target", "ftp://x", "--ports", "none")
    assert code == 1 and "expected an http(s) URL" in err
    code, _, err = await wafproxy("scan", "--target", "http://127.0.0.1:9", "--checks", "nope")
    assert code == 1 and "--checks: unknown nope" in err
    code, _, err = await wafproxy("findings", "list", "--store", str(tmp_path / "none.db"))
    assert code == 1 and "no findings store" in err


async def test_html_report_to_a_file(good: Served, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    code, _, err = await wafproxy(
        "scan",
        "--target",
        good.url,
        "--ports",
        "none",
        "--rate",
        "500",
        "--format",
        "html",
        "-o",
        str(report),
    )
    assert code == 0, err
    text = report.read_text()
    assert text.startswith("<!doctype html>") and "Security headers grade A+" in text


def test_docs_scan_md_lists_every_check_current() -> None:
    document = (ROOT / "docs" / "scan.md").read_text()
    assert splice(document) == document, "run: python -m wafproxy.scan.docs (and splice)"
    assert render().strip() in document
