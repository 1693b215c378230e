"""rate_based: AWS semantics (scope-down, missing components, labels), every aggregation key,
compile errors, and the sliding window's accuracy under a controllable clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind, RuleType, Verdict, WebAcl
from wafproxy.acl.ratelimit import decode_key, rate_statements
from wafproxy.request import WafRequest
from wafproxy.state.config import StateConfig
from wafproxy.state.memory import MemoryState
from wafproxy.state.metrics import StateMetrics

if TYPE_CHECKING:
    from conftest import CompileAcl, CompileErrors

T0 = 1_700_000_000.37  # not on a second boundary


@pytest.fixture
def state(tmp_path: Path) -> MemoryState:
    return MemoryState(StateConfig(), StateMetrics(), directory=tmp_path / "state")


def acl_text(statement: str, *, action: str = "block", before: str = "", after: str = "") -> str:
    return f"""\
web_acl: t
default_action: allow
rules:
{before}  - name: limit
    priority: 10
    action: {action}
    statement:
      {statement}
{after}"""


def get(
    path: str = "/",
    *,
    ip: str = "192.0.2.1",
    headers: Sequence[tuple[str, str]] = (),
    query: str = "",
    method: str = "GET",
) -> WafRequest:
    return WafRequest(method, path, query_string=query, headers=tuple(headers), client_ip=ip)


def send(
    acl: WebAcl, state: MemoryState, req: WafRequest, times: int, now: float = T0
) -> list[str]:
    return [
        evaluate(acl, req, now=now, rate=state, ip_sets=state.ip_sets(now)).action.value
        for _ in range(times)
    ]


def blocked_after(acl: WebAcl, state: MemoryState, req: WafRequest, limit: int) -> None:
    """The first ``limit`` requests pass, the next ones are blocked."""
    assert send(acl, state, req, limit + 2) == ["allow"] * limit + ["block"] * 2


def never_counted(acl: WebAcl, state: MemoryState, req: WafRequest, times: int = 10) -> None:
    assert send(acl, state, req, times) == ["allow"] * times


# -- the basics ---------------------------------------------------------------------------------
def test_the_limit_plus_one_request_is_blocked_and_logged(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    acl = compile_acl(acl_text("rate_based: {limit: 3, evaluation_window_sec: 60}"))
    blocked_after(acl, state, get(), 3)
    never_counted(acl, state, get(ip="192.0.2.2"), 3)
    verdict = evaluate(acl, get(), now=T0, rate=state)
    assert (verdict.terminating_rule, verdict.terminating_rule_type) == (
        "limit",
        RuleType.RATE_BASED,
    )
    assert [m.log_entry() for m in verdict.rate_based] == [
        {
            "rateBasedRuleId": "t//limit",
            "rateBasedRuleName": "limit",
            "limitKey": "IP",
            "maxRateAllowed": 3,
            "evaluationWindowSec": "60",
        }
    ]


def test_without_a_rate_view_nothing_is_counted(compile_acl: CompileAcl) -> None:
    acl = compile_acl(acl_text("rate_based: {limit: 1}"))
    assert {evaluate(acl, get()).action for _ in range(5)} == {ActionKind.ALLOW}


def test_ipv4_mapped_and_plain_addresses_count_together(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    acl = compile_acl(acl_text("rate_based: {limit: 2}"))
    assert send(acl, state, get(ip="::ffff:192.0.2.9"), 2) == ["allow", "allow"]
    assert send(acl, state, get(ip="192.0.2.9"), 1) == ["block"]


def test_memory_state_with_workers_enforces_its_share(
    compile_acl: CompileAcl, tmp_path: Path
) -> None:
    state = MemoryState(StateConfig(), StateMetrics(), workers=4, directory=tmp_path)
    acl = compile_acl(acl_text("rate_based: {limit: 10}"))
    blocked_after(acl, state, get(), 3)  # ceil(10 / 4)


def test_a_group_rule_counts_separately_in_each_web_acl(tmp_path: Path, state: MemoryState) -> None:
    from wafproxy.acl.compile import load_rule_files

    group = """\
rule_groups:
  limits:
    rules:
      - name: per-ip
        priority: 1
        action: block
        statement: {rate_based: {limit: 2}}
