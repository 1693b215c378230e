"""The offline OSV database: versions, ranges, CVSS, the shipped advisories, update-db."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wafproxy.scan.banners import debug_page_products, parse_products
from wafproxy.scan.osv import (
    AdvisoryDB,
    Range,
    cvss3_base_score,
    parse_advisory,
    shipped_documents,
    update_db,
    version_key,
)


@pytest.mark.parametrize(
    "ordered",
    [
        ["1.0.1", "1.0.1a", "1.0.1f", "1.0.1g", "1.0.2", "1.0.2h", "1.0.2z", "1.0.2zd", "1.1.0"],
        ["2.0a1", "2.0b2", "2.0rc1", "2.0", "2.0.1", "2.10"],
        ["1.9", "1.18.0", "1.20.0", "1.20.1", "1.21.0"],
        ["0", "0.6.18", "1.0.0-alpha", "1.0.0"],
    ],
)
def test_version_order(ordered: list[str]) -> None:
    keys = [version_key(v) for v in ordered]
    assert keys == sorted(keys)
    assert version_key("1.0") == version_key("1.0.0") == version_key("v1.0.0")


def test_range_events_follow_osv_semantics() -> None:
    r = Range(
        "ECOSYSTEM",
        (("introduced", "2.4.0"), ("fixed", "2.4.28"), ("introduced", "0"), ("fixed", "2.2.35")),
    )
    assert [r.contains(v) for v in ("2.2.34", "2.2.35", "2.3.9", "2.4.0", "2.4.27", "2.4.28")] == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    last = Range("ECOSYSTEM", (("introduced", "1.0"), ("last_affected", "1.4")))
    assert [last.contains(v) for v in ("0.9", "1.0", "1.4", "1.4.1")] == [False, True, True, False]


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 9.0),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


def test_every_shipped_advisory_is_a_valid_osv_document_with_a_cve_id() -> None:
    docs = list(shipped_documents())
    assert len(docs) >= 30
    for doc in docs:
        advisory = parse_advisory(doc)
        assert advisory.id.startswith("CVE-") and doc["schema_version"] == "1.6.0"
        assert all(r.fixed for a in advisory.affected for r in a.ranges), advisory.id
        assert advisory.references and 1.0 <= advisory.score <= 10.0


def test_every_shipped_virtual_patch_compiles_and_matches_its_test_request(
    tmp_path: Path,
) -> None:
    from wafproxy.acl.testcases import load_test_file, run_test
    from wafproxy.scan.patches import GROUP

    db = AdvisoryDB.load()
    patched = [a for a in db.by_id.values() if a.virtual_patch]
    assert len(patched) >= 8
    rules = [
        {
            "name": a.id,
            "priority": i + 1,
            "action": "block",
            "rule_labels": [a.id.lower()],
            "statement": a.virtual_patch["statement"],
        }
        for i, a in enumerate(patched)
    ]  # type: ignore[index]
    (tmp_path / "g.yaml").write_text(json.dumps({"rule_groups": {GROUP: {"rules": rules}}}))
    tests = [
        {
            "name": a.id,
            "request": dict(a.virtual_patch["test_request"]),  # type: ignore[index]
            "expect": {"action": "block"},
        }
        for a in patched
    ]
    tests.append(
        {
            "name": "benign",
            "request": {"uri": "/index.html?q=hello", "headers": {"Range": "bytes=0-99"}},
            "expect": {"action": "allow"},
        }
    )
    (tmp_path / "g.tests.yaml").write_text(
        json.dumps({"rule_files": ["g.yaml"], "rule_group": GROUP, "tests": tests})
    )
    suite = load_test_file(tmp_path / "g.tests.yaml")
    failures = {t.name: run_test(suite, t) for t in suite.tests if run_test(suite, t)}
    assert failures == {}


def test_banners_are_matched_to_advisories_by_package_and_version() -> None:
    db = AdvisoryDB.load()
    ids = lambda name, version: [a.id for a, _ in db.match(name, version)]  # noqa: E731
    assert "CVE-2021-41773" in ids("Apache", "2.4.49")
    assert "CVE-2021-41773" not in ids("Apache", "2.4.50")
    assert "CVE-2014-0160" in ids("OpenSSL", "1.0.1f")
    assert "CVE-2014-0160" not in ids("OpenSSL", "1.0.1g")
    assert "CVE-2022-0778" in ids("openssl", "1.1.1m") and not ids("openssl", "3.0.15")
    assert "CVE-2024-34069" in ids("Werkzeug", "2.0.1")
    assert ids("nginx", "1.27.4") == []
    assert ids("gunicorn", "19.9.0")[:1] == ["CVE-2024-1135"]  # highest score first


def test_products_are_parsed_from_banners_and_debug_pages() -> None:
    products = parse_products("Apache/2.4.49 (Unix) OpenSSL/1.0.1f PHP/7.2.10", "Server")
    assert [(p.name, p.version) for p in products] == [
        ("Apache", "2.4.49"),
        ("OpenSSL", "1.0.1f"),
        ("PHP", "7.2.10"),
    ]
    assert [(p.name, p.version) for p in parse_products("nginx", "Server")] == [("nginx", None)]
    assert parse_products("4.0.30319", "X-AspNet-Version")[0].name == "ASP.NET"
    page = "<tr><th>Django Version:</th>\n<td>2.2.1</td></tr>"
    assert [(p.name, p.version) for p in debug_page_products(page)] == [("Django", "2.2.1")]


def _doc(advisory_id: str, modified: str, fixed: str = "2.0") -> dict[str, object]:
    return {
        "id": advisory_id,
        "modified": modified,
        "summary": "s",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def test_update_db_accepts_files_lists_dirs_and_zips_and_keeps_the_newest(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "one.json").write_text(json.dumps(_doc("GHSA-0001", "2024-01-01T00:00:00Z")))
    (src / "list.json").write_text(json.dumps([_doc("PYSEC-2", "2024-01-01T00:00:00Z")]))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "noid.json").write_text(json.dumps({"affected": []}))
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        archive.writestr(
            "GHSA-0001.json", json.dumps(_doc("GHSA-0001", "2024-06-01T00:00:00Z", fixed="3.0"))
        )
    db_dir = tmp_path / "db"
    result = update_db([src, tmp_path / "bad.json", tmp_path / "noid.json"], db_dir)
    assert (result.added, result.updated, len(result.invalid)) == (2, 0, 2)
    result = update_db([tmp_path / "all.zip", src / "one.json"], db_dir)
    assert (result.added, result.updated, result.unchanged) == (0, 1, 1)
    db = AdvisoryDB.load([db_dir])
    assert [a.id for a, _ in db.match("demo_pkg", "2.5")] == ["GHSA-0001"]


def test_update_db_command_line(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_doc("GHSA-0003", "2024-01-01T00:00:00Z")))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "wafproxy",
            "scan",
            "update-db",
            str(tmp_path / "a.json"),
            "--db",
            str(tmp_path / "db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "1 added, 0 updated, 0 unchanged, 0 invalid" in run.stdout
    assert (tmp_path / "db" / "GHSA-0003.json").exists()
