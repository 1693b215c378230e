from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.model import ActionKind, RuleMatch, RuleType, Verdict
from wafproxy.decisionlog import DecisionLog, DecisionLogConfig, format_line, format_record
from wafproxy.decisionlog import line as line_format
from wafproxy.decisionlog.http_request import MAX_VALUE_CHARS, REDACTED, TRUNCATED
from wafproxy.request import WafRequest

NOW = 1_700_000_000.123

REQUEST = WafRequest(
    method="POST",
    uri_path="/login",
    query_string="user=bob&next=%2Fhome",
    headers=(("Host", "shop.example"), ("User-Agent", "curl/8"), ("X-Token", "t0k")),
    body=b"password=secret-body-token",
    body_size=4096,
    body_oversize=True,
    client_ip="203.0.113.7",
    http_version="HTTP/1.1",
    request_id="req-1",
)

VERDICT = Verdict(
    action=ActionKind.BLOCK,
    terminating_rule="core",
    terminating_rule_type=RuleType.GROUP,
    terminating_group="core",
    labels=("shop:bad-ua", "rulegroup:core:sqli"),
    matches=(
        RuleMatch("count-ua", ActionKind.COUNT),
        RuleMatch("probe", ActionKind.COUNT, group="bots"),
        RuleMatch("core-count", ActionKind.COUNT, group="core"),
        RuleMatch("core-sqli", ActionKind.BLOCK, group="core"),
    ),
    oversize_fields=("REQUEST_BODY",),
)

ALLOWED = Verdict(action=ActionKind.ALLOW, terminating_rule="Default_Action")
ALLOWED_COUNTED = Verdict(
    action=ActionKind.ALLOW,
    terminating_rule="Default_Action",
    matches=(RuleMatch("count-ua", ActionKind.COUNT),),
)


def fmt(
    req: WafRequest = REQUEST,
    verdict: Verdict = VERDICT,
    config: DecisionLogConfig | None = None,
    country: str | None = None,
    rate_based: Sequence[Mapping[str, object]] = (),
    webacl_id_prefix: str = "",
) -> dict[str, object]:
    """The record, after checking that the line the writer writes says exactly the same."""
    args = dict(
        acl="shop",
        status=403,
        config=config or DecisionLogConfig(),
        country=country,
        rate_based=rate_based,
        now=NOW,
        webacl_id_prefix=webacl_id_prefix,
    )
    record = format_record(req, verdict, **args)  # type: ignore[arg-type]
    line = format_line(req, verdict, **args)  # type: ignore[arg-type]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == record
    return record


def http(record: dict[str, object]) -> dict[str, object]:
    value = record["httpRequest"]
    assert isinstance(value, dict)
    return value


def header_values(record: dict[str, object]) -> dict[str, str]:
    headers = http(record)["headers"]
    assert isinstance(headers, list)
    return {h["name"]: h["value"] for h in headers}


def test_record_has_the_aws_waf_log_fields() -> None:
    rate = [{"rateBasedRuleName": "per-ip", "limitKey": "IP", "maxRateAllowed": 100}]
    record = fmt(country="DE", rate_based=rate, webacl_id_prefix="wafproxy:webacl/")
    assert record == {
        "timestamp": 1_700_000_000_123,
        "formatVersion": 1,
        "webaclId": "wafproxy:webacl/shop",
        "terminatingRuleId": "core",
        "terminatingRuleType": "GROUP",
        "action": "BLOCK",
        "terminatingRuleMatchDetails": [],
        "httpSourceName": "wafproxy",
        "httpSourceId": "shop",
        "ruleGroupList": [
            {
                "ruleGroupId": "bots",
                "terminatingRule": None,
                "nonTerminatingMatchingRules": [{"ruleId": "probe", "action": "COUNT"}],
                "excludedRules": None,
            },
            {
                "ruleGroupId": "core",
                "terminatingRule": {"ruleId": "core-sqli", "action": "BLOCK"},
                "nonTerminatingMatchingRules": [{"ruleId": "core-count", "action": "COUNT"}],
                "excludedRules": None,
            },
        ],
        "rateBasedRuleList": rate,
        "nonTerminatingMatchingRules": [{"ruleId": "count-ua", "action": "COUNT"}],
        "requestHeadersInserted": None,
        "responseCodeSent": 403,
        "labels": [{"name": "shop:bad-ua"}, {"name": "rulegroup:core:sqli"}],
        "oversizeFields": ["REQUEST_BODY"],
        "requestBodySize": 4096,
        "requestBodySizeInspectedByWAF": len(REQUEST.body),
        "httpRequest": {
            "clientIp": "203.0.113.7",
            "country": "DE",
            "headers": [
                {"name": "Host", "value": "shop.example"},
                {"name": "User-Agent", "value": "curl/8"},
                {"name": "X-Token", "value": "t0k"},
            ],
            "uri": "/login",
            "args": "user=bob&next=%2Fhome",
            "httpVersion": "HTTP/1.1",
            "httpMethod": "POST",
            "requestId": "req-1",
        },
    }


