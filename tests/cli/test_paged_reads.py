"""``runs show``, ``export`` and ``load_report`` read a run a page at a time (issue 14, item 3).

A store that records every ``ReadEntries`` it serves shows the paging; each output is
compared with the same command reading the run in one page; a corrupt entry deep in the
run gives the same verdict, naming the entry, however the run is paged.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from tests.audit._tamper import Database, edit

from codon_sdk import CodonWorkload, load_report
from codon_sdk.cli import main
from codon_sdk.errors import LedgerError, StoreError
from codon_sdk.stores import (
    MemoryStore,
    PagedEntries,
    ReadEntries,
    SQLiteStore,
    _paged,
    open_store,
    register_store,
    unregister_store,
)

STEPS = 60  # 4 events per activation: 242 events, 16 pages of 16
PAGE = 16
RUN = "paged-run"


class CountingStore(SQLiteStore):
    """A SQLite store that notes ``(start, end, rows)`` of every ``ReadEntries``."""

    reads: ClassVar[list[tuple[int, int | None, int]]] = []

    def execute(self, op: Any) -> Any:
        result = super().execute(op)
        if isinstance(op, ReadEntries):
            CountingStore.reads.append((op.start, op.end, len(result)))
        return result


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[str]:
    """A ledger holding one 60-step run, opened through ``counting:///<path>``."""
    path = tmp_path / "ledger.db"
    register_store("counting", lambda url, **options: CountingStore(url[len("counting:///") :]))
    workload = CodonWorkload(name="paged", version="1.0")

    def step(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
        runtime.state["last"] = message["i"]
        if message["i"] + 1 < STEPS:
            runtime.emit("step", {"i": message["i"] + 1})
        return {"i": message["i"]}

    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    with open_store(f"sqlite:///{path}", notary=None) as store:
        workload.execute({"i": 0}, deployment_id="paged", store=store, run_id=RUN, max_steps=STEPS)
    CountingStore.reads = []
    try:
        yield f"counting:///{path}"
    finally:
        unregister_store("counting")


def _run(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, bytes]:
    code = main(list(args))
    out, err = capsysbinary.readouterr()
    return code, out, err


def _both(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[tuple[int, bytes, bytes], tuple[int, bytes, bytes]]:
    """The command's outcome read in pages of 16, and read in one page."""
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    paged = _run(capsysbinary, *args)
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", 1_000_000)
    whole = _run(capsysbinary, *args)
    return paged, whole


def _assert_paged() -> None:
    """Every read asked for one page of seqs (the tail probe after the last page aside,
    which found nothing), and the run was read in more than one."""
    reads = CountingStore.reads
    bounded = [(start, end) for start, end, _ in reads if end is not None]
    assert bounded
    assert all(end - start <= PAGE for start, end in bounded)
    assert all(rows == 0 for _, end, rows in reads if end is None)
    assert len({start for start, _ in bounded}) > 10


def test_export_reads_page_by_page_and_writes_the_exact_entries(
    counting: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    paged, whole = _both(capsysbinary, monkeypatch, "export", RUN, "--ledger", counting)
    assert paged == whole
    assert paged[0] == 0
    with open_store(counting, notary=None) as store:
        entries = store.read(RUN)
    assert paged[1] == b"".join(e + b"\n" for e in entries)
    CountingStore.reads = []
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    _run(capsysbinary, "export", RUN, "--ledger", counting)
    _assert_paged()


def test_runs_show_json_streams_the_same_document_as_one_read(
    counting: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    paged, whole = _both(
        capsysbinary, monkeypatch, "runs", "show", RUN, "--ledger", counting, "--json"
    )
    assert paged == whole
    assert paged[0] == 0
    doc = orjson.loads(paged[1])
    with open_store(counting, notary=None) as store:
        assert doc["events"] == [orjson.loads(e) for e in store.read(RUN)]
    assert doc["results"]["step"] == [{"i": i} for i in range(STEPS)]
    assert list(doc)[-1] == "events"


def test_runs_show_text_is_the_same_read_in_pages(
    counting: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    paged, whole = _both(capsysbinary, monkeypatch, "runs", "show", RUN, "--ledger", counting)
    assert paged == whole
    assert paged[0] == 0
    assert b"step" in paged[1]
    assert b"run_finished" in paged[1]
    CountingStore.reads = []
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    _run(capsysbinary, "runs", "show", RUN, "--ledger", counting)
    _assert_paged()


def test_a_corrupt_entry_deep_in_the_run_gives_the_same_verdict_naming_it(
    counting: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = 5 * PAGE + 3  # in the sixth page
    db = Database("sqlite", counting[len("counting:///") :])
    db.set_entry(RUN, bad, edit(db.entries(RUN)[bad], lambda obj: obj.update(ts=obj["ts"] + 1)))
    db.close()
    paged, whole = _both(capsysbinary, monkeypatch, "export", RUN, "--ledger", counting)
    assert paged == whole
    assert paged[0] != 0
    assert not paged[1]
    assert f"seq {bad}".encode() in paged[2]
    paged, whole = _both(capsysbinary, monkeypatch, "runs", "show", RUN, "--ledger", counting)
    assert paged == whole
    assert f"seq {bad}".encode() in paged[1]


def test_progress_goes_to_stderr_and_leaves_the_export_exact(
    counting: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    quiet = _run(capsysbinary, "export", RUN, "--ledger", counting)
    shown = _run(capsysbinary, "export", RUN, "--ledger", counting, "--progress")
    assert shown[1] == quiet[1]
    assert not quiet[2]
    lines = shown[2].decode().splitlines()
    assert lines
    assert all(line.startswith(f"codon: run {RUN}: ") for line in lines)
    assert any("exporting" in line and "242/242" in line for line in lines)


def test_load_report_reads_pages_lazily_and_a_corrupt_page_names_the_entry(
    counting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    report = load_report(counting, RUN)
    assert isinstance(report.entries._source, PagedEntries)
    assert report.node_results("step") == [{"i": i} for i in range(STEPS)]
    assert len(report.ledger) == 4 * STEPS + 2
    assert "step" in report.summary()
    assert "node_completed=60" in report.summary()
    whole = list(report.ledger)
    assert [e.seq for e in whole] == list(range(4 * STEPS + 2))
    # the database changes under the open report: the entry is read, and refused, when met
    bad = 9 * PAGE + 1
    db = Database("sqlite", counting[len("counting:///") :])
    db.set_entry(RUN, bad, b'{"type":')
    db.close()
    fresh = load_report(counting, RUN, force=True)
    assert fresh.event_count == bad  # a forced report: the entries before the broken one
    with pytest.raises(LedgerError, match=rf"entry {bad} of run '{RUN}' cannot be read"):
        list(report.events())


def test_a_report_read_after_its_store_was_closed_reopens_it(
    counting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store closed under the report (``with open_store(...) as s: load_report(s, ...)``,
    read afterwards) is opened again from its URL for the pages still to read."""
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    store = open_store(counting, notary=None)
    expected = store.read(RUN)
    report = load_report(store, RUN)
    store.close()
    assert list(report.entries) == expected
    assert report.event_count == len(expected)


def test_a_closed_store_that_cannot_be_reopened_says_so() -> None:
    class Gone(MemoryStore):
        url = "nosuch://ledger"
        closed = True

    entries = PagedEntries(Gone(), RUN, [(0, 0, 2), (PAGE, 2, 1)], [], page_size=PAGE)
    with pytest.raises(StoreError, match="was closed while run 'paged-run' was still being read"):
        list(entries)


def test_a_report_from_a_url_holds_its_store_until_it_is_dropped(
    counting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_paged, "DEFAULT_PAGE_SIZE", PAGE)
    report = load_report(counting, RUN)
    store = report.entries._source.store
    assert not store.closed
    assert len(list(report.entries)) == 4 * STEPS + 2
    del report
    gc.collect()
    assert store.closed


def test_paged_entries_equal_one_read_with_gaps_in_the_seqs(counting: str) -> None:
    """A damaged ledger missing rows (a gap wider than a page included) pages to exactly the
    list one read returns."""
    db = Database("sqlite", counting[len("counting:///") :])
    db.delete_events(RUN, [3, *range(40, 80)])
    db.close()
    with open_store(counting, notary=None) as store:
        whole = store.read(RUN)
        paged = PagedEntries.scan(store, RUN, page_size=PAGE)
        assert len(paged) == len(whole)
        assert list(paged) == whole
        assert [paged[i] for i in range(len(whole))] == whole
        assert paged[-1] == whole[-1]
        assert paged[10:20] == whole[10:20]
        assert list(paged.prefix(50)) == whole[:50]
        # pages of seqs 0-15 (15 rows), 16-31, 32-47 (8 rows), 48-63 (none), then the rows
        # past the gap in one read
        assert [at for at, _ in paged.pages()] == [0, PAGE - 1, 2 * PAGE - 1, 2 * PAGE + 7]
