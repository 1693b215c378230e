"""Threat lists from local files: plain text (and Tor's exit-address format), CSV, STIX 2.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wafproxy.detect.threatlist import load_threat_list, read_text, stix_addresses
from wafproxy.errors import ConfigError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_plain_text_with_comments_cidrs_and_trailing_words(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.txt",
        "# incident 42\n\n203.0.113.7\n198.51.100.0/24 ; SBL123\n2001:db8:bad::/48  # v6\n"
        "192.0.2.9\tbotnet C2\n",
    )
    tl = load_threat_list(path)
    assert tl.name == "bad.txt" and tl.entries == 4
    for ip in (
        "203.0.113.7",
        "198.51.100.77",
        "2001:db8:bad::1",
        "192.0.2.9",
        "::ffff:203.0.113.7",
    ):
        assert ip in tl, ip
    for ip in ("203.0.113.8", "198.51.101.1", "2001:db8:bae::1", "not-an-ip"):
        assert ip not in tl, ip


def test_tor_exit_address_format() -> None:
    text = (
        "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\n"
        "Published 2024-05-01 10:00:00\nLastStatus 2024-05-01 11:00:00\n"
        "ExitAddress 203.0.113.50 2024-05-01 11:02:03\n"
    )
    assert list(read_text(text)) == [(4, "203.0.113.50")]


def test_a_bad_text_entry_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.txt", "203.0.113.7\n\n# fine\n203.0.113.300\n")
    with pytest.raises(ConfigError) as info:
        load_threat_list(path)
    assert str(info.value) == f"{path}:4:1: not an IP address or CIDR: '203.0.113.300'"


def test_csv_with_a_named_address_column(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.csv", "first_seen,IP Address,port\n2024-01-01,203.0.113.7,443\n")
    tl = load_threat_list(path)
    assert "203.0.113.7" in tl and tl.entries == 1


def test_csv_with_a_commented_header_as_abuse_ch_publishes(tmp_path: Path) -> None:
    text = (
        "################\n# Feodo Tracker\n################\n"
        '# "first_seen_utc","dst_ip","dst_port","c2_status"\n'
        '"2024-01-01 00:00:00","198.51.100.4","443","online"\n'
        "# END 1 entries\n"
    )
    tl = load_threat_list(write(tmp_path, "feodo.csv", text))
    assert "198.51.100.4" in tl and tl.entries == 1


def test_csv_without_a_header_reads_the_first_column(tmp_path: Path) -> None:
    tl = load_threat_list(write(tmp_path, "plain.csv", "203.0.113.1,scanner\n203.0.113.2,c2\n"))
    assert tl.entries == 2 and "203.0.113.2" in tl


def test_csv_without_an_address_column_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "\nname,score\nfoo,3\n")
    with pytest.raises(ConfigError) as info:
        load_threat_list(path)
    assert str(info.value).startswith(f"{path}:2:1: no address column")


def test_csv_bad_address_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.csv", "ip\n203.0.113.1\nhello\n")
    with pytest.raises(ConfigError, match=r"feed\.csv:3:1: not an IP address or CIDR: 'hello'"):
        load_threat_list(path)


def bundle(*patterns: str, **extra: object) -> str:
    objects = [
        {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:04d}",
         "pattern_type": "stix", "pattern": p, **extra}
        for n, p in enumerate(patterns)
    ]  # fmt: skip
    objects.append({"type": "malware", "id": "malware--1", "name": "x", "is_family": False})
    return json.dumps({"type": "bundle", "id": "bundle--1", "objects": objects}, indent=2)


def test_stix_bundle_indicators(tmp_path: Path) -> None:
    text = bundle(
        "[ipv4-addr:value = '203.0.113.7']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24' OR ipv6-addr:value = '2001:db8::1']",
        "[domain-name:value = 'evil.example']",
        "[file:hashes.'SHA-256' = 'aa'] AND [ipv4-addr:value != '192.0.2.1']",
    )
    tl = load_threat_list(write(tmp_path, "intel.json", text))
    assert tl.entries == 3
    for ip in ("203.0.113.7", "198.51.100.200", "2001:db8::1"):
        assert ip in tl, ip
    assert "192.0.2.1" not in tl


def test_stix_revoked_indicators_are_skipped(tmp_path: Path) -> None:
    text = bundle("[ipv4-addr:value = '203.0.113.7']", revoked=True)
    tl = load_threat_list(write(tmp_path, "intel.json", text))
    assert tl.entries == 0 and "203.0.113.7" not in tl


def test_stix_bad_address_points_at_its_indicator(tmp_path: Path) -> None:
    text = bundle("[ipv4-addr:value = '203.0.113.7']", "[ipv4-addr:value = '10.0.0.999']")
    path = write(tmp_path, "intel.json", text)
    line = text.splitlines().index('      "id": "indicator--0001",') + 1
    with pytest.raises(ConfigError) as info:
        load_threat_list(path)
    assert str(info.value) == f"{path}:{line}:1: not an IP address or CIDR: '10.0.0.999'"


def test_stix_invalid_json_has_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "intel.json", '{"type": "bundle",\n  "objects": [}\n')
    with pytest.raises(ConfigError, match=r"intel\.json:2:15: invalid JSON"):
        load_threat_list(path)


def test_stix_without_objects_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a STIX bundle"):
        load_threat_list(write(tmp_path, "intel.json", '{"type": "bundle"}'))


def test_json_content_is_read_as_stix_whatever_the_name(tmp_path: Path) -> None:
    path = write(tmp_path, "intel.txt", bundle("[ipv4-addr:value = '203.0.113.9']"))
    assert "203.0.113.9" in load_threat_list(path)


def test_stix_pattern_scanner() -> None:
    assert stix_addresses(r"[ipv4-addr:value='203.0.113.1']") == ["203.0.113.1"]
    assert stix_addresses("[ipv4-addr:value = 'a\\'b']") == ["a'b"]
    assert stix_addresses("[ipv4-addr:value = '203.0.113.1") == []  # unterminated
    assert stix_addresses("[ipv4-addr:value MATCHES '^203']") == []


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_threat_list(tmp_path / "missing.txt")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_threat_list(path)