"""
    (tmp_path / "g.yaml").write_text(group)
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"web_acl: {name}\ndefault_action: allow\nrules:\n"
            "  - {name: g, priority: 1, override_action: none,\n"
            "     statement: {rule_group: {ref: limits}}}\n"
        )
    acls = load_rule_files([tmp_path / "g.yaml", tmp_path / "a.yaml", tmp_path / "b.yaml"]).acls
    assert [s.rule.id for s in rate_statements(acls["a"])] == ["a/limits/per-ip"]
    assert send(acls["a"], state, get(), 3) == ["allow", "allow", "block"]
    assert send(acls["b"], state, get(), 2) == ["allow", "allow"]


# -- aggregation keys and missing components -----------------------------------------------------
def custom(keys: str, extra: str = "") -> str:
    return f"rate_based: {{limit: 2, aggregate_key_type: custom_keys, custom_keys: {keys}{extra}}}"


def test_header_key_with_transforms_and_a_missing_header(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    acl = compile_acl(acl_text(custom("[{header: {name: X-Api-Key, transforms: [lowercase]}}]")))
    assert send(acl, state, get(headers=[("x-api-key", "ABC")]), 2) == ["allow", "allow"]
    assert send(acl, state, get(headers=[("X-API-KEY", "abc")]), 1) == ["block"]
    never_counted(acl, state, get(headers=[("x-api-key", "other")]), 2)
    never_counted(acl, state, get())  # no header: not counted, never limited


def test_cookie_key_matches_the_name_exactly(compile_acl: CompileAcl, state: MemoryState) -> None:
    acl = compile_acl(acl_text(custom("[{cookie: {name: session}}]")))
    blocked_after(acl, state, get(headers=[("cookie", "a=1; session=s1")]), 2)
    never_counted(acl, state, get(headers=[("cookie", "Session=s1")]))
    never_counted(acl, state, get(headers=[("cookie", "a=1")]))


def test_query_argument_key(compile_acl: CompileAcl, state: MemoryState) -> None:
    acl = compile_acl(acl_text(custom("[{query_argument: {name: user}}]")))
    blocked_after(acl, state, get(query="user=alice&x=1"), 2)
    never_counted(acl, state, get(query="user=bob"), 2)
    never_counted(acl, state, get(query="x=alice"))


def test_query_string_key_and_an_empty_query(compile_acl: CompileAcl, state: MemoryState) -> None:
    acl = compile_acl(acl_text(custom("[{query_string: {transforms: [url_decode]}}]")))
    assert send(acl, state, get(query="q=a%20b"), 2) == ["allow", "allow"]
    assert send(acl, state, get(query="q=a b"), 1) == ["block"]
    never_counted(acl, state, get())


def test_uri_path_and_method_keys_combine(compile_acl: CompileAcl, state: MemoryState) -> None:
    acl = compile_acl(acl_text(custom("[{uri_path: {transforms: [lowercase]}}, http_method]")))
    assert send(acl, state, get("/Login"), 2) == ["allow", "allow"]
    assert send(acl, state, get("/login", method="POST"), 2) == ["allow", "allow"]
    assert send(acl, state, get("/LOGIN"), 1) == ["block"]
    verdict = evaluate(acl, get("/login", method="POST"), now=T0, rate=state)
    assert verdict.rate_based[0].log_entry()["customValues"] == [
        {"key": "URI_PATH", "name": "", "value": "/login"},
        {"key": "HTTP_METHOD", "name": "", "value": "POST"},
    ]
    statement = next(rate_statements(acl))
    assert decode_key(statement, verdict.rate_based[0].key) == [
        {"type": "URI_PATH", "name": "", "value": "/login"},
        {"type": "HTTP_METHOD", "name": "", "value": "POST"},
    ]


def test_ip_needs_another_key_and_combines_with_it(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    acl = compile_acl(acl_text(custom("[ip, {header: {name: user-agent}}]")))
    ua = [("user-agent", "bot")]
    blocked_after(acl, state, get(headers=ua), 2)
    never_counted(acl, state, get(headers=ua, ip="192.0.2.99"), 2)
    never_counted(acl, state, get())


def test_forwarded_ip_custom_key(compile_acl: CompileAcl, state: MemoryState) -> None:
    fwd = ", forwarded_ip_config: {header_name: X-Client, fallback_behavior: no_match}"
    acl = compile_acl(acl_text(custom("[forwarded_ip, http_method]", fwd)))
    blocked_after(acl, state, get(headers=[("x-client", "203.0.113.5, 10.0.0.1")]), 2)
    never_counted(acl, state, get(headers=[("x-client", "203.0.113.6")]), 2)
    never_counted(acl, state, get())  # no header: the rule does not apply
    never_counted(acl, state, get(headers=[("x-client", "junk")]))  # fallback no_match


def test_forwarded_ip_aggregation_and_fallback_match(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    acl = compile_acl(
        acl_text(
            "rate_based: {limit: 2, aggregate_key_type: forwarded_ip, forwarded_ip_config: "
            "{header_name: X-Forwarded-For, fallback_behavior: match}}"
        )
    )
    blocked_after(acl, state, get(headers=[("x-forwarded-for", "203.0.113.5")]), 2)
    never_counted(acl, state, get())
    assert send(acl, state, get(headers=[("x-forwarded-for", "not-an-ip")]), 1) == ["block"]


def test_constant_key_counts_everything_in_scope(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    scope = "{byte_match: {field: uri_path, constraint: starts_with, value: /api}}"
    acl = compile_acl(
        acl_text(
            f"rate_based: {{limit: 3, aggregate_key_type: constant, scope_down_statement: {scope}}}"
        )
    )
    assert send(acl, state, get("/api/a", ip="192.0.2.1"), 2) == ["allow", "allow"]
    assert send(acl, state, get("/api/b", ip="192.0.2.2"), 1) == ["allow"]
    assert send(acl, state, get("/api/c", ip="192.0.2.3"), 1) == ["block"]
    never_counted(acl, state, get("/other"))


def test_label_namespace_key_uses_labels_of_earlier_rules(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    before = """\
  - name: tag
    priority: 1
    action: count
    rule_labels: [client:mobile]
    statement:
      byte_match: {field: {single_header: {name: user-agent}}, constraint: contains, value: Mobile}
