"""The deployment budget operations on every backend: atomic, refused past a limit, and a
damaged row read back as a clear error."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk.errors import StoreCorruptError
from codon_sdk.stores import (
    BudgetTotals,
    ChargeBudget,
    LedgerStore,
    ReadBudget,
    TakeRateSlot,
    open_store,
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'b.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    opened = open_store(url)
    yield opened
    opened.close()


def _charge(deployment: str, **amounts: float) -> ChargeBudget:
    return ChargeBudget(
        deployment_id=deployment,
        budget="b",
        amounts=tuple(sorted(amounts.items())),
        limits=(("llm_calls", 10.0), ("usd", 1.0)),
    )


def test_a_charge_that_would_cross_a_limit_is_refused_and_changes_nothing(
    store: LedgerStore, request: pytest.FixtureRequest
) -> None:
    dep = f"dep-{request.node.callspec.id}"
    assert store.execute(_charge(dep, usd=0.6, llm_calls=1))
    assert not store.execute(_charge(dep, usd=0.6, llm_calls=1))
    assert not store.execute(_charge(dep, usd=2.0))  # alone over the limit: refused too
    assert store.execute(_charge(dep, usd=0.4, llm_calls=1))
    forced = ChargeBudget(deployment_id=dep, budget="b", amounts=(("usd", -0.5),), force=True)
    assert store.execute(forced)
    totals = store.execute(ReadBudget(deployment_id=dep, budget="b"))
    assert totals == BudgetTotals(usd=pytest.approx(0.5), llm_calls=2)
    assert store.execute(ReadBudget(deployment_id="nobody", budget="b")) == BudgetTotals()


def test_concurrent_charges_never_cross_the_limit_together(
    store: LedgerStore, request: pytest.FixtureRequest
) -> None:
    dep = f"race-{request.node.callspec.id}"
    granted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            ok = store.execute(_charge(dep, llm_calls=1))
            with lock:
                granted.append(bool(ok))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 10
    assert store.execute(ReadBudget(deployment_id=dep, budget="b")).llm_calls == 10


def test_a_damaged_budget_row_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.execute(_charge("d", usd=0.1))
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE codon_budgets SET usd = 'lots'")
        with pytest.raises(StoreCorruptError, match="budgets table"):
            store.execute(ReadBudget(deployment_id="d", budget="b"))
    finally:
        store.close()


def test_a_rate_window_grants_until_full_then_says_how_long_to_wait(
    store: LedgerStore, request: pytest.FixtureRequest
) -> None:
    key = f"window-{request.node.callspec.id}"

    def take(now: int, tokens: int = 10) -> int:
        op = TakeRateSlot(
            key=key, window_us=1_000, requests=2, tokens_cap=25, tokens=tokens, now_us=now
        )
        return int(store.execute(op))

    assert take(100) == 0
    assert take(200) == 0
    assert take(300) == 800  # two calls in the window: wait until the first leaves it
    assert take(1_100) == 0  # the first left; 20 tokens now held
    assert take(1_150, tokens=10) == 50  # 30 tokens would pass the cap of 25
    assert take(5_000, tokens=100) == 0  # an empty window takes a call larger than the cap
