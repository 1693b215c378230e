"""The findings stores, SQLite and Redis, held to one behaviour table (folding, suppression,
retention, closing, queries) against a real redis-server; then what only Redis does: several
processes folding the same finding at once, key prefixes, and the ``backend: redis`` config."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wafproxy.config.source import parse
from wafproxy.errors import ConfigError
from wafproxy.findings.config import FindingsConfig, StoreBackend, parse_findings
from wafproxy.findings.model import Finding, Severity, Status
from wafproxy.findings.redis_store import RedisFindingStore
from wafproxy.findings.service import build_service
from wafproxy.findings.store import FindingQuery, FindingStore, Retention, Store
from wafproxy.findings.suppress import SuppressionRule
from wafproxy.state.config import RedisConfig, StateConfig

if TYPE_CHECKING:
    from conftest import RedisServer

StoreFactory = Callable[..., Store]


def make(
    subject: str = "/.git/HEAD",
    severity: float = 7.5,
    now: float | None = None,
    type_: str = "EXPOSED_SENSITIVE_PATH",
    **kw: Any,
) -> Finding:
    return Finding.new(
        type=type_,
        title=f"exposed {subject}",
        description="d",
        severity=severity,
        resource="http://app:80",
        subject=subject,
        check="sensitive_paths",
        evidence=[f"GET {subject}"],
        now=now,
        **kw,
    )


def redis_config(server: RedisServer) -> RedisConfig:
    return RedisConfig(url=server.url, key_prefix="test:")


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens a store of the parametrized backend; every store opened on the same data (the
    same file, the same Redis and prefix), as a restarted or a second process would."""
    opened: list[Store] = []

    def sqlite(**kw: Any) -> Store:
        return FindingStore(tmp_path / "findings.db", **kw)

    def redis(**kw: Any) -> Store:
        return RedisFindingStore(redis_config(server), **kw)

    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
    factory = redis if request.param == "redis" else sqlite

    def open_(**kw: Any) -> Store:
        store = factory(**kw)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


# -- the behaviour table both backends share -------------------------------------------------------
def test_repeats_fold_into_one_finding_and_survive_reopening(open_store: StoreFactory) -> None:
    first = open_store()
    recorded = first.record([make(now=1), make(now=2)], now=2)
    assert recorded.new_ids == {make().id} and recorded.notable_ids == {make().id}
    again = first.record([make(now=3)], now=3)
    assert again.new_ids == frozenset() and again.notable_ids == frozenset()
    first.close()
    (only,) = open_store().query()
    assert only.count == 3 and only.first_seen == 1 and only.last_seen == 3
    assert only.evidence == ("GET /.git/HEAD",)


def test_queries_filter_and_order_by_severity(open_store: StoreFactory) -> None:
    store = open_store()
    store.record([make("/a", 3.0), make("/b", 9.5), make("/c", 5.0, type_="OTHER")], now=1000)
    assert [f.subject for f in store.query()] == ["/b", "/c", "/a"]
    medium = FindingQuery(min_severity=Severity.MEDIUM)
    assert [f.subject for f in store.query(medium)] == ["/b", "/c"]
    assert [f.subject for f in store.query(FindingQuery(type="OTHER"))] == ["/c"]
    assert store.count(FindingQuery(statuses=frozenset({Status.ACTIVE}))) == 3
    assert store.count(FindingQuery(statuses=frozenset({Status.ARCHIVED}))) == 0
    assert [f.subject for f in store.query(FindingQuery(limit=1, offset=1))] == ["/c"]
    assert store.count(FindingQuery(source="detect")) == 0
    assert store.count(FindingQuery(check="sensitive_paths", resource="http://app:80")) == 3


def test_ties_in_severity_order_by_last_seen_then_id(open_store: StoreFactory) -> None:
    store = open_store()
    store.record([make("/old", 5.0, now=10), make("/new", 5.0, now=20)], now=20)
    assert [f.subject for f in store.query()] == ["/new", "/old"]
    assert [f.subject for f in store.query(FindingQuery(since=15))] == ["/new"]


