"""``wafproxy managed-lists``: the reputation and anonymous-IP lists replaced from feed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from wafproxy.cli import main
from wafproxy.managed_lists import LISTS, data_dir

if TYPE_CHECKING:
    from conftest import StartProxy

STIX = {
    "type": "bundle",
    "id": "bundle--1",
    "objects": [
        {
            "type": "indicator",
            "id": "indicator--1",
            "pattern_type": "stix",
            "pattern": "[ipv4-addr:value = '198.51.100.9']",
        }
    ],
}


def feeds(tmp_path: Path) -> list[Path]:
    text = tmp_path / "feed.txt"
    text.write_text("# botnet\n203.0.113.7   c2\n203.0.113.7\n2001:db8::1\n")
    table = tmp_path / "feed.csv"
    table.write_text("ip_address,first_seen\n203.0.113.0/28,2026-11-01\n")
    stix = tmp_path / "feed.json"
    stix.write_text(json.dumps(STIX))
    return [text, table, stix]


def test_every_list_is_a_shipped_file() -> None:
    for name, (filename, group) in LISTS.items():
        assert (data_dir() / filename).is_file(), name
        assert filename in (data_dir().parent / f"{group}.yaml").read_text()


def test_update_merges_feeds_of_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "lists"
    target.mkdir()
    assert main(["managed-lists", "update", "ip-reputation", *map(str, feeds(tmp_path)),
                 "--data-dir", str(target)]) == 0  # fmt: skip
    lines = (target / "ip-reputation.txt").read_text().splitlines()
    entries = [line for line in lines if not line.startswith("#")]
    assert entries == ["198.51.100.9/32", "203.0.113.0/28", "203.0.113.7/32", "2001:db8::1/128"]
    assert "4 entries written" in capsys.readouterr().out


def test_a_bad_entry_names_its_place_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "lists"
    target.mkdir()
    (target / "anonymous-ip.txt").write_text("192.0.2.1\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("192.0.2.5\n\n300.1.2.3\n")
    assert main(["managed-lists", "update", "anonymous-ip", str(bad),
                 "--data-dir", str(target)]) == 1  # fmt: skip
    assert f"{bad}:3:1" in capsys.readouterr().err
    assert (target / "anonymous-ip.txt").read_text() == "192.0.2.1\n"
    assert main(["managed-lists", "update", "anonymous-ip", str(tmp_path / "missing.txt"),
                 "--data-dir", str(target)]) == 1  # fmt: skip


async def test_a_running_proxy_blocks_the_updated_list(
    start_proxy: StartProxy, client: aiohttp.ClientSession, rules_dir: Path, tmp_path: Path
) -> None:
    from test_reload import wait_for_reloads

    (rules_dir / "ip-reputation.txt").write_text("192.0.2.1\n")
    (rules_dir / "deny.yaml").write_text(
        "web_acl: deny\ndefault_action: allow\n"
        "ip_sets: {reputation: {file: ip-reputation.txt}}\n"
        "rules:\n  - name: deny\n    priority: 1\n    action: block\n"
        "    statement: {ip_set: {ref: reputation}}\n"
    )
    routes = [{"upstream": "app", "web_acl": "deny"}]
    proxy = await start_proxy({"rules": [str(rules_dir / "deny.yaml")], "routes": routes})
    async with client.get(proxy.url + "/status/200") as response:
        assert response.status == 200
    feed = tmp_path / "loopback.txt"
    feed.write_text("127.0.0.0/8\n")
    assert main(["managed-lists", "update", "ip-reputation", str(feed),
                 "--data-dir", str(rules_dir)]) == 0  # fmt: skip
    await wait_for_reloads(proxy, "success", 1)
    async with client.get(proxy.url + "/status/200") as response:
        assert response.status == 403
