"""The shipped default web ACL's YAML rule tests, replayed end to end through a real proxy."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from wafproxy.acl.compile import default_rule_files, managed_rules_dir
from wafproxy.acl.model import ActionKind
from wafproxy.acl.testcases import load_test_file
from wafproxy.request import WafRequest

if TYPE_CHECKING:
    from conftest import StartProxy


def raw_bytes(req: WafRequest) -> bytes:
    target = req.uri_path + (f"?{req.query_string}" if req.query_string else "")
    lines = [f"{req.method} {target} HTTP/1.1", "Host: shop.example", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in req.headers if name.lower() != "host"]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + req.body


async def status_of(port: int, data: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(status_line.split()[1])


async def test_default_acl_tests_replayed_through_the_proxy(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(
        {
            "rules": [str(p) for p in default_rule_files()],
            "routes": [{"host": "*", "upstream": "app", "web_acl": "default"}],
        }
    )
    tf = load_test_file(managed_rules_dir() / "default.tests.yaml")
    expected_blocks = 0
    for test in tf.tests:
        status = await status_of(proxy.port, raw_bytes(test.request))
        if test.expect.action is ActionKind.BLOCK:
            expected_blocks += 1
            assert status == 403, test.name
        else:
            assert status != 403, test.name
    decisions = await proxy.wait_decisions(len(tf.tests))
    assert sum(d["action"] == "BLOCK" for d in decisions) == expected_blocks
    assert expected_blocks >= 2
