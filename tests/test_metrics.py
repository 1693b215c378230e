from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from wafproxy.acl.model import ActionKind, RuleMatch, Verdict
from wafproxy.metrics import (
    MULTIPROC_ENV,
    WAF_BUCKETS,
    Metrics,
    clear_multiprocess_dir,
    mark_process_dead,
    multiprocess_enabled,
)

BLOCKED = Verdict(
    action=ActionKind.BLOCK,
    terminating_rule="block-sqli",
    matches=(
        RuleMatch("count-ua", ActionKind.COUNT),
        RuleMatch("core:sqli", ActionKind.BLOCK, group="core"),
    ),
)
ALLOWED = Verdict(action=ActionKind.ALLOW, terminating_rule="Default_Action")


def sample(body: bytes, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)


def test_observe_verdict_counts_request_rules_and_time() -> None:
    m = Metrics()
    m.observe_verdict("api", "shop", BLOCKED, 0.00002)
    m.observe_verdict("api", "shop", ALLOWED, 0.00002)
    m.observe_verdict("api", "shop", BLOCKED, 0.01)
    get = m.registry.get_sample_value
    assert get("wafproxy_requests_total", {"route": "api", "acl": "shop", "action": "block"}) == 2
    assert get("wafproxy_requests_total", {"route": "api", "acl": "shop", "action": "allow"}) == 1
    count_rule = {"acl": "shop", "rule": "count-ua", "action": "count"}
    assert get("wafproxy_rule_matches_total", count_rule) == 2
    group_rule = {"acl": "shop", "rule": "core:sqli", "action": "block"}
    assert get("wafproxy_rule_matches_total", group_rule) == 2
    assert get("wafproxy_waf_evaluation_seconds_count", {"acl": "shop"}) == 3
    assert get("wafproxy_waf_evaluation_seconds_bucket", {"acl": "shop", "le": "2.5e-05"}) == 2
    assert get("wafproxy_waf_evaluation_seconds_bucket", {"acl": "shop", "le": "0.01"}) == 3


def test_waf_buckets_span_5us_to_50ms() -> None:
    assert WAF_BUCKETS[0] == 5e-6
    assert WAF_BUCKETS[-1] == 0.05
    assert list(WAF_BUCKETS) == sorted(WAF_BUCKETS)


def test_instances_have_private_registries() -> None:
    first, second = Metrics(), Metrics()
    first.requests.labels("r", "a", "allow").inc()
    assert first.registry is not second.registry
    labels = {"route": "r", "acl": "a", "action": "allow"}
    assert second.registry.get_sample_value("wafproxy_requests_total", labels) is None


def test_injected_registry_is_used() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.config_reloads.labels(result="success").inc()
    assert registry.get_sample_value("wafproxy_config_reloads_total", {"result": "success"}) == 1


def test_exposition_lists_every_metric_and_primes_fixed_labels() -> None:
    m = Metrics()
    m.in_flight.labels(route="api").inc()
    m.upstream_seconds.labels(route="api").observe(0.2)
    m.upstream_errors.labels(route="api", kind="timeout").inc()
    m.body_oversize.labels(route="api", kind="reject").inc()
    m.evaluation_errors.labels(acl="shop").inc()
    m.decision_log_dropped.inc(3)
    body, content_type = m.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert sample(body, "wafproxy_in_flight_requests", route="api") == 1
    assert sample(body, "wafproxy_upstream_seconds_count", route="api") == 1
    assert sample(body, "wafproxy_upstream_errors_total", route="api", kind="timeout") == 1
    assert sample(body, "wafproxy_body_oversize_total", route="api", kind="reject") == 1
    assert sample(body, "wafproxy_evaluation_errors_total", acl="shop") == 1
    assert sample(body, "wafproxy_decision_log_dropped_total") == 3
    assert sample(body, "wafproxy_config_reloads_total", result="error") == 0
    for reason in ("malformed", "header_too_large", "timeout", "body_too_large"):
        assert sample(body, "wafproxy_bad_requests_total", reason=reason) == 0


