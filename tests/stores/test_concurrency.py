"""Several processes writing to one ledger at once: one SQLite file, one PostgreSQL database.

Children are started with the "spawn" method (fresh interpreters, as separate
workers would be) and meet at a barrier, so their writes really overlap.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import RunConflictError
from codon_sdk.stores._base import new_owner
from codon_sdk.stores._open import open_store
from codon_sdk.testing._store_kit import blobs, info, ledger, raw

from .test_conformance import pg_schema_url

WRITERS = 8
EVENTS = 300
CONTENDERS = 4
APPENDS_EACH = 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger URL no other test uses: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared' / 'ledger.db'}"
    else:
        with pg_schema_url(request.getfixturevalue("pg_url")) as fresh:
            yield fresh


def write_one_run(url: str, run_id: str, seed: int, barrier: Barrier) -> None:
    """Child: open the store, then write ``EVENTS`` events of one run in batches of 1 to 5."""
    rng = random.Random(seed)
    entries = ledger(run_id, EVENTS)
    owner = new_owner()
    with open_store(url) as store:
        barrier.wait(timeout=60)
        store.begin_run(info(run_id, owner=owner), entries[:1])
        k = 1
        while k < EVENTS:
            n = rng.randint(1, 5)
            done = k + n >= EVENTS
            store.append(
                run_id,
                owner,
                entries[k : k + n],
                status="completed" if done else None,
                release=done,
            )
            k += n


def append_to_shared_run(url: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Child: append ``APPENDS_EACH`` batches at whatever the next seq is, retrying on conflict."""
    rng = random.Random(worker)
    appended = conflicts = 0
    with open_store(url) as store:
        barrier.wait(timeout=60)
        while appended < APPENDS_EACH:
            start = store.get_run("run-shared").event_count
            batch = [raw(seq, b"%d:%d" % (worker, seq)) for seq in range(start, start + 3)]
            try:
                store.append("run-shared", "owner-shared", batch[: rng.randint(1, 3)])
                appended += 1
            except RunConflictError:
                conflicts += 1
    results.put((worker, appended, conflicts))


def test_processes_writing_different_runs_to_one_store_lose_nothing(url: str) -> None:
    run_ids = [f"run-proc-{i}" for i in range(WRITERS)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [
        ctx.Process(target=write_one_run, args=(url, run_id, seed, barrier))
        for seed, run_id in enumerate(run_ids)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * WRITERS, "see the writers' stderr above"
    with open_store(url) as store:
        assert sorted(r.run_id for r in store.runs()) == run_ids
        for run_id in run_ids:
            expected = ledger(run_id, EVENTS)
            assert store.read(run_id) == blobs(expected)
            got = store.get_run(run_id)
            assert (got.event_count, got.status, got.owner) == (EVENTS, "completed", None)
            assert got.head == expected[-1][2].hex()


def test_processes_racing_on_one_run_keep_its_seqs_contiguous(url: str) -> None:
    """Concurrent appends at the same next seq: one wins each time, the others get conflicts."""
    with open_store(url) as store:
        store.begin_run(info("run-shared", owner="owner-shared"), [])
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(CONTENDERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=append_to_shared_run, args=(url, worker, barrier, results))
        for worker in range(CONTENDERS)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * CONTENDERS, "see the writers' stderr above"
    assert sorted(appended for _, appended, _ in reports) == [APPENDS_EACH] * CONTENDERS
    with open_store(url) as store:
        data = store.read("run-shared")
        assert store.get_run("run-shared").event_count == len(data)
    seqs = [int(entry.split(b":")[1]) for entry in data]
    assert seqs == list(range(len(data)))
    assert {int(entry.split(b":")[0]) for entry in data} == set(range(CONTENDERS))
    assert CONTENDERS * APPENDS_EACH <= len(data) <= CONTENDERS * APPENDS_EACH * 3


STARTERS = 4
THREADS_EACH = 2
STARTS_EACH = 15


def begin_many_runs(url: str, worker: int, barrier: Barrier) -> None:
    """Child: two threads each begin ``STARTS_EACH`` runs, finishing every other one."""
    import threading

    with open_store(url) as store:
        barrier.wait(timeout=60)

        def starts(thread: int) -> None:
            for k in range(STARTS_EACH):
                run_id = f"run-{worker}-{thread}-{k}"
                entries = ledger(run_id, 2)
                store.begin_run(info(run_id, owner="o"), entries[:1])
                if k % 2:
                    store.append(run_id, "o", entries[1:], status="completed", log_root=b"r" * 32)

        threads = [threading.Thread(target=starts, args=(t,)) for t in range(THREADS_EACH)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def test_run_starts_from_several_processes_and_threads_keep_the_log_of_runs_gapless(
    url: str,
) -> None:
    """Every run begun concurrently has exactly one start line, each finished one a finish line
    after it, and the log's indexes are 0..n-1 without a gap or a repeat."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(STARTERS)
    procs = [
        ctx.Process(target=begin_many_runs, args=(url, worker, barrier))
        for worker in range(STARTERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * STARTERS, "see the writers' stderr above"
    with open_store(url) as store:
        log = store.runs_log()
        runs = store.runs()
    assert [idx for idx, _, _, _ in log] == list(range(len(log)))
    starts = [run_id for _, run_id, size, _ in log if size == 1]
    finishes = [run_id for _, run_id, size, _ in log if size > 1]
    assert sorted(starts) == sorted(r.run_id for r in runs)
    assert len(starts) == STARTERS * THREADS_EACH * STARTS_EACH
    assert sorted(finishes) == sorted(r.run_id for r in runs if r.status == "completed")
    position = {(run_id, size > 1): idx for idx, run_id, size, _ in log}
    assert all(position[(run_id, False)] < position[(run_id, True)] for run_id in finishes)
