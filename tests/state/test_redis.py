"""The Redis backend against a real redis-server: one limit across processes in one round trip
per request, no double counting, on_state_error while Redis is down and recovery after it comes
back, and dynamic IP sets shared, persistent and expiring."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import RateRule, Verdict, WebAcl
from wafproxy.request import WafRequest
from wafproxy.state.config import Backend, OnStateError, RedisConfig, StateConfig
from wafproxy.state.metrics import StateMetrics
from wafproxy.state.redis import RedisState

if TYPE_CHECKING:
    from conftest import RedisServer

pytestmark = pytest.mark.integration
NOW = float(int(time.time())) + 0.5
"""The clock the tests pass in: controlled, but near the real one (entry expiry on load, and
Redis's own key expiry, use real time)."""
ACL = """\
web_acl: t
default_action: allow
rules:
  - name: per-ip
    priority: 1
    action: block
    statement: {rate_based: {limit: 10, evaluation_window_sec: 60}}
"""
MakeState = Callable[..., "asyncio.Future[RedisState]"]


@pytest.fixture
def acl(tmp_path: Path) -> WebAcl:
    path = tmp_path / "rules.yaml"
    path.write_text(ACL)
    return load_rule_files([path]).acls["t"]


@pytest.fixture
async def make_state(redis_server: RedisServer) -> AsyncIterator[Callable[..., object]]:
    started: list[RedisState] = []

    async def make(
        on_error: OnStateError = OnStateError.ALLOW, registry: CollectorRegistry | None = None
    ) -> RedisState:
        config = StateConfig(
            backend=Backend.REDIS,
            on_state_error=on_error,
            redis=RedisConfig(url=redis_server.url, timeout=2.0),
        )
        state = RedisState(config, StateMetrics(registry))
        await state.start()
        started.append(state)
        return state

    yield make
    for state in started:
        await state.close()


async def decide(acl: WebAcl, state: RedisState, req: WafRequest, now: float) -> Verdict:
    """What the proxy does: evaluate, settle in one round trip, judge again if it changed."""
    view = state.rate_view(now)
    verdict = evaluate(acl, req, now=now, rate=view, ip_sets=state.ip_sets(now))
    if await state.settle(view, now):
        verdict = evaluate(acl, req, now=now, rate=view, ip_sets=state.ip_sets(now))
        await state.settle(view, now)
    return verdict


def client(ip: str = "192.0.2.1") -> WafRequest:
    return WafRequest("GET", "/", client_ip=ip)


async def test_two_processes_share_one_exact_limit(
    acl: WebAcl, make_state: Callable[..., object]
) -> None:
    one: RedisState = await make_state()  # type: ignore[misc]
    two: RedisState = await make_state()  # type: ignore[misc]
    verdicts = []
    for i in range(30):
        state = one if i % 2 else two
        verdicts.append(await decide(acl, state, client(), NOW + i * 0.1))
    assert [v.blocked for v in verdicts] == [False] * 10 + [True] * 20
    assert verdicts[10].terminating_rule == "per-ip"
    keys = await one.over_limit(acl.rules[0].statement.rule, NOW + 3)  # type: ignore[union-attr]
    assert [(k.key, k.count) for k in keys] == [("192.0.2.1", 30)]  # counted once each


async def test_concurrent_requests_from_many_processes_stay_within_the_limit(
    acl: WebAcl, make_state: Callable[..., object]
) -> None:
    states = [await make_state() for _ in range(4)]  # type: ignore[misc]
    verdicts = await asyncio.gather(
        *(decide(acl, states[i % 4], client(), NOW) for i in range(200))  # type: ignore[arg-type]
    )
    assert sum(not v.blocked for v in verdicts) == 10


async def test_the_window_slides_with_the_given_clock(
    acl: WebAcl, make_state: Callable[..., object]
) -> None:
    state: RedisState = await make_state()  # type: ignore[misc]
    for i in range(11):
        await decide(acl, state, client(), NOW + i)
    assert (await decide(acl, state, client(), NOW + 11)).blocked
    assert not (await decide(acl, state, client(), NOW + 72)).blocked  # the first 12 left


async def test_keys_carrying_undecodable_request_bytes(
    tmp_path: Path, make_state: Callable[..., object]
) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        ACL.replace(
            "{limit: 10, evaluation_window_sec: 60}",
            "{limit: 1, aggregate_key_type: custom_keys, custom_keys: [uri_path]}",
        )
    )
    acl = load_rule_files([path]).acls["t"]
    state: RedisState = await make_state()  # type: ignore[misc]
    req = WafRequest("GET", "/\udcff\udcfe")
    assert [(await decide(acl, state, req, NOW)).blocked for _ in range(2)] == [False, True]