def test_archive_and_unarchive(open_store: StoreFactory) -> None:
    store = open_store()
    store.record([make()], now=1000)
    assert store.set_status(make().id, Status.ARCHIVED, now=1000).status is Status.ARCHIVED
    store.record([make(now=1001)], now=1001)
    archived = store.get(make().id)
    assert archived is not None and archived.status is Status.ARCHIVED and archived.count == 2
    assert store.active_counts() == {}
    assert store.set_status(make().id, Status.ACTIVE).status is Status.ACTIVE
    assert store.active_counts() == {("sensitive_paths", Severity.HIGH): 1}
    with pytest.raises(KeyError):
        store.set_status("nope", Status.ARCHIVED)


def test_suppression_rules_apply_to_new_and_existing_findings(open_store: StoreFactory) -> None:
    rule = SuppressionRule(
        name="dev", type="EXPOSED_*", resource="http://app*", max_severity=Severity.HIGH
    )
    plain = open_store()
    plain.record([make("/x", 7.5), make("/y", 9.5)], now=1000)
    store = open_store(suppressions=[rule])
    recorded = store.record([make("/x", 7.5, now=1001), make("/y", 9.5, now=1001)], now=1001)
    by_subject = {f.subject: f for f in recorded.findings}
    assert by_subject["/x"].status is Status.SUPPRESSED
    assert by_subject["/x"].details["suppressed_by"] == "dev"
    assert by_subject["/y"].status is Status.ACTIVE  # critical: above max_severity
    assert recorded.notable_ids == {by_subject["/x"].id}
    assert store.active_counts() == {("sensitive_paths", Severity.CRITICAL): 1}


def test_an_expired_suppression_no_longer_applies(open_store: StoreFactory) -> None:
    store = open_store(suppressions=[SuppressionRule(name="until", until=500.0)])
    assert store.record([make()], now=1000).findings[0].status is Status.ACTIVE
    later = open_store(suppressions=[SuppressionRule(name="until", until=5000.0)])
    assert later.record([make()], now=1000).findings[0].status is Status.SUPPRESSED


def test_close_missing_closes_only_what_a_completed_check_no_longer_sees(
    open_store: StoreFactory,
) -> None:
    store = open_store()
    other = replace(make("/c", type_="OTHER"), check="other_check", id="c" * 32)
    store.record([make("/a"), make("/b"), other], now=1000)
    closed = store.close_missing("scan", "http://app:80", ["sensitive_paths"], [make("/a").id])
    assert [f.subject for f in closed] == ["/b"]
    statuses = {f.subject: f.status for f in store.query()}
    assert statuses == {"/a": Status.ACTIVE, "/b": Status.CLOSED, "/c": Status.ACTIVE}
    assert store.close_missing("scan", "http://app:80", ["sensitive_paths"], []) == [
        store.get(make("/a").id).with_status(Status.CLOSED)  # type: ignore[union-attr]
    ]
    reopened = store.record([make("/b", now=1001)], now=1001).findings[0]
    assert reopened.status is Status.ACTIVE and reopened.count == 2


def test_retention_drops_old_and_excess_findings(open_store: StoreFactory) -> None:
    store = open_store(retention=Retention(max_findings=3, max_age_days=1))
    store.record([make("/old", now=0)], now=0)
    store.record([make(f"/{i}", now=200_000 + i) for i in range(5)], now=200_010)
    assert sorted(f.subject for f in store.query()) == ["/2", "/3", "/4"]
    assert store.count() == 3 and store.get(make("/0").id) is None


def test_retention_drops_archived_findings_before_active_ones(open_store: StoreFactory) -> None:
    store = open_store(retention=Retention(max_findings=2, max_age_days=1))
    store.record([make("/a", now=100), make("/b", now=101)], now=101)
    store.set_status(make("/b").id, Status.ARCHIVED, now=101)
    store.record([make("/c", now=102)], now=102)
    assert sorted(f.subject for f in store.query()) == ["/a", "/c"]


def test_prefix_lookup(open_store: StoreFactory) -> None:
    store = open_store()
    store.record([make()])
    assert [f.id for f in store.find_prefix(make().id[:6])] == [make().id]
    assert store.find_prefix("%") == [] and store.find_prefix("*") == []


def test_active_counts_by_check_and_band(open_store: StoreFactory) -> None:
    store = open_store()
    store.record([make("/a", 7.5), make("/b", 8.0), make("/c", 3.0)], now=1000)
    store.set_status(make("/c").id, Status.ARCHIVED, now=1000)
    assert store.active_counts() == {("sensitive_paths", Severity.HIGH): 2}


