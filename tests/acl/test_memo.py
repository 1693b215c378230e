"""acl/memo.py: per-value memo tables stay within one byte budget, whatever the traffic."""

from __future__ import annotations

import pytest

from wafproxy.acl import memo
from wafproxy.acl.memo import MAX_VALUE, Memo, chain_memo, clear_all


@pytest.fixture(autouse=True)
def _fresh() -> None:
    clear_all()


def test_long_values_are_not_remembered() -> None:
    table: Memo[int] = Memo()
    table.put("x" * (MAX_VALUE + 1), 1)
    table.put_all(["y" * (MAX_VALUE + 1), "short"], [2, 3])
    table.put_all(["z" * (MAX_VALUE + 1)], [4])  # one pair: the path most puts take
    table.put_all(["one"], [5])
    assert table.table == {"short": 3, "one": 5}


def test_spending_the_budget_forgets_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "BUDGET", 10 * (2 * 8 + memo.ENTRY_OVERHEAD))
    first: Memo[int] = Memo()
    second: Memo[int] = Memo()
    first.put_all([f"key-{n:04d}" for n in range(6)], list(range(6)))
    second.put_all([f"key-{n:04d}" for n in range(4)], list(range(4)))
    assert len(first.table) == 6 and len(second.table) == 4
    second.put("key-9999", 9)  # one entry past the budget
    assert first.table == {}
    assert len(second.table) <= 1
    for n in range(1000):  # unique values forever: memory stays bounded
        first.put(f"v-{n:06d}", n)
        second.put_all([f"w-{n:06d}"], [n])
        assert len(first.table) + len(second.table) <= 10


def test_one_table_per_transformation_chain() -> None:
    assert chain_memo(("lowercase",)) is chain_memo(("lowercase",))
    assert chain_memo(("lowercase",)) is not chain_memo(("lowercase", "trim"))
