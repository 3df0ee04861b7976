"""``verify_run`` reads a run once, a page at a time (issue 14, items 2 and 3).

A store that records every ``ReadEntries`` it serves shows the paging: no read returns
more than a page of rows and the run is read about once. A run whose pages are not what
its runs index implies (a deleted row, an index edited) gets the verdict reading it whole
gave: the fallback counts the rows first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tests.audit._tamper import Database

from codon_sdk import CodonWorkload
from codon_sdk.ledger import verify_entries
from codon_sdk.stores import (
    ReadEntries,
    SQLiteStore,
    _paged,
    open_store,
    register_store,
    unregister_store,
    verify_run,
)

STEPS = 60  # 4 events per activation: 242 events
PAGE = 16
RUN = "verify-paged"


class CountingStore(SQLiteStore):
    """A SQLite store that notes the rows of every ``ReadEntries`` it serves."""

    reads: ClassVar[list[int]] = []

    def execute(self, op: Any) -> Any:
        result = super().execute(op)
        if isinstance(op, ReadEntries):
            CountingStore.reads.append(len(result))
        return result


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "ledger.db"
    register_store("vcounting", lambda url, **options: CountingStore(url[len("vcounting:///") :]))
    workload = CodonWorkload(name="verify-paged", version="1.0")

    def step(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
        runtime.state["last"] = message["i"]
        if message["i"] + 1 < STEPS:
            runtime.emit("step", {"i": message["i"] + 1})
        return {"i": message["i"]}

    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    with open_store(f"sqlite:///{path}", notary=None) as store:
        workload.execute({"i": 0}, deployment_id="v", store=store, run_id=RUN, max_steps=STEPS)
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    CountingStore.reads = []
    try:
        yield f"vcounting:///{path}", path
    finally:
        unregister_store("vcounting")


def _whole(path: Path) -> Any:
    """The verdict on the run read in one list (what verify_run gave before paging)."""
    with open_store(f"sqlite:///{path}", notary=None) as store:
        info = store.get_run(RUN)
        return verify_entries(
            RUN,
            store.read(RUN),
            index_says_ended=info.status in ("completed", "failed", "stopped"),
            index_event_count=info.event_count,
            index_head=info.head,
        )


def test_verify_run_never_holds_more_than_a_page_and_reads_the_run_once(
    ledger: tuple[str, Path],
) -> None:
    url, path = ledger
    report = verify_run(url, RUN)
    assert report.status == "unanchored"
    assert report.event_count == 4 * STEPS + 2
    reads = CountingStore.reads
    assert max(reads) <= PAGE
    # each page once, plus page 0 for the first leaf's log line at most once more
    assert sum(reads) <= report.event_count + PAGE
    assert report.root == _whole(path).root


@pytest.mark.parametrize(
    "damage",
    ["delete_middle", "delete_last", "index_lower", "index_higher", "index_zero"],
)
def test_a_run_unlike_its_index_gets_the_verdict_of_the_whole_read(
    ledger: tuple[str, Path], damage: str
) -> None:
    url, path = ledger
    db = Database("sqlite", path)
    try:
        if damage == "delete_middle":
            db.delete_events(RUN, [PAGE * 5 + 3])
        elif damage == "delete_last":
            db.delete_events(RUN, [4 * STEPS + 1])
        else:
            count = {"index_lower": 100, "index_higher": 400, "index_zero": 0}[damage]
            db.update_run(RUN, event_count=count)
    finally:
        db.close()
    paged = verify_run(url, RUN)
    whole = _whole(path)
    assert paged.status == whole.status
    assert paged.findings == whole.findings
    assert paged.event_count == whole.event_count
    assert max(CountingStore.reads) <= PAGE  # the fallback reads in pages too