def test_allow_with_inserted_headers_and_unknown_country() -> None:
    verdict = Verdict(
        action=ActionKind.ALLOW,
        terminating_rule="Default_Action",
        insert_headers=(("x-wafproxy-suspect", "1"),),
    )
    record = fmt(verdict=verdict)
    assert record["action"] == "ALLOW"
    assert record["terminatingRuleType"] == "REGULAR"
    assert record["ruleGroupList"] == []
    assert record["requestHeadersInserted"] == [{"name": "x-wafproxy-suspect", "value": "1"}]
    assert http(record)["country"] == "-"


def test_body_is_never_logged() -> None:
    assert "secret-body-token" not in json.dumps(fmt())


def test_authorization_and_cookie_redacted_by_default() -> None:
    req = WafRequest(
        "GET",
        "/",
        headers=(("AUTHORIZATION", "Bearer abc"), ("Cookie", "session=s3cr3t"), ("Accept", "*/*")),
    )
    assert header_values(fmt(req)) == {
        "AUTHORIZATION": REDACTED,
        "Cookie": REDACTED,
        "Accept": "*/*",
    }


def test_chosen_cookies_redacted_inside_cookie_header() -> None:
    config = DecisionLogConfig(redact_headers=("authorization",), redact_cookies=("Session",))
    req = WafRequest("GET", "/", headers=(("cookie", "theme=dark; session=s3cr3t;lang=en"),))
    assert header_values(fmt(req, config=config)) == {
        "cookie": f"theme=dark; session={REDACTED};lang=en"
    }


def test_chosen_query_args_redacted_even_when_encoded_or_cased() -> None:
    config = DecisionLogConfig(redact_query_args=("password", "token"))
    query = "user=bob&password=hunter2&PassWord=x&pass%77ord=y&token&next=/"
    req = WafRequest("GET", "/", query_string=query)
    assert http(fmt(req, config=config))["args"] == (
        f"user=bob&password={REDACTED}&PassWord={REDACTED}&pass%77ord={REDACTED}&token&next=/"
    )


def test_long_values_are_truncated_and_marked() -> None:
    req = WafRequest(
        "GET",
        "/" + "p" * 100_000,
        query_string="q=" + "a" * 100_000,
        headers=(("X-Big", "v" * 100_000),),
    )
    record = fmt(req)
    for value in (header_values(record)["X-Big"], http(record)["uri"], http(record)["args"]):
        assert isinstance(value, str)
        assert value.endswith(TRUNCATED)
        assert len(value) == MAX_VALUE_CHARS + len(TRUNCATED)


def test_many_headers_cannot_make_a_huge_line() -> None:
    headers = tuple((f"X-H{i}", "v" * 8000) for i in range(200))
    record = fmt(WafRequest("GET", "/", headers=headers))
    assert len(json.dumps(record)) < 64 * 1024
    logged = http(record)["headers"]
    assert isinstance(logged, list)
    assert logged[-1]["name"] == TRUNCATED
    assert "more headers not logged" in logged[-1]["value"]


