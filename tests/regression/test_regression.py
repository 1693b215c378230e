"""Our own attack / benign regression set (tests/regression/corpus.yaml) replayed through a real
proxy running the shipped default web ACL, with bench/detection.py's request builders."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from wafproxy.acl.compile import managed_rules_dir

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def detection() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wafproxy_bench_detection", ROOT / "bench" / "detection.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


async def test_the_default_web_acl_on_our_regression_set(
    start_proxy: Callable[[Mapping[str, Any]], Any],
) -> None:
    bench = detection()
    proxy = await start_proxy(
        {
            "rules": [str(managed_rules_dir() / "default.yaml")],
            "routes": [{"host": "*", "path_prefix": "/", "upstream": "app", "web_acl": "default"}],
        }
    )
    cases = bench.load_regression(HERE)
    statuses = await bench.send_all("127.0.0.1", proxy.port, cases, 8, 10.0)
    assert [c.id for c in cases if statuses[c.id] is None] == []
    blocked = {c.id for c in cases if statuses[c.id] == 403}
    by_label: dict[str, set[str]] = {"attack": set(), "benign": set(), "anomaly": set()}
    for case in cases:
        by_label[case.label].add(case.id)
    assert sorted(by_label["benign"] & blocked) == []
    assert sorted(by_label["attack"] - blocked) == []
    # single protocol oddities score without blocking on their own
    assert sorted(by_label["anomaly"] & blocked) == []
    assert len(by_label["attack"]) > 400
