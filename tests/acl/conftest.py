"""Fixtures for the rule engine tests: rule files written as real YAML text, and tiny MaxMind
databases built at test time (country NL / US, ASN 64500)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.model import WebAcl
from wafproxy.errors import ConfigErrors

CompileAcl = Callable[[str], WebAcl]
CompileErrors = Callable[[str], list[str]]

NL_NETWORKS = ["192.0.2.0/24", "2001:db8::/32"]
US_NETWORKS = ["198.51.100.0/24"]
ASN_NETWORKS = ["192.0.2.0/24"]
ASN = 64500


def write_geo_databases(directory: Path) -> None:
    """geo.mmdb: 192.0.2.0/24 and 2001:db8::/32 in NL, 198.51.100.0/24 in US;
    asn.mmdb: 192.0.2.0/24 in AS64500. Everything else is unknown to both."""
    geo = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    geo.insert_network(IPSet(NL_NETWORKS), {"country": {"iso_code": "NL"}})
    geo.insert_network(IPSet(US_NETWORKS), {"country": {"iso_code": "US"}})
    geo.to_db_file(str(directory / "geo.mmdb"))
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(IPSet(ASN_NETWORKS), {"autonomous_system_number": ASN})
    asn.to_db_file(str(directory / "asn.mmdb"))


@pytest.fixture(scope="session")
def geo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("geo")
    write_geo_databases(directory)
    return directory


def load_only_acl(path: Path) -> WebAcl:
    rule_set = load_rule_files([path])
    assert len(rule_set.acls) == 1, rule_set.acls
    return next(iter(rule_set.acls.values()))


def error_lines(path: Path) -> list[str]:
    """Every compile error of the file, as printed but with the file's directory left out;
    fails the test when the file compiles."""
    try:
        load_rule_files([path])
    except ConfigErrors as exc:
        return [str(error).replace(f"{path.parent}/", "") for error in exc.errors]
    raise AssertionError(f"{path} compiled without errors")


@pytest.fixture
def compile_acl(tmp_path: Path) -> CompileAcl:
    """``compile_acl(text)``: write ``text`` to tmp_path/rules.yaml and load its one web ACL."""

    def compile_text(text: str) -> WebAcl:
        path = tmp_path / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        return load_only_acl(path)

    return compile_text


@pytest.fixture
def compile_errors(tmp_path: Path) -> CompileErrors:
    """``compile_errors(text)``: the errors of rules.yaml, as ``rules.yaml:line:col: ...``."""

    def errors_of(text: str) -> list[str]:
        path = tmp_path / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        return error_lines(path)

    return errors_of