def test_action_filter() -> None:
    only_block = DecisionLogConfig(actions=frozenset({"BLOCK"}))
    assert only_block.wants(VERDICT)
    assert not only_block.wants(ALLOWED_COUNTED)
    only_count = DecisionLogConfig(actions=frozenset({"COUNT"}))
    assert only_count.wants(ALLOWED_COUNTED)
    assert not only_count.wants(ALLOWED)
    assert not only_count.wants(Verdict(ActionKind.BLOCK, "r"))
    assert DecisionLogConfig().wants(ALLOWED)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def request(n: int) -> WafRequest:
    return WafRequest("GET", f"/item/{n}", request_id=f"req-{n}")


def test_filtered_requests_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    config = DecisionLogConfig(destination=str(path), actions=frozenset({"BLOCK"}))
    log = DecisionLog(config)
    log.record(request(1), ALLOWED, acl="shop", status=200)
    log.record(request(2), VERDICT, acl="shop", status=403)
    log.close()
    assert [http(r)["requestId"] for r in read_lines(path)] == ["req-2"]


def test_close_flushes_everything_recorded_before(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(DecisionLogConfig(destination=str(path)), webacl_id_prefix="arn:")
    for n in range(2000):
        log.record(request(n), ALLOWED, acl="shop", status=200, now=NOW)
    log.close()
    log.close()  # idempotent
    log.record(request(9999), ALLOWED, acl="shop", status=200)  # ignored after close
    lines = read_lines(path)
    assert [http(r)["requestId"] for r in lines] == [f"req-{n}" for n in range(2000)]
    assert lines[0]["webaclId"] == "arn:shop"


def test_file_rotates_and_every_line_is_json(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    config = DecisionLogConfig(destination=str(path), max_bytes=4000, backup_count=3)
    log = DecisionLog(config)
    for n in range(100):
        log.record(request(n), ALLOWED, acl="shop", status=200)
    log.close()
    files = [tmp_path / "decisions.log.3", tmp_path / "decisions.log.2"]
    files += [tmp_path / "decisions.log.1", path]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    ids: list[object] = []
    for file in files:
        assert 0 < file.stat().st_size <= 4000
        ids += [http(r)["requestId"] for r in read_lines(file)]
    # the oldest lines rotated away; what is kept is the newest run, in order
    assert ids == [f"req-{n}" for n in range(100 - len(ids), 100)]


def test_backup_count_zero_truncates(tmp_path: Path) -> None:
    path = tmp_path / "decisions.log"
    log = DecisionLog(DecisionLogConfig(destination=str(path), max_bytes=2000, backup_count=0))
    for n in range(50):
        log.record(request(n), ALLOWED, acl="shop", status=200)
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.log"]
    assert 0 < path.stat().st_size <= 2000
    assert http(read_lines(path)[-1])["requestId"] == "req-49"


def test_stdout_destination(capsys: pytest.CaptureFixture[str]) -> None:
    log = DecisionLog(DecisionLogConfig())
    log.record(request(1), VERDICT, acl="shop", status=403)
    log.close()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["action"] == "BLOCK"


def test_off_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    log = DecisionLog(DecisionLogConfig(destination="off"))
    log.record(request(1), VERDICT, acl="shop", status=403)
    log.close()
    assert capsys.readouterr().out == ""


def test_full_queue_drops_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=drain, args=(read_fd, received))
    drops: list[int] = []
    total = 500  # ~1 MB of lines against a 64 KiB pipe
    with open(write_fd, "w") as stalled:  # nobody reads yet: the writer thread blocks on it
        monkeypatch.setattr(sys, "stdout", stalled)
        log = DecisionLog(DecisionLogConfig(queue_size=4), on_drop=lambda: drops.append(1))
        big = WafRequest("GET", "/", headers=(("X-Pad", "p" * 2000),))
        started = time.monotonic()
        try:
            for _ in range(total):
                log.record(big, ALLOWED, acl="shop", status=200)
            elapsed = time.monotonic() - started
            dropped_while_stalled = len(drops)
        finally:  # unblock the writer whatever happened, so the test cannot hang
            reader.start()
            log.close()
    reader.join(10)
    assert elapsed < 2.0
    assert dropped_while_stalled > 0
    written = received.decode().splitlines()
    assert all(json.loads(line)["action"] == "ALLOW" for line in written)
    assert len(written) + len(drops) == total


def drain(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into += chunk
    os.close(fd)


def test_write_failures_are_counted_as_drops(tmp_path: Path) -> None:
    drops: list[int] = []
    log = DecisionLog(DecisionLogConfig(destination=str(tmp_path)), on_drop=lambda: drops.append(1))
    for n in range(3):
        log.record(request(n), ALLOWED, acl="shop", status=200)
    log.close()
    assert len(drops) == 3


def test_undecodable_request_bytes_still_make_a_json_line() -> None:
    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    req = replace(REQUEST, headers=(("User-Agent", raw),), uri_path="/" + raw)
    record = fmt(req)  # the line is JSON and says the same (fmt checks)
    assert header_values(record)["User-Agent"] == raw


def test_headers_logged_again_come_out_the_same_and_redacted_values_are_not_kept() -> None:
    config = DecisionLogConfig()
    first = WafRequest("GET", "/", headers=(("Accept", "*/*"), ("Cookie", "session=one")))
    again = WafRequest("GET", "/", headers=(("Accept", "*/*"), ("Cookie", "session=two")))
    other = WafRequest("GET", "/", headers=(("Accept", "text/html"),))
    assert header_values(fmt(first, config=config)) == {"Accept": "*/*", "Cookie": REDACTED}
    assert header_values(fmt(again, config=config)) == {"Accept": "*/*", "Cookie": REDACTED}
    assert header_values(fmt(other, config=config)) == {"Accept": "text/html"}
    kept = json.dumps([list(k) for k in config.redaction.header_json])
    assert "session=" not in kept and "Accept" in kept


def test_a_config_that_redacts_more_does_not_reuse_what_an_earlier_one_logged() -> None:
    req = WafRequest("GET", "/", headers=(("X-Token", "t0k"),))
    assert header_values(fmt(req, config=DecisionLogConfig())) == {"X-Token": "t0k"}
    stricter = DecisionLogConfig(redact_headers=("x-token",))
    assert header_values(fmt(req, config=stricter)) == {"X-Token": REDACTED}


def test_one_verdict_object_under_two_web_acl_ids() -> None:
    for prefix in ("arn:one/", "arn:two/", "arn:one/"):
        assert fmt(verdict=ALLOWED, webacl_id_prefix=prefix)["webaclId"] == prefix + "shop"


def test_the_verdict_part_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_format, "VERDICT_CACHE_SIZE", 3)
    for n in range(10):
        fmt(verdict=replace(VERDICT, terminating_rule=f"rule-{n}"))
        assert len(line_format._verdict_json) <= 3


# -- the line's one-encode path says what the record says, whatever the request's text -----------
TRICKY = st.lists(
    st.sampled_from(['"', "\\", ",", '","', '\\"', "a", "é", "\u2028", "\x00", "\udcff", "%", "s"]),
    max_size=8,
).map("".join)
ANY_TEXT = st.one_of(TRICKY, st.text(max_size=12))
HEADER_PAIRS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["Cookie", "AUTHORIZATION", "Host", "x"]), ANY_TEXT), ANY_TEXT
    ),
    max_size=6,
).map(tuple)


SHARED = DecisionLogConfig()  # one config across examples: repeated headers come from its cache


@settings(max_examples=300, deadline=None)
@given(headers=HEADER_PAIRS, uri=ANY_TEXT, query=ANY_TEXT, ip=ANY_TEXT, rid=ANY_TEXT)
def test_line_matches_the_record_for_any_header_text(
    headers: tuple[tuple[str, str], ...], uri: str, query: str, ip: str, rid: str
) -> None:
    req = replace(
        REQUEST, headers=headers, uri_path=uri, query_string=query, client_ip=ip, request_id=rid
    )
    record = fmt(req=req, verdict=ALLOWED, config=SHARED)  # fmt: json.loads(line) == record
    assert len(http(record)["headers"]) == len(headers)  # type: ignore[arg-type]