async def test_redis_down_fails_open_then_recovers(
    acl: WebAcl,
    make_state: Callable[..., object],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    state: RedisState = await make_state(registry=registry)  # type: ignore[misc]
    for i in range(11):
        await decide(acl, state, client(), NOW + i * 0.01)
    redis_server.kill()
    with caplog.at_level(logging.ERROR, logger="wafproxy.state"):
        verdicts = [await decide(acl, state, client("192.0.2.2"), NOW + 1) for _ in range(20)]
    assert not any(v.blocked for v in verdicts)  # on_state_error: allow
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    errors = registry.get_sample_value(
        "wafproxy_state_errors_total", {"backend": "redis", "operation": "rate"}
    )
    assert errors is not None and errors >= 20
    assert registry.get_sample_value("wafproxy_state_up", {"backend": "redis"}) == 0
    redis_server.start()  # an empty Redis: the counts start again
    assert await _eventually(lambda: state.available, 5.0)
    assert registry.get_sample_value("wafproxy_state_up", {"backend": "redis"}) == 1
    results = [(await decide(acl, state, client("192.0.2.3"), NOW + 2)).blocked for _ in range(11)]
    assert results == [False] * 10 + [True]


async def test_redis_down_with_on_state_error_block(
    acl: WebAcl, make_state: Callable[..., object], redis_server: RedisServer
) -> None:
    state: RedisState = await make_state(OnStateError.BLOCK)  # type: ignore[misc]
    assert not (await decide(acl, state, client(), NOW)).blocked
    redis_server.kill()
    verdict = await decide(acl, state, client(), NOW)
    assert verdict.blocked and verdict.terminating_rule == "per-ip"


async def test_starting_while_redis_is_down(
    acl: WebAcl, make_state: Callable[..., object], redis_server: RedisServer
) -> None:
    redis_server.kill()
    state: RedisState = await make_state()  # type: ignore[misc]
    assert not state.available
    assert not (await decide(acl, state, client(), NOW)).blocked
    redis_server.start()
    assert await _eventually(lambda: state.available, 5.0)


async def test_dynamic_ip_sets_are_shared_persistent_and_expire(
    make_state: Callable[..., object],
) -> None:
    one: RedisState = await make_state()  # type: ignore[misc]
    two: RedisState = await make_state()  # type: ignore[misc]
    await one.block_ip("deny", "192.0.2.7", ttl=60, reason="probe", now=NOW)
    await one.block_ip("deny", "2001:db8::/48", ttl=None, now=NOW)
    # other states poll every 0.25 s; 2 s of slack for a loaded machine
    assert await _eventually(lambda: "192.0.2.7" in two.ip_sets(NOW).get("deny", ()), 2.0)
    assert "192.0.2.7" not in two.ip_sets(NOW + 60)["deny"]  # the TTL, on the given clock
    assert "2001:db8::5" in two.ip_sets(NOW + 60)["deny"]
    three: RedisState = await make_state()  # type: ignore[misc]  # a restarted proxy
    assert [e.address for e in await three.ip_entries("deny", now=NOW)] == [
        "192.0.2.7/32",
        "2001:db8::/48",
    ]
    assert await two.unblock_ip("deny", "2001:db8::1/48")
    assert await _eventually(lambda: "2001:db8::5" not in one.ip_sets(NOW)["deny"], 2.0)


async def test_ip_set_changes_need_redis(
    make_state: Callable[..., object], redis_server: RedisServer
) -> None:
    from wafproxy.state import StateUnavailable

    state: RedisState = await make_state()  # type: ignore[misc]
    await state.block_ip("deny", "192.0.2.7", ttl=None)
    redis_server.kill()
    with pytest.raises(StateUnavailable):
        await state.block_ip("deny", "192.0.2.8", ttl=None)
    assert "192.0.2.7" in state.ip_sets(NOW)["deny"]  # the last known entries stay


async def test_over_limit_needs_the_count_over_the_limit_now(
    make_state: Callable[..., object],
) -> None:
    state: RedisState = await make_state()  # type: ignore[misc]
    rule = RateRule(id="t//r", name="r", limit=2, window=60)
    for key, hits in (("a", 5), ("b", 3), ("c", 1)):
        view = state.rate_view(NOW)
        for _ in range(hits):
            view.hit(rule, key, NOW)
            await state.settle(view, NOW)
            view = state.rate_view(NOW)
    keys = await state.over_limit(rule, NOW + 1)
    assert [(k.key, k.count) for k in keys] == [("a", 5), ("b", 3)]
    assert await state.over_limit(rule, NOW + 61) == []


async def _eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_close_stops_a_poller_whose_cancellation_the_client_turned_into_a_timeout(
    make_state: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py can report a cancellation that lands inside a command's own timeout as a
    timeout, which the background loops catch and retry: close() must still end them."""
    state: RedisState = await make_state()  # type: ignore[misc]
    entered = asyncio.Event()

    async def get_that_swallows_cancel(*_: object) -> object:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError from None
        return None

    monkeypatch.setattr(state.client, "get", get_that_swallows_cancel)
    await asyncio.wait_for(entered.wait(), 5)  # the poller is inside the command
    await state.close()
    await asyncio.sleep(0.6)  # more than one poll interval: a surviving loop would be back
    mine = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in mine if "RedisState" in repr(t.get_coro())], mine
