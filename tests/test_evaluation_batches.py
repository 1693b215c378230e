"""EvaluationBatches: the evaluations queued in one event-loop iteration run together."""

from __future__ import annotations

import asyncio

import pytest

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind, WebAcl
from wafproxy.acl.together import Job
from wafproxy.evaluation_batches import MAX_BATCH, EvaluationBatches
from wafproxy.rawhttp import build_request
from wafproxy.request import WafRequest


@pytest.fixture(scope="module")
def acl() -> WebAcl:
    return load_rule_files(default_rule_files()).acls["default"]


def post(body: str) -> WafRequest:
    data = body.encode()
    headers = (("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"),
               ("Content-Type", "application/x-www-form-urlencoded"),
               ("Content-Length", str(len(data))))  # fmt: skip
    return build_request("POST", "/items", headers, data)


BODIES = ["name=drill&note=" + "cordless and light " * 20, "q=<script>alert(1)</script>",
          "q=plain", "q=1 union select password from users--" + "&pad=" + "x" * 300]  # fmt: skip


async def test_requests_queued_in_one_iteration_are_evaluated_in_one_batch(acl: WebAcl) -> None:
    batches = EvaluationBatches()
    futures = [batches.evaluate(Job(acl, post(body))) for body in BODIES]
    results = await asyncio.gather(*futures)
    assert batches.runs == 1
    verdicts = [verdict for verdict, _ in results]
    assert verdicts == [evaluate(acl, post(body)) for body in BODIES]
    assert [v.action for v in verdicts] == [ActionKind.ALLOW, ActionKind.BLOCK] * 2
    assert all(seconds > 0 for _, seconds in results)


async def test_a_batch_is_bounded_and_the_rest_runs_next(acl: WebAcl) -> None:
    batches = EvaluationBatches()
    futures = [batches.evaluate(Job(acl, post(f"n={i}"))) for i in range(MAX_BATCH + 5)]
    results = await asyncio.gather(*futures)
    assert batches.runs == 2
    assert {verdict.action for verdict, _ in results} == {ActionKind.ALLOW}


async def test_one_request_at_a_time_is_a_batch_of_one(acl: WebAcl) -> None:
    batches = EvaluationBatches()
    for body in BODIES:
        verdict, _ = await batches.evaluate(Job(acl, post(body)))
        assert verdict == evaluate(acl, post(body))
    assert batches.runs == len(BODIES)


async def test_a_request_that_gave_up_waiting_does_not_stop_the_others(acl: WebAcl) -> None:
    batches = EvaluationBatches()
    gone = batches.evaluate(Job(acl, post("q=gone")))
    kept = batches.evaluate(Job(acl, post("q=<script>alert(1)</script>")))
    gone.cancel()
    verdict, _ = await asyncio.wait_for(kept, 5)
    assert verdict.blocked
    assert gone.cancelled()


def test_a_new_event_loop_starts_with_an_empty_queue(acl: WebAcl) -> None:
    """A loop that stopped with evaluations queued (its requests are gone with it) must not
    leave the next loop's evaluations waiting for a run that will never come."""
    batches = EvaluationBatches()
    first = asyncio.new_event_loop()

    def queue_and_stop() -> None:
        batches.evaluate(Job(acl, post("q=1")))
        first.stop()  # the loop ends this iteration; the run it was given never comes

    first.call_soon(queue_and_stop)
    first.run_forever()
    first.close()
    assert batches.runs == 0

    async def evaluate_once() -> ActionKind:
        verdict, _ = await asyncio.wait_for(batches.evaluate(Job(acl, post("q=2"))), 5)
        return verdict.action

    assert asyncio.run(evaluate_once()) is ActionKind.ALLOW
    assert batches.runs == 1