def test_pending_values_expose_what_prometheus_client_would() -> None:
    """The same updates through ``child`` (pending, flushed on read) and straight into
    prometheus_client give the same exposition: bucket edges, +Inf and gauges included."""
    pending, direct = Metrics(), Metrics()
    amounts = [0.0, 5e-6, 5.0000001e-6, 1e-5, 3e-3, 0.05, 0.0500001, 7.0, 1e9]
    for amount in amounts:
        pending.child(pending.waf_seconds, "shop").observe(amount)
        direct.waf_seconds.labels("shop").observe(amount)
        pending.child(pending.upstream_seconds, "api").observe(amount * 10)
        direct.upstream_seconds.labels("api").observe(amount * 10)
    for _ in range(3):
        pending.child(pending.in_flight, "api").inc()
        direct.in_flight.labels("api").inc()
    pending.child(pending.in_flight, "api").dec()
    direct.in_flight.labels("api").dec()
    pending.child(pending.requests, "api", "shop", "block").inc()
    direct.requests.labels("api", "shop", "block").inc()
    assert samples_but_created(pending) == samples_but_created(direct)
    count = "wafproxy_waf_evaluation_seconds_count"
    before = pending.registry.get_sample_value(count, {"acl": "shop"})
    pending.child(pending.waf_seconds, "shop").observe(1e-4)  # a read after more updates
    after = pending.registry.get_sample_value(count, {"acl": "shop"})
    assert (before, after) == (len(amounts), len(amounts) + 1)


def samples_but_created(metrics: Metrics) -> list[tuple[str, dict[str, str], float]]:
    body, _ = metrics.exposition()
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if not s.name.endswith("_created")
    ]


WORKER = textwrap.dedent(
    """
    import os
    from wafproxy.acl.model import ActionKind, RuleMatch, Verdict
    from wafproxy.metrics import Metrics
    m = Metrics()
    verdict = Verdict(ActionKind.BLOCK, "sqli", matches=(RuleMatch("sqli", ActionKind.BLOCK),))
    m.observe_verdict("api", "shop", verdict, 0.0001)
    m.observe_verdict("api", "shop", verdict, 0.0001)
    m.in_flight.labels(route="api").inc()
    m.flush()  # a serving process flushes every FLUSH_SECONDS and when it stops
    print(os.getpid())
    """
)


def run_workers(directory: Path, count: int) -> list[int]:
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    pids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        pids.append(int(out))
    return pids


def test_multiprocess_exposition_sums_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pids = run_workers(tmp_path, 2)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert multiprocess_enabled()
    with caplog.at_level(logging.WARNING, logger="wafproxy.metrics"):
        aggregator = Metrics()
    # this pytest process imported prometheus_client before the variable was set: it says so
    assert "set after prometheus_client was imported" in caplog.text

    body, _ = aggregator.exposition()
    blocked = {"route": "api", "acl": "shop", "action": "block"}
    assert sample(body, "wafproxy_requests_total", **blocked) == 4
    rule = {"acl": "shop", "rule": "sqli", "action": "block"}
    assert sample(body, "wafproxy_rule_matches_total", **rule) == 4
    assert sample(body, "wafproxy_waf_evaluation_seconds_count", acl="shop") == 4
    assert sample(body, "wafproxy_in_flight_requests", route="api") == 2

    mark_process_dead(pids[0])  # livesum: a dead worker's in-flight requests stop counting
    body, _ = aggregator.exposition()
    assert sample(body, "wafproxy_in_flight_requests", route="api") == 1
    assert sample(body, "wafproxy_requests_total", **blocked) == 4

    clear_multiprocess_dir()
    body, _ = aggregator.exposition()
    assert sample(body, "wafproxy_requests_total", **blocked) is None


def test_multiprocess_dir_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="not a directory"):
        Metrics()
