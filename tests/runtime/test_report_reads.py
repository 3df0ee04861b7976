"""Reports read what the run already holds: results, counts and the lazy ledger agree exactly
with what decoding the ledger gives, for runs made here, runs read back from a store, resumed
and concurrent runs; a bad entry met by a lazy read raises naming it, never half-decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport, SQLiteStore
from codon_sdk.errors import LedgerError
from codon_sdk.ledger._events import parse_entry
from codon_sdk.runtime._launch import load_report
from codon_sdk.stores._base import AppendEntries


def _fanout(concurrency: int = 1) -> CodonWorkload:
    """start emits three tokens to work (one with audit metadata); work records a custom
    event and state; join collects: every kind of event the report derives views from."""

    def start(message: Any, *, runtime: Any, context: Any) -> str:
        for n in range(3):
            runtime.emit("work", {"n": n, "of": message})
        return "started"

    def work(message: Any, *, runtime: Any, context: Any) -> dict[str, Any]:
        runtime.record_event("checked", metadata={"n": message["n"]})
        runtime.state[f"w{message['n']}"] = message["n"] * 2
        runtime.emit("join", message["n"])
        return {"done": True, "n": message["n"]}  # keys in canonical order, as read back

    def join(message: Any, *, runtime: Any, context: Any) -> int:
        return int(message) + 100

    workload = CodonWorkload(name="fan", version="1", org_namespace="tests")
    workload.add_node(start, "start", "r")
    workload.add_node(work, "work", "r")
    workload.add_node(join, "join", "r")
    workload.add_edge("start", "work")
    workload.add_edge("work", "join")
    return workload


def _decoded(report: ExecutionReport) -> ExecutionReport:
    """The same run's report over a plain list of its entries: every view decoded."""
    return ExecutionReport(
        run_id=report.run_id,
        context=report.context,
        status=report.status,
        entries=list(report.entries),
        state=report.state,
        started_us=report._started_us,
        finished_us=report._finished_us,
        live_results=report._live,
    )


def _assert_same_views(made: ExecutionReport, decoded: ExecutionReport) -> None:
    assert len(made.ledger) == len(decoded.ledger) == made.event_count
    assert made.ledger == list(decoded.ledger)
    assert made.ledger[-1] == decoded.ledger[-1]
    assert made.ledger[2:5] == decoded.ledger[2:5]
    assert made.results == decoded.results
    for node in ("start", "work", "join", "missing"):
        assert made.node_results(node) == decoded.node_results(node)
    assert made.summary() == decoded.summary()
    assert made.usage == decoded.usage
    assert made.head_hash == decoded.head_hash
    assert made.to_dict() == decoded.to_dict()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_report_made_here_serves_the_views_decoding_gives(concurrency: int) -> None:
    report = _fanout().execute(
        "go", deployment_id="d", run_id=f"fan-{concurrency}", max_concurrency=concurrency
    )
    assert sorted(report.node_results("join")) == [100, 101, 102]
    _assert_same_views(report, _decoded(report))
    # fresh reports: each view read first, in another order
    again = _fanout().execute("go", deployment_id="d", max_concurrency=concurrency)
    _assert_same_views(_decoded(again), again)


def test_the_lazy_ledger_reads_sources_and_results_in_any_order() -> None:
    report = _fanout().execute("go", deployment_id="d")
    eager = list(_decoded(report).ledger)
    for seq in reversed(range(len(eager))):  # backwards: each source found on its own
        assert report.ledger[seq] == eager[seq]
    dequeued = [e for e in eager if e.event_type == "token_dequeued"]
    assert {e.source_node for e in dequeued} == {"__entry__", "start", "work"}
    assert report.ledger[-1].event_type == "run_finished"
    with pytest.raises(IndexError):
        report.ledger[len(eager)]
    with pytest.raises(TypeError, match="integers or slices"):
        report.ledger["1"]


def test_a_report_read_from_a_store_matches_the_one_made_here(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    made = _fanout().execute("go", deployment_id="d", store=url, run_id="stored")
    loaded = load_report(url, "stored")
    assert loaded.ledger == made.ledger
    assert loaded.summary().splitlines()[3:] == made.summary().splitlines()[3:]
    assert [r.token_id for r in loaded.results["work"]] == [
        r.token_id for r in made.results["work"]
    ]


def test_a_resumed_run_reports_its_earlier_part_from_the_ledger(tmp_path: Path) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        answer = runtime.interrupt("approve", payload={"q": message})
        runtime.emit("done", answer)
        return answer

    workload = CodonWorkload(name="ask", version="1", org_namespace="tests")
    workload.add_node(ask, "ask", "r")
    workload.add_node(lambda m, *, runtime, context: f"got {m}", "done", "r")
    workload.add_edge("ask", "done")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    paused = workload.execute("q1", deployment_id="d", store=url, run_id="asked")
    assert paused.status == "interrupted"
    final = workload.resume("asked", store=url, input="yes")
    assert final.node_results("done") == ["got yes"]
    _assert_same_views(final, _decoded(final))


def _report_over(entries: list[bytes]) -> ExecutionReport:
    return ExecutionReport(
        run_id="r",
        context={},
        status="completed",
        entries=entries,
        state={},
        started_us=0,
        finished_us=0,
    )


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b'{"v":2,"run_id":"r","seq":3,"type":"x","ts":1}', "format version 2"),
        (b'{"v":true,"run_id":"r","seq":3,"type":"x","ts":1}', "format version True"),
        (b'{"v":1.0,"run_id":"r","seq":3,"type":"x","ts":1}', "format version 1.0"),
        (b'{"v":1,"run_id":"r","seq":"3","type":"x","ts":1}', "wrong types"),
        (b"[1,2]", "must be a JSON object"),
    ],
)
def test_a_bad_entry_met_by_a_lazy_read_raises_naming_it(bad: bytes, problem: str) -> None:
    good = list(_fanout().execute("go", deployment_id="d", run_id="r").entries)
    entries = [*good[:3], bad, *good[4:]]
    report = _report_over(entries)
    assert len(report.ledger) == len(entries)  # counting decodes nothing
    assert [e.seq for e in report.ledger[:3]] == [0, 1, 2]  # what precedes it reads
    for _ in range(2):  # the same error every time: never a half-decoded event
        with pytest.raises(LedgerError, match=rf"entry 3 of run 'r' cannot be read: .*{problem}"):
            report.ledger[5]
    with pytest.raises(LedgerError, match="entry 3"):
        report.summary()
    with pytest.raises(LedgerError, match="entry 3"):
        list(report.events())


class _CountingStore(SQLiteStore):
    """A real SQLite store that counts the appends it commits."""

    appends = 0

    def execute(self, op: Any) -> Any:
        if isinstance(op, AppendEntries):
            self.appends += 1
        return super().execute(op)


def test_sync_durability_commits_once_per_step_not_per_event(tmp_path: Path) -> None:
    def step(i: int, *, runtime: Any, context: Any) -> int:
        runtime.state["i"] = i
        if i < 19:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="steps", version="1", org_namespace="tests")
    workload.add_node(step, "step", "r")
    workload.add_edge("step", "step")
    store = _CountingStore(tmp_path / "ledger.db")
    try:
        report = workload.execute(0, deployment_id="d", store=store, durability="sync")
        assert report.event_count == 20 * 4 + 2
        # one commit per step, and the run's end (the start goes with its first write)
        assert store.appends <= 20 + 1
        stored = store.read(report.run_id)
        assert stored == list(report.entries)
        assert [parse_entry(e).type for e in stored][-1] == "run_finished"
    finally:
        store.close()
