"""Conformance: the log of runs on every backend (memory, SQLite, PostgreSQL).

A run's first entry writes its start line ``(idx, run id, 1, leaf hash of seq 0)``
and its end its finish line ``(idx, run id, event count, Merkle root)``, each in
the transaction of the entries it goes with; indexes count 0, 1, 2... in order.
"""

from __future__ import annotations

import threading

import pytest

from codon_sdk.errors import RunConflictError
from codon_sdk.stores._base import LedgerStore

from .test_conformance import begun, blobs, info, ledger

ROOT = bytes(range(32))


def test_a_run_begun_with_its_first_entry_gets_a_start_line(store: LedgerStore) -> None:
    run = info("run-a")
    entries = ledger(run.run_id, 3)
    store.begin_run(run, entries[:2])
    assert store.runs_log() == [(0, "run-a", 1, entries[0][2])]
    store.append(run.run_id, "owner-a", entries[2:])
    assert store.runs_log() == [(0, "run-a", 1, entries[0][2])]


def test_the_finish_line_follows_the_start_line_with_the_event_count_and_root(
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


def test_a_second_finish_line_is_refused_and_the_append_writes_nothing(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 4)
    store.begin_run(run, entries[:1])
    store.append(run.run_id, "owner-a", entries[1:3], log_root=ROOT)
    with pytest.raises(RunConflictError, match="already has a finish line"):
        store.append(run.run_id, "owner-a", entries[3:], log_root=ROOT)
    assert store.read(run.run_id) == blobs(entries[:3])
    assert [size for _, _, size, _ in store.runs_log()] == [1, 3]


def test_a_finish_line_of_fewer_than_two_events_is_refused(store: LedgerStore) -> None:
    """Only start lines have size 1: a run cannot be logged as finished with one event."""
    run = info()
    store.begin_run(run, ledger(run.run_id, 1))
    with pytest.raises(RunConflictError, match="holds 1 event"):
        store.append(run.run_id, "owner-a", [], status="completed", log_root=ROOT)
    assert [size for _, _, size, _ in store.runs_log()] == [1]
    assert store.get_run(run.run_id).status == "running"


def test_a_run_begun_without_entries_gets_its_start_line_with_its_first_entry(
    store: LedgerStore,
) -> None:
    run = begun(store)
    assert store.runs_log() == []
    entries = ledger(run.run_id, 2)
    store.append(run.run_id, "owner-a", entries)
    assert store.runs_log() == [(0, run.run_id, 1, entries[0][2])]


def test_a_refused_begin_writes_no_start_line(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 2)
    store.begin_run(run, entries)
    with pytest.raises(RunConflictError, match="already exists"):
        store.begin_run(run, entries)
    assert len(store.runs_log()) == 1


def test_runs_started_from_many_threads_get_gapless_indexes(store: LedgerStore) -> None:
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
    assert sorted(r for _, r, size, _ in log if size == 1) == sorted(r.run_id for r in store.runs())
