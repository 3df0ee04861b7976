"""A new run's id is checked against the store before any node runs only when the caller
chose it: an id the SDK generated (random, 128 bits) costs no extra round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, SQLiteStore
from codon_sdk.errors import RunConflictError


class CountingStore(SQLiteStore):
    """A real SQLite store that counts the existence checks made on it."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.checks = 0

    def has_run(self, run_id: str) -> bool:
        self.checks += 1
        return super().has_run(run_id)


def _workload(ran: list[Any]) -> CodonWorkload:
    def step(message: Any, *, runtime: Any, context: Any) -> Any:
        ran.append(message)
        return message

    workload = CodonWorkload(name="ids", version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "w")
    return workload


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_a_generated_run_id_is_not_looked_up_first(tmp_path: Path, durability: str) -> None:
    store = CountingStore(tmp_path / "ledger.db")
    try:
        report = _workload([]).execute("a", deployment_id="d", store=store, durability=durability)
        assert report.status == "completed"
        assert store.checks == 0
        assert store.has_run(report.run_id)
    finally:
        store.close()


def test_a_chosen_run_id_is_checked_and_a_taken_one_refused_before_any_node_runs(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "ledger.db")
    ran: list[Any] = []
    try:
        _workload(ran).execute("first", deployment_id="d", store=store, run_id="mine")
        assert store.checks == 0  # the start barrier's own write refuses a taken id
        with pytest.raises(RunConflictError, match=r"'mine' already exists.*resume"):
            _workload(ran).execute("second", deployment_id="d", store=store, run_id="mine")
        assert ran == ["first"]  # the refused run never ran its node
        assert store.checks == 0
        with pytest.raises(RunConflictError, match=r"'mine' already exists.*resume"):
            _workload(ran).execute(
                "third", deployment_id="d", store=store, run_id="mine", durability="exit"
            )
        assert store.checks == 1  # no barrier in exit durability: looked up first
        assert ran == ["first"]
    finally:
        store.close()
