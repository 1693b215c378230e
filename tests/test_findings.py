"""The Finding model, the SQLite FindingStore (folding, suppression, retention, closing), the
sinks (JSON lines, a webhook against a real server, Prometheus) and the FindingsService."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from wafproxy.config.source import parse
from wafproxy.errors import ConfigError
from wafproxy.findings.config import parse_findings
from wafproxy.findings.model import Finding, Severity, Status, finding_id, glob_match
from wafproxy.findings.service import FindingsService, build_service
from wafproxy.findings.sinks import FindingsMetrics, JsonLinesSink, LabelBound, WebhookSink
from wafproxy.findings.store import FindingQuery, FindingStore, Retention
from wafproxy.findings.suppress import SuppressionRule


def make(
    subject: str = "/.git/HEAD",
    severity: float = 7.5,
    now: float | None = None,
    type_: str = "EXPOSED_SENSITIVE_PATH",
    **kw: object,
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
    )  # type: ignore[arg-type]


# -- the model -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "band"),
    [
        (1.0, "informational"),
        (1.9, "informational"),
        (2.0, "low"),
        (3.9, "low"),
        (4.0, "medium"),
        (6.9, "medium"),
        (7.0, "high"),
        (8.9, "high"),
        (9.0, "critical"),
        (10.0, "critical"),
    ],
)
def test_severity_bands(score: float, band: str) -> None:
    assert Severity.of(score).value == band
    assert make(severity=score).band.value == band


def test_scores_are_clamped_to_the_scale() -> None:
    assert make(severity=0.2).severity == 1.0
    assert make(severity=14).severity == 10.0


def test_the_id_is_stable_and_depends_on_what_the_finding_is_about() -> None:
    assert (
        make(now=1).id
        == make(now=2).id
        == finding_id("EXPOSED_SENSITIVE_PATH", "http://app:80", "/.git/HEAD")
    )
    assert make("/.env").id != make().id
    assert len(make().id) == 32


def test_folding_counts_keeps_first_seen_and_bounds_evidence() -> None:
    first = make(now=100)
    folded = first
    for i in range(30):
        folded = folded.folded(
            make(now=200 + i, severity=8.0).__class__(
                **{**make(now=200 + i, severity=8.0).__dict__, "evidence": (f"e{i}",)}
            )
        )
    assert folded.count == 31 and folded.first_seen == 100 and folded.last_seen == 229
    assert folded.severity == 8.0
    assert len(folded.evidence) == 20 and folded.evidence[-1] == "e29"


def test_a_closed_finding_reopens_and_an_archived_one_stays_archived() -> None:
    closed = make().with_status(Status.CLOSED)
    assert closed.folded(make()).status is Status.ACTIVE
    archived = make().with_status(Status.ARCHIVED)
    assert archived.folded(make()).status is Status.ARCHIVED


def test_dict_round_trip() -> None:
    finding = make(details={"path": "/.git/HEAD", "n": [1, 2]}, now=1000.25)
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["severity"] == {"score": 7.5, "label": "high"}
    assert data["first_seen"].endswith("Z")
    assert Finding.from_dict(data) == finding


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("a*", "abc", True),
        ("*c", "abc", True),
        ("a*c", "ac", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("ab", "ab", True),
        ("ab", "abc", False),
        ("a*a", "a", False),
        ("http://staging*", "http://staging:80", True),
    ],
)
def test_glob_match(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


def test_glob_match_is_linear_on_hostile_input() -> None:
    assert glob_match("*a*a*a*a*a*a*b", "a" * 50_000) is False


# -- the store -------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> FindingStore:
    return FindingStore(tmp_path / "findings.db")


def test_repeats_fold_into_one_row_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    first = FindingStore(path)
    recorded = first.record([make(now=1), make(now=2)], now=2)
    assert recorded.new_ids == {make().id} and recorded.notable_ids == {make().id}
    again = first.record([make(now=3)], now=3)
    assert again.new_ids == frozenset() and again.notable_ids == frozenset()
    first.close()
    reopened = FindingStore(path)
    (only,) = reopened.query()
    assert only.count == 3 and only.first_seen == 1 and only.last_seen == 3
    reopened.close()


def test_queries_filter_and_order_by_severity(store: FindingStore) -> None:
    store.record([make("/a", 3.0), make("/b", 9.5), make("/c", 5.0, type_="OTHER")], now=1000)
    assert [f.subject for f in store.query()] == ["/b", "/c", "/a"]
    assert [f.subject for f in store.query(FindingQuery(min_severity=Severity.MEDIUM))] == [
        "/b",
        "/c",
    ]
    assert [f.subject for f in store.query(FindingQuery(type="OTHER"))] == ["/c"]
    assert store.count(FindingQuery(statuses=frozenset({Status.ACTIVE}))) == 3
    assert [f.subject for f in store.query(FindingQuery(limit=1, offset=1))] == ["/c"]


def test_archive_and_unarchive(store: FindingStore) -> None:
    store.record([make()], now=1000)
    archived = store.set_status(make().id, Status.ARCHIVED, now=1000)
    assert archived.status is Status.ARCHIVED
    store.record([make(now=1001)], now=1001)
    assert store.get(make().id).status is Status.ARCHIVED  # type: ignore[union-attr]
    assert store.set_status(make().id, Status.ACTIVE).status is Status.ACTIVE
    with pytest.raises(KeyError):
        store.set_status("nope", Status.ARCHIVED)


def test_suppression_rules_apply_to_new_and_existing_findings(tmp_path: Path) -> None:
    rule = SuppressionRule(
        name="dev", type="EXPOSED_*", resource="http://app*", max_severity=Severity.HIGH
    )
    plain = FindingStore(tmp_path / "f.db")
    plain.record([make("/x", 7.5), make("/y", 9.5)], now=1000)
    plain.close()
    store = FindingStore(tmp_path / "f.db", suppressions=[rule])
    recorded = store.record([make("/x", 7.5, now=1001), make("/y", 9.5, now=1001)], now=1001)
    by_subject = {f.subject: f for f in recorded.findings}
    assert by_subject["/x"].status is Status.SUPPRESSED
    assert by_subject["/x"].details["suppressed_by"] == "dev"
    assert by_subject["/y"].status is Status.ACTIVE  # critical: above max_severity
    assert recorded.notable_ids == {by_subject["/x"].id}
    store.close()


def test_an_expired_suppression_no_longer_applies(store: FindingStore) -> None:
    store.suppressions = (SuppressionRule(name="until", until=500.0),)
    assert store.record([make()], now=1000).findings[0].status is Status.ACTIVE
    store.suppressions = (SuppressionRule(name="until", until=5000.0),)
    assert store.record([make()], now=1000).findings[0].status is Status.SUPPRESSED


def test_close_missing_closes_only_what_a_completed_check_no_longer_sees(
    store: FindingStore,
) -> None:
    store.record(
        [
            make("/a"),
            make("/b"),
            make("/c", type_="OTHER").__class__(
                **{**make("/c").__dict__, "check": "other_check", "id": "c" * 32}
            ),
        ],
        now=1000,
    )
    closed = store.close_missing("scan", "http://app:80", ["sensitive_paths"], [make("/a").id])
    assert [f.subject for f in closed] == ["/b"]
    statuses = {f.subject: f.status for f in store.query()}
    assert statuses == {"/a": Status.ACTIVE, "/b": Status.CLOSED, "/c": Status.ACTIVE}


def test_retention_drops_old_and_excess_findings(tmp_path: Path) -> None:
    store = FindingStore(tmp_path / "f.db", retention=Retention(max_findings=3, max_age_days=1))
    store.record([make("/old", now=0)], now=0)
    store.record([make(f"/{i}", now=200_000 + i) for i in range(5)], now=200_010)
    assert sorted(f.subject for f in store.query()) == ["/2", "/3", "/4"]
    store.close()


def test_memory_store_and_prefix_lookup() -> None:
    store = FindingStore()
    store.record([make()])
    assert [f.id for f in store.find_prefix(make().id[:6])] == [make().id]
    assert store.find_prefix("%") == []
    store.close()


# -- sinks and the service -------------------------------------------------------------------------
class Hook:
    """A real webhook receiver: fails the first ``failures`` calls with ``status``."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.bodies: list[dict[str, object]] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.failures:
            return web.Response(status=self.status)
        self.bodies.append(await request.json())
        return web.Response(status=204)


