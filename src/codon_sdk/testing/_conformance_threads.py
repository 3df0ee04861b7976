"""Store conformance, part three: async twins, threads and the log of runs.

A run's first entry writes its start line ``(idx, run id, 1, leaf hash of seq 0)``
and its end its finish line ``(idx, run id, event count, Merkle root)``, each in
the transaction of the entries it goes with; indexes count 0, 1, 2... in order.
One store serves many threads, and racing appends of one seq let exactly one win.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Final

import pytest

from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.stores import LedgerStore, RunInfo
from codon_sdk.testing._store_kit import begun, blobs, info, ledger, raw

__all__ = ["ConcurrencyConformance"]

ROOT: Final = bytes(range(32))


def race(store: LedgerStore, run_id: str, seq: int, contenders: int) -> list[str]:
    """``contenders`` threads append ``seq`` at the same moment; each reports won or lost."""
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.append(run_id, "owner-a", [raw(seq, b"writer-%d" % i)])
            outcomes.append("won")
        except RunConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


class ConcurrencyConformance:
    """Async twins, threads sharing one store, racing writers, the log of runs."""

    def test_async_twins_return_what_the_sync_methods_return(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 5)
        store.begin_run(run, entries)

        async def main() -> tuple[Any, ...]:
            return await asyncio.gather(
                store.aread(run.run_id),
                store.aread(run.run_id, 1, 3),
                store.aget_run(run.run_id),
                store.aruns(),
                store.aruns(status="completed", limit=1),
            )

        data, part, got, listed, none = asyncio.run(main())
        assert (data, part) == (blobs(entries), blobs(entries[1:3]))
        assert got == store.get_run(run.run_id)
        assert listed == [got]
        assert none == []

    def test_async_twins_raise_the_same_errors(self, store: LedgerStore) -> None:
        with pytest.raises(RunNotFoundError):
            asyncio.run(store.aget_run("run-missing"))
        with pytest.raises(RunNotFoundError):
            asyncio.run(store.aread("run-missing"))

    def test_threads_can_write_different_runs_through_one_store(self, store: LedgerStore) -> None:
        runs = [info(f"run-thread-{i}") for i in range(4)]
        ledgers = {r.run_id: ledger(r.run_id, 60) for r in runs}
        errors: list[BaseException] = []

        def write(run: RunInfo) -> None:
            try:
                entries = ledgers[run.run_id]
                store.begin_run(run, entries[:1])
                for k in range(1, len(entries), 3):
                    store.append(run.run_id, "owner-a", entries[k : k + 3])
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for run_id, entries in ledgers.items():
            assert store.read(run_id) == blobs(entries)
            assert store.get_run(run_id).event_count == 60

    def test_racing_appends_of_the_same_seq_let_exactly_one_win(self, store: LedgerStore) -> None:
        run = begun(store)
        for seq in range(5):
            assert race(store, run.run_id, seq, contenders=4) == ["lost", "lost", "lost", "won"]
        assert store.get_run(run.run_id).event_count == 5
        assert len(store.read(run.run_id)) == 5

    def test_a_run_begun_with_its_first_entry_gets_a_start_line(self, store: LedgerStore) -> None:
        run = info("run-a")
        entries = ledger(run.run_id, 3)
        store.begin_run(run, entries[:2])
        assert store.runs_log() == [(0, "run-a", 1, entries[0][2])]
        store.append(run.run_id, "owner-a", entries[2:])
        assert store.runs_log() == [(0, "run-a", 1, entries[0][2])]

    def test_the_finish_line_follows_the_start_line_with_the_event_count_and_root(
        self,
        store: LedgerStore,
    ) -> None:
        first, second = info("run-1"), info("run-2")
        one, two = ledger(first.run_id, 4), ledger(second.run_id, 2)
        store.begin_run(first, one[:1])
        store.begin_run(second, two[:1])
        store.append(first.run_id, "owner-a", one[1:], status="completed", log_root=ROOT)
        assert store.runs_log() == [
            (0, "run-1", 1, one[0][2]),
            (1, "run-2", 1, two[0][2]),
            (2, "run-1", 4, ROOT),
        ]

    def test_a_second_finish_line_is_refused_and_the_append_writes_nothing(
        self, store: LedgerStore
    ) -> None:
        run = info()
        entries = ledger(run.run_id, 4)
        store.begin_run(run, entries[:1])
        store.append(run.run_id, "owner-a", entries[1:3], log_root=ROOT)
        with pytest.raises(RunConflictError, match="already has a finish line"):
            store.append(run.run_id, "owner-a", entries[3:], log_root=ROOT)
        assert store.read(run.run_id) == blobs(entries[:3])
        assert [size for _, _, size, _ in store.runs_log()] == [1, 3]

    def test_a_finish_line_of_fewer_than_two_events_is_refused(self, store: LedgerStore) -> None:
        """Only start lines have size 1: a run cannot be logged as finished with one event."""
        run = info()
        store.begin_run(run, ledger(run.run_id, 1))
        with pytest.raises(RunConflictError, match="holds 1 event"):
            store.append(run.run_id, "owner-a", [], status="completed", log_root=ROOT)
        assert [size for _, _, size, _ in store.runs_log()] == [1]
        assert store.get_run(run.run_id).status == "running"

    def test_a_run_begun_without_entries_gets_its_start_line_with_its_first_entry(
        self,
        store: LedgerStore,
    ) -> None:
        run = begun(store)
        assert store.runs_log() == []
        entries = ledger(run.run_id, 2)
        store.append(run.run_id, "owner-a", entries)
        assert store.runs_log() == [(0, run.run_id, 1, entries[0][2])]

    def test_a_refused_begin_writes_no_start_line(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 2)
        store.begin_run(run, entries)
        with pytest.raises(RunConflictError, match="already exists"):
            store.begin_run(run, entries)
        assert len(store.runs_log()) == 1

    def test_runs_started_from_many_threads_get_gapless_indexes(self, store: LedgerStore) -> None:
        errors: list[BaseException] = []

        def starts(worker: int) -> None:
            try:
                for k in range(10):
                    run = info(f"run-{worker}-{k}")
                    entries = ledger(run.run_id, 2)
                    store.begin_run(run, entries[:1])
                    if k % 3 == 0:
                        store.append(run.run_id, "owner-a", entries[1:], log_root=ROOT)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=starts, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        log = store.runs_log()
        assert [idx for idx, _, _, _ in log] == list(range(60 + 6 * 4))
        assert sorted(r for _, r, size, _ in log if size == 1) == sorted(
            r.run_id for r in store.runs()
        )