"""
    acl = compile_acl(
        acl_text(custom("[{label_namespace: {namespace: 'client:'}}]"), before=before)
    )
    mobile = get(headers=[("user-agent", "Mobile Safari")])
    blocked_after(acl, state, mobile, 2)
    never_counted(acl, state, get(headers=[("user-agent", "Desktop")]))
    key = evaluate(acl, mobile, now=T0, rate=state).rate_based[0].key
    assert key == "webacl:t:client:mobile"


def test_long_components_are_stored_hashed(compile_acl: CompileAcl, state: MemoryState) -> None:
    acl = compile_acl(acl_text(custom("[{header: {name: x-token}}]")))
    long = [("x-token", "v" * 5000)]
    blocked_after(acl, state, get(headers=long), 2)
    key = evaluate(acl, get(headers=long), now=T0, rate=state).rate_based[0].key
    assert key.startswith("sha256:") and len(key) == 39


# -- scope-down statements and labels ------------------------------------------------------------
def test_only_requests_in_scope_are_counted(compile_acl: CompileAcl, state: MemoryState) -> None:
    scope = "{byte_match: {field: uri_path, constraint: exactly, value: /login}}"
    acl = compile_acl(acl_text(f"rate_based: {{limit: 2, scope_down_statement: {scope}}}"))
    never_counted(acl, state, get("/home"), 5)
    assert send(acl, state, get("/login"), 3) == ["allow", "allow", "block"]
    assert send(acl, state, get("/home"), 1) == ["allow"]  # over the limit, but not in scope


def test_scope_down_sees_labels_of_earlier_rules(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    before = """\
  - name: suspicious
    priority: 1
    action: count
    rule_labels: [suspicious]
    statement: {byte_match: {field: query_string, constraint: contains, value: debug}}
"""
    scope = "{label_match: {scope: label, key: suspicious}}"
    acl = compile_acl(
        acl_text(f"rate_based: {{limit: 1, scope_down_statement: {scope}}}", before=before)
    )
    never_counted(acl, state, get(query="a=1"), 3)
    assert send(acl, state, get(query="debug=1"), 2) == ["allow", "block"]


def test_a_counting_rate_rule_labels_requests_over_the_limit_for_later_rules(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    after = """\
  - name: block-flooders
    priority: 20
    action: block
    statement: {label_match: {scope: label, key: flood}}