async def serve_hook(hook: Hook) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    await runner.cleanup()


async def test_webhook_retries_with_backoff_then_delivers() -> None:
    hook = Hook(failures=2)
    async for url in serve_hook(hook):
        sink = WebhookSink(url, retries=3, backoff=0.01)
        await sink.emit([make()])
        await sink.close()
    assert hook.calls == 3 and sink.attempts == 3
    assert hook.bodies[0]["findings"][0]["id"] == make().id  # type: ignore[index]


async def test_webhook_gives_up_after_its_retries_and_does_not_retry_a_4xx() -> None:
    hook = Hook(failures=100)
    async for url in serve_hook(hook):
        sink = WebhookSink(url, retries=2, backoff=0.01)
        with pytest.raises(Exception, match="gave up after 3 attempts"):
            await sink.emit([make()])
        await sink.close()
    assert hook.calls == 3
    rejecting = Hook(failures=100, status=400)
    async for url in serve_hook(rejecting):
        sink = WebhookSink(url, retries=5, backoff=0.01)
        with pytest.raises(Exception, match="HTTP 400"):
            await sink.emit([make()])
        await sink.close()
    assert rejecting.calls == 1


async def test_service_records_notifies_notable_changes_and_exports_metrics(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    sink = JsonLinesSink(tmp_path / "findings.jsonl", min_severity=Severity.MEDIUM)
    dead_hook = WebhookSink("http://127.0.0.1:9/none", retries=0, timeout=0.5)
    service = FindingsService(
        FindingStore(tmp_path / "f.db"), [sink, dead_hook], FindingsMetrics(registry)
    )
    await service.start()
    await service.publish([make("/a", 7.5), make("/b", 3.0)])
    await service.publish([make("/a", 7.5)])  # a repeat: not notable
    await service.close_missing("scan", "http://app:80", ["sensitive_paths"], [make("/a").id])
    lines = [json.loads(x) for x in (tmp_path / "findings.jsonl").read_text().splitlines()]
    assert [(x["subject"], x["status"]) for x in lines] == [("/a", "active")]
    text = generate_latest(registry).decode()
    assert 'wafproxy_findings_active{check="sensitive_paths",severity="high"} 1.0' in text
    assert 'wafproxy_findings_active{check="sensitive_paths",severity="low"} 0.0' in text
    assert (
        'wafproxy_findings_observed_total{severity="high",type="EXPOSED_SENSITIVE_PATH"} 2.0'
    ) in text
    assert 'wafproxy_findings_sink_errors_total{sink="webhook"} 2.0' in text
    await service.stop()


async def test_offer_never_waits_and_counts_drops(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    service = FindingsService(FindingStore(), metrics=FindingsMetrics(registry), queue_size=2)
    assert service.offer([make()]) == 1  # not started: dropped, counted
    await service.start()
    assert service.offer([make("/1"), make("/2"), make("/3")]) == 1
    for _ in range(100):
        if service.store.count() == 2:
            break
        await asyncio.sleep(0.01)
    assert service.store.count() == 2
    assert "wafproxy_findings_dropped_total 2.0" in generate_latest(registry).decode()
    await service.stop()


def test_label_bound_maps_values_past_the_limit_to_other() -> None:
    bound = LabelBound(limit=2)
    assert [bound(v) for v in ("a", "b", "c", "a")] == ["a", "b", "other", "a"]


# -- the config section ----------------------------------------------------------------------------
def test_findings_section_parses_and_builds_a_service(tmp_path: Path) -> None:
    node = parse(
        """\
store: data/f.db
retention: {max_findings: 50, max_age_days: 7}
file: findings.jsonl
webhook: {url: "http://127.0.0.1:9/x", retries: 1, min_severity: high, headers: {X-Key: k}}
suppressions:
  - {name: staging, type: "INFORMATION_*", max_severity: low, until: "2030-01-01T00:00:00Z"}
""",
        "wafproxy.yaml",
    )
    config = parse_findings(node, tmp_path)
    assert config.store == str(tmp_path / "data/f.db")
    assert config.retention == Retention(50, 7.0)
    assert config.webhook is not None and config.webhook.headers == (("X-Key", "k"),)
    assert config.suppressions[0].max_severity is Severity.LOW
    service = build_service(config, None)
    assert [s.name for s in service.sinks] == ["file", "webhook"]
    service.store.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention: {max_findings: 0}", "expected an integer >= 1"),
        ("webhook: {url: ftp://x}", "expected an http:// or https:// URL"),
        ("suppressions: [{name: x, max_severity: huge}]", "expected one of informational"),
        ("suppressions: [{name: x, until: tomorrow}]", "expected a time like"),
        ("sinks: []", "unknown key 'sinks'"),
    ],
)
def test_findings_section_errors_say_where(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_findings(parse(text, "wafproxy.yaml"), tmp_path)
    assert str(info.value).startswith("wafproxy.yaml:1:")
