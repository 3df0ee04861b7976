"""RunWriter in ``batch`` durability: whole steps per commit, bounded backlog, loud failures.

The store is a real MemoryStore whose append is slowed down or made to fail, so
the writer thread's hand-over is exercised against a store that lags or breaks.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import StoreError, WorkloadRuntimeError
from codon_sdk.ledger._events import parse_entry
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.runtime._writer import RunWriter
from codon_sdk.stores._base import AppendEntries, Op, RunInfo, new_owner
from codon_sdk.stores._memory import MemoryStore

T0 = 1_767_225_600_000_000


class LaggingStore(MemoryStore):
    """Sleeps ``delay`` per append; fails every append after ``fail_after`` of them."""

    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail_after = fail_after
        self.appends: list[AppendEntries] = []
        self.lock = threading.Lock()

    def execute(self, op: Op) -> Any:
        if isinstance(op, AppendEntries):
            with self.lock:
                if self.fail_after is not None and len(self.appends) >= self.fail_after:
                    raise OSError("the disk went away")
                self.appends.append(op)
            time.sleep(self.delay)
        return super().execute(op)


def counter(steps: int) -> CodonWorkload:
    def step(i: int, *, runtime: Any, context: Any) -> int:
        runtime.state["i"] = i
        if i < steps:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="writer-test", version="1", org_namespace="tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    return workload


def info(run_id: str = "run-w") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        workload_name="w",
        workload_version="1",
        logic_id="l" * 64,
        deployment_id="d",
        status="running",
        started_us=T0,
        owner=new_owner(),
    )


def record(writer: RunWriter, first: int, n: int) -> int:
    """Append ``n`` entries to the writer's outbox as the recorder does; the next seq."""
    for seq in range(first, first + n):
        entry = b'{"seq":%d}' % seq
        writer.entries.append(b"\x00" + entry)
        writer.leaves.append(leaf_hash(entry))
    return first + n


def test_every_commit_holds_whole_activations_and_nothing_is_lost() -> None:
    store = LaggingStore(delay=0.003)  # the engine outruns the writer: groups of many steps
    report = counter(400).execute(0, deployment_id="test", store=store, run_id="whole-steps")
    assert report.status == "completed"
    stored = store.read("whole-steps")
    assert stored == list(report.entries)
    assert len(store.appends) < 400  # grouped, not one transaction per step
    for op in store.appends:
        if op.entries:
            last = parse_entry(op.entries[-1][1])
            assert last.type != "token_dequeued", "a commit split an activation"
            first = parse_entry(op.entries[0][1])
            assert first.type not in ("node_completed", "token_enqueued", "state_updated")


def test_the_backlog_never_exceeds_max_pending() -> None:
    store = LaggingStore(delay=0.02)
    writer = RunWriter(store, info(), max_pending=50)
    seq, worst = 0, 0
    try:
        for _ in range(40):
            seq = record(writer, seq, 7)
            writer.step(seq)
            worst = max(worst, seq - writer._committed)
        writer.barrier(seq, {})
    finally:
        writer.close()
    assert worst < 50
    assert store.get_run("run-w").event_count == seq == 280


def test_a_store_failure_reaches_the_engine_and_keeps_what_was_committed() -> None:
    store = LaggingStore(fail_after=2)
    writer = RunWriter(store, info(), max_pending=10_000)

    def write_parts() -> None:
        seq = 0
        for _ in range(1_000):
            seq = record(writer, seq, 3)
            writer.barrier(seq, {})  # one commit each: begin_run, two appends, then the failure

    try:
        with pytest.raises(StoreError, match=r"writing run run-w to memory://.*disk went away"):
            write_parts()
        with pytest.raises(StoreError, match="disk went away"):  # and on every call after
            writer.step(record(writer, 12, 3))
    finally:
        writer.close()
    assert store.get_run("run-w").event_count == 9
    assert len(store.read("run-w")) == 9


def test_a_run_whose_store_fails_mid_way_fails_loudly() -> None:
    """The store breaks on its second append while steps keep coming (a pause every 50
    steps guarantees several commits): the run fails with the store's error and what was
    committed before stays readable."""

    def step(i: int, *, runtime: Any, context: Any) -> int:
        if i % 50 == 0:
            time.sleep(0.01)  # longer than the writer's poll: the next steps form a new group
        if i < 400:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="breaks", version="1", org_namespace="tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    store = LaggingStore(fail_after=1)
    with pytest.raises((StoreError, WorkloadRuntimeError), match="the disk went away"):
        workload.execute(0, deployment_id="test", store=store, run_id="broken")
    stored = store.read("broken")
    assert stored
    assert all(parse_entry(e).run_id == "broken" for e in stored)
    assert len(store.appends) == 1


def test_steps_are_committed_while_the_next_node_runs_even_after_an_idle_spell(
    tmp_path: Any,
) -> None:
    """batch durability: a finished step is committed within moments, also when the writer
    thread had gone to sleep during a long node (it is woken, not left to its safety net)."""
    from codon_sdk import SQLiteStore

    path = tmp_path / "ledger.db"
    seen: dict[int, list[int]] = {}

    def committed_results() -> list[int]:
        with SQLiteStore(path) as reader:
            return [
                event.payload
                for event in map(parse_entry, reader.read("idle"))
                if event.type == "node_completed"
            ]

    def step(i: int, *, runtime: Any, context: Any) -> int:
        if i in (3, 6):
            time.sleep(0.3)  # long enough for the writer to go idle (50 ms without steps)
            seen[i] = committed_results()
        if i < 7:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name="idle", version="1", org_namespace="tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute(0, deployment_id="d", store=f"sqlite:///{path}", run_id="idle")
    assert report.status == "completed"
    assert seen[3] == [0, 1, 2]  # written while step 3 ran, not at the end of the run
    assert seen[6] == [0, 1, 2, 3, 4, 5]


class SlowOutbox(list):  # type: ignore[type-arg]
    """An outbox whose appends are slow: widens the window between a recorder's seq moving
    on and the entry reaching the outbox, where another thread could mark a step."""

    def append(self, item: Any) -> None:
        time.sleep(0.05)
        super().append(item)


def test_a_step_marked_while_another_thread_records_never_splits_an_entry() -> None:
    """With several activations at once (LockedRecorder), marking a step must wait for an
    event being recorded by another thread: the mark and the outbox agree."""
    from codon_sdk.runtime._recorder import LockedRecorder

    store = MemoryStore()
    writer = RunWriter(store, info("threads"))
    writer.entries = SlowOutbox()
    rec = LockedRecorder("threads", sink=writer)
    try:
        rec.append("run_started", T0)
        rec.step_boundary()
        worker = threading.Thread(target=lambda: rec.append("custom", T0 + 1, "n", "t1"))
        worker.start()
        time.sleep(0.01)  # the worker is inside the recorder, its entry not yet in the outbox
        rec.step_boundary()
        worker.join()
        rec.append("custom", T0 + 2, "n", "t2")
        rec.barrier(status="completed", finished_us=T0 + 3, release=True)
    finally:
        writer.close()
    stored = store.read("threads")
    assert [parse_entry(e).seq for e in stored] == [0, 1, 2]
    assert stored == list(rec.entries())