# -- what only Redis does --------------------------------------------------------------------------
def test_two_processes_fold_the_same_finding_without_losing_a_count(
    redis_server: RedisServer,
) -> None:
    stores = [RedisFindingStore(redis_config(redis_server)) for _ in range(2)]
    rounds = 150
    start = threading.Barrier(len(stores))

    def hammer(store: RedisFindingStore, worker: int) -> None:
        start.wait()
        for i in range(rounds):
            finding = replace(make(now=1000 + i), evidence=(f"w{worker}-{i}",))
            store.record([finding], now=1000 + i)

    threads = [threading.Thread(target=hammer, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    folded = stores[1].get(make().id)
    assert folded is not None and folded.count == 2 * rounds
    assert folded.first_seen == 1000 and folded.last_seen == 1000 + rounds - 1
    assert {e[:2] for e in folded.evidence} <= {"w0", "w1"} and len(folded.evidence) == 20
    assert stores[0].count() == 1
    for store in stores:
        store.close()


def test_a_finding_recorded_by_one_process_is_new_to_exactly_one(
    redis_server: RedisServer,
) -> None:
    stores = [RedisFindingStore(redis_config(redis_server)) for _ in range(4)]
    start = threading.Barrier(len(stores))
    new: list[frozenset[str]] = []

    def record(store: RedisFindingStore) -> None:
        start.wait()
        new.append(store.record([make()], now=1000).new_ids)

    threads = [threading.Thread(target=record, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(ids) for ids in new) == [0, 0, 0, 1]
    for store in stores:
        store.close()


def test_key_prefixes_keep_fleets_apart(redis_server: RedisServer) -> None:
    config = redis_config(redis_server)
    blue = RedisFindingStore(config, key_prefix="blue:")
    green = RedisFindingStore(config, key_prefix="green:")
    blue.record([make()], now=1000)
    assert blue.count() == 1 and green.count() == 0 and green.get(make().id) is None
    default = RedisFindingStore(config)
    assert default.prefix == "test:findings:"
    keys = {k.decode() if isinstance(k, bytes) else k for k in blue.client.keys("*")}
    assert keys == {f"blue:f:{make().id}", "blue:meta", "blue:order", "blue:active"}
    for store in (blue, green, default):
        store.close()


async def test_the_service_records_and_exports_gauges_through_redis(
    redis_server: RedisServer,
) -> None:
    registry = CollectorRegistry()
    config = FindingsConfig(backend=StoreBackend.REDIS).with_state(
        StateConfig(redis=redis_config(redis_server))
    )
    service = build_service(config, registry)
    assert isinstance(service.store, RedisFindingStore)
    await service.start()
    await service.publish([make("/a", 7.5), make("/b", 9.5)])
    await service.publish([make("/a", 7.5)])
    assert (await service.get(make("/a").id)).count == 2  # type: ignore[union-attr]
    text = generate_latest(registry).decode()
    assert 'wafproxy_findings_active{check="sensitive_paths",severity="high"} 1.0' in text
    assert 'wafproxy_findings_active{check="sensitive_paths",severity="critical"} 1.0' in text
    await service.stop()


# -- the config ------------------------------------------------------------------------------------
def test_backend_redis_parses_and_takes_the_state_sections_connection(tmp_path: Path) -> None:
    node = parse("backend: redis\nkey_prefix: 'shop:findings:'\n", "wafproxy.yaml")
    config = parse_findings(node, tmp_path)
    assert config.backend is StoreBackend.REDIS and config.key_prefix == "shop:findings:"
    state = StateConfig(redis=RedisConfig(url="redis://10.0.0.1:6380/2"))
    assert config.with_state(state).redis.url == "redis://10.0.0.1:6380/2"
    assert parse_findings(parse("store: f.db", "w.yaml"), tmp_path).backend is StoreBackend.SQLITE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backend: mongo", "expected one of sqlite, redis"),
        ("backend: redis\nstore: f.db", "is the SQLite file"),
        ("key_prefix: x", "is only for backend: redis"),
    ],
)
def test_backend_errors_say_where(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_findings(parse(text, "wafproxy.yaml"), tmp_path)
    assert str(info.value).startswith("wafproxy.yaml:")