"""
    text = acl_text("rate_based: {limit: 2}", action="count", after=after).replace(
        "    priority: 10\n", "    priority: 10\n    rule_labels: [flood]\n"
    )
    acl = compile_acl(text)
    verdicts: list[Verdict] = [evaluate(acl, get(), now=T0, rate=state) for _ in range(3)]
    assert [v.terminating_rule for v in verdicts] == [
        "Default_Action",
        "Default_Action",
        "block-flooders",
    ]
    assert verdicts[2].labels == ("webacl:t:flood",)
    assert [m.rule for m in verdicts[2].matches] == ["limit", "block-flooders"]


def test_an_earlier_terminating_rule_keeps_requests_from_being_counted(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    before = """\
  - name: allow-office
    priority: 1
    action: allow
    statement: {byte_match: {field: uri_path, constraint: starts_with, value: /office}}
"""
    acl = compile_acl(acl_text("rate_based: {limit: 2}", before=before))
    never_counted(acl, state, get("/office"), 5)
    assert send(acl, state, get("/"), 3) == ["allow", "allow", "block"]


# -- compile errors -------------------------------------------------------------------------------
ERRORS = [
    ("rate_based: {limit: 0}", "8:27: rules[0].statement.rate_based.limit: expected an integer "
     "from 1 to 2000000000; got 0"),
    ("rate_based: {limit: 5, evaluation_window_sec: 30}", "8:53: rules[0].statement.rate_based."
     "evaluation_window_sec: expected one of 60, 120, 300, 600 (seconds); got 30"),
    ("rate_based: {limit: 5, aggregate_key_type: IP}", "aggregate_key_type: expected one of "
     "ip, forwarded_ip, constant, custom_keys; got 'IP'"),
    ("rate_based: {limit: 5, aggregate_key_type: constant}",
     "needs a scope_down_statement"),
    ("rate_based: {limit: 5, aggregate_key_type: forwarded_ip}",
     "a forwarded_ip aggregation key needs forwarded_ip_config"),
    ("rate_based: {limit: 5, forwarded_ip_config: {header_name: X, fallback_behavior: match}}",
     "forwarded_ip_config is only used with"),
    ("rate_based: {limit: 5, aggregate_key_type: custom_keys}",
     "missing required key 'custom_keys'"),
    ("rate_based: {limit: 5, custom_keys: [http_method]}",
     "custom_keys needs aggregate_key_type: custom_keys"),
    (custom("[ip]"), "an ip or forwarded_ip custom key needs at least one other key"),
    (custom("[http_method, http_method]"), "this custom key is listed twice"),
    (custom("[ip, http_method, uri_path, query_string, {header: {name: a}}, "
            "{cookie: {name: b}}]"), "expected a list of 1 to 5 custom keys"),
    (custom("[{headers: {name: a}}]"), "unknown custom key 'headers'; expected one of header, "
     "cookie, query_argument, query_string, uri_path, http_method, label_namespace, ip, "
     "forwarded_ip; did you mean 'header'?"),
    (custom("[{header: {}}]"), "missing required key 'name'"),
    (custom("[{label_namespace: {namespace: client}}]"),
     "expected a label namespace of letters, digits, '_', '-' and ':' ending in ':'"),
    (custom("[{header: {name: a, transforms: [upper]}}]"), "unknown text transformation 'upper'"),
    ("rate_based: {limit: 5, scope_down_statement: {rate_based: {limit: 1}}}",
     "rate_based can only be the top-level statement of a rule"),
    ("not: {rate_based: {limit: 1}}", "rate_based can only be the top-level statement of a rule"),
]  # fmt: skip


@pytest.mark.parametrize(("statement", "message"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_compile_errors_say_where(
    compile_errors: CompileErrors, statement: str, message: str
) -> None:
    errors = compile_errors(acl_text(statement))
    assert len(errors) == 1, errors
    assert errors[0].startswith("rules.yaml:8:"), errors
    assert message in errors[0], errors


def test_capacity_counts_the_scope_down_and_custom_keys(compile_acl: CompileAcl) -> None:
    scope = "{byte_match: {field: uri_path, constraint: exactly, value: /login}}"
    acl = compile_acl(
        acl_text(
            custom(
                "[{header: {name: a, transforms: [lowercase]}}, http_method]",
                f", scope_down_statement: {scope}",
            )
        )
    )
    assert acl.rules[0].capacity == 2 + 1 + 30 + 10 + 30


# -- accuracy under a controllable clock ---------------------------------------------------------
def arrivals(start: float, rate: float, seconds: float) -> list[float]:
    count = int(rate * seconds)
    return [start + i / rate for i in range(count)]


def replay(acl: WebAcl, state: MemoryState, times: Sequence[float]) -> list[bool]:
    req = get()
    return [evaluate(acl, req, now=t, rate=state).blocked for t in times]


def in_window(times: Sequence[float], index: int, span: float) -> int:
    """Requests in (t - span, t] for the request at ``index`` (itself included)."""
    t = times[index]
    return sum(1 for u in times[: index + 1] if u > t - span)


def check_exact_to_one_second(
    times: Sequence[float], blocked: Sequence[bool], limit: int, window: int
) -> None:
    """Never blocked when the last ``window`` seconds hold at most ``limit`` requests; always
    blocked when the last ``window - 1`` seconds hold more."""
    for i, is_blocked in enumerate(blocked):
        if is_blocked:
            assert in_window(times, i, window) > limit, f"blocked too early at {times[i] - T0}"
        else:
            assert in_window(times, i, window - 1) <= limit, f"let through at {times[i] - T0}"


@pytest.mark.parametrize(("limit", "window"), [(100, 60), (50, 120)])
def test_a_client_at_0_9_times_the_limit_is_never_blocked(
    compile_acl: CompileAcl, state: MemoryState, limit: int, window: int
) -> None:
    acl = compile_acl(acl_text(f"rate_based: {{limit: {limit}, evaluation_window_sec: {window}}}"))
    times = arrivals(T0, 0.9 * limit / window, 4 * window)
    assert not any(replay(acl, state, times))


@pytest.mark.parametrize(("limit", "window"), [(100, 60), (50, 120)])
def test_a_client_at_twice_the_limit_is_blocked_within_a_second_and_released_later(
    compile_acl: CompileAcl, state: MemoryState, limit: int, window: int
) -> None:
    acl = compile_acl(acl_text(f"rate_based: {{limit: {limit}, evaluation_window_sec: {window}}}"))
    fast = arrivals(T0, 2 * limit / window, 2 * window)
    slow = arrivals(fast[-1] + 1, 0.5 * limit / window, 3 * window)
    times = fast + slow
    blocked = replay(acl, state, times)
    check_exact_to_one_second(times, blocked, limit, window)
    crossing = next(t for i, t in enumerate(times) if in_window(times, i, window) > limit)
    first_block = times[blocked.index(True)]
    assert crossing <= first_block <= crossing + 1.0
    assert all(blocked[i] for i, t in enumerate(fast) if t > first_block)  # it stays blocked
    released = next(t for i, t in enumerate(times) if t > fast[-1] and not blocked[i])
    slow_rate = [i for i, t in enumerate(times) if t > fast[-1]]
    fell = next(times[i] for i in slow_rate if in_window(times, i, window) <= limit)
    fell_nearly = next(times[i] for i in slow_rate if in_window(times, i, window - 1) <= limit)
    assert fell_nearly <= released <= fell  # released once the window count is under the limit
    assert not any(blocked[i] for i, t in enumerate(times) if t > released)


def test_random_arrivals_are_judged_exact_to_within_one_second(
    compile_acl: CompileAcl, state: MemoryState
) -> None:
    import random

    rng = random.Random(7)
    acl = compile_acl(acl_text("rate_based: {limit: 40, evaluation_window_sec: 60}"))
    times: list[float] = []
    t = T0
    for _ in range(1500):
        t += rng.expovariate(rng.choice([0.3, 0.8, 2.0]))
        times.append(t)
    check_exact_to_one_second(times, replay(acl, state, times), 40, 60)
