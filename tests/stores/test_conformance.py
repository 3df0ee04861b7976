"""One conformance suite for every ledger store: memory, SQLite and PostgreSQL alike.

Every test runs against each backend (fixture ``store``, in ``conftest.py``; leases and the
log of runs have their own modules, ``test_conformance_leases.py`` and
``test_conformance_runs_log.py``) and pins down one of
the guarantees listed in ``codon_sdk.stores._base`` or the result of one
operation, with MemoryStore as the reference. PostgreSQL tests get a fresh
schema each (``search_path`` in the URL), SQLite tests a fresh file.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.ledger._events import leaf_hash
from codon_sdk.runtime._recorder import Recorder
from codon_sdk.stores._base import (
    ClaimRun,
    Entry,
    EntryBatch,
    LedgerStore,
    RunInfo,
    hold,
    new_owner,
    release,
)
from codon_sdk.stores._memory import MemoryStore

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
EVERY_CHAR = "".join(map(chr, range(256)))  # U+0000..U+00FF inside JSON strings
EVERY_BYTE = bytes(range(256))


# --------------------------------------------------------------------------- helpers


def now_us() -> int:
    return time.time_ns() // 1000


def ledger(run_id: str, n: int, *, payload: Any = None) -> list[Entry]:
    """``n`` realistic entries of one run (canonical JSON, hash-chained), seqs 0..n-1."""
    rec = Recorder(run_id)
    rec.append("run_started", T0, metadata={"workload": "conformance", "chars": EVERY_CHAR})
    for i in range(1, n):
        body = {"i": i, "text": EVERY_CHAR} if payload is None else payload
        rec.append("node_completed", T0 + i, node="worker", token_id=f"tok-{i}", payload=body)
    return [(seq, entry, leaf_hash(entry)) for seq, entry in enumerate(rec.entries())]


def raw(seq: int, data: bytes) -> Entry:
    """An opaque entry (stores never parse entries)."""
    return (seq, data, leaf_hash(data))


def info(
    run_id: str | None = None,
    *,
    owner: str | None = "owner-a",
    started_us: int = T0,
    status: str = "running",
    workload_name: str = "wl",
    **fields: Any,
) -> RunInfo:
    return RunInfo(
        run_id=run_id or f"run-{uuid.uuid4().hex[:12]}",
        workload_name=workload_name,
        workload_version="1.0.0",
        logic_id="a" * 64,
        deployment_id="d" * 64,
        status=status,
        started_us=started_us,
        owner=owner,
        heartbeat_us=now_us(),
        **fields,
    )


def blobs(entries: Sequence[Entry]) -> list[bytes]:
    return [e for _, e, _ in entries]


@contextmanager
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL of ``pg_url``'s database whose ``search_path`` is a new, empty schema."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def open_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        from codon_sdk.stores._sqlite import SQLiteStore

        with SQLiteStore(tmp_path / "ledger.db") as store:
            yield store
    else:
        from codon_sdk.stores._postgres import PostgresStore

        with pg_schema_url(request.getfixturevalue("pg_url")) as url, PostgresStore(url) as store:
            yield store


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def begun(store: LedgerStore, entries: Sequence[Entry] = (), **fields: Any) -> RunInfo:
    run = info(**fields)
    store.begin_run(run, list(entries))
    return run


# --------------------------------------------------------------------------- round trips


def test_begin_and_appends_read_back_byte_for_byte(store: LedgerStore) -> None:
    run = info("run-roundtrip")
    entries = ledger(run.run_id, 12)
    store.begin_run(run, entries[:1])
    store.append(run.run_id, "owner-a", entries[1:5])
    store.append(run.run_id, "owner-a", entries[5:])
    got = store.read(run.run_id)
    assert got == blobs(entries)
    assert all(type(e) is bytes for e in got)


def test_every_byte_value_round_trips_verbatim(store: LedgerStore) -> None:
    """JSON strings holding U+0000..U+00FF and opaque non-JSON bytes come back unchanged."""
    run = info()
    entries = ledger(run.run_id, 3)
    entries += [raw(3, EVERY_BYTE * 4), raw(4, b"\x00"), raw(5, b'{"a":"\\u0000\xff"}\x00\n')]
    store.begin_run(run, entries[:3])
    store.append(run.run_id, "owner-a", entries[3:])
    assert store.read(run.run_id) == blobs(entries)


def test_one_megabyte_entries_round_trip(store: LedgerStore) -> None:
    run = info()
    big = ledger(run.run_id, 3, payload={"blob": os.urandom(500_000).hex()})
    assert all(len(e) > 1_000_000 for _, e, _ in big[1:])
    store.begin_run(run, big[:2])
    store.append(run.run_id, "owner-a", big[2:])
    assert store.read(run.run_id) == blobs(big)
    assert store.get_run(run.run_id).head == big[-1][2].hex()


def test_read_returns_seqs_from_start_up_to_end_like_a_slice(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 10)
    store.begin_run(run, entries)
    data = blobs(entries)
    assert store.read(run.run_id, 3) == data[3:]
    assert store.read(run.run_id, 3, 7) == data[3:7]
    assert store.read(run.run_id, 0, 100) == data
    assert store.read(run.run_id, 10) == []
    assert store.read(run.run_id, 7, 3) == []
    assert store.read(run.run_id, -2) == data[-2:]
    assert store.read(run.run_id, 1, -1) == data[1:-1]


def test_run_without_events_reads_as_empty_list(store: LedgerStore) -> None:
    run = begun(store)
    assert store.read(run.run_id) == []
    assert store.get_run(run.run_id).event_count == 0
    assert store.get_run(run.run_id).head is None


# --------------------------------------------------------------------------- unknown/existing runs


def test_unknown_run_raises_run_not_found_for_every_operation(store: LedgerStore) -> None:
    with pytest.raises(RunNotFoundError, match="run-missing"):
        store.get_run("run-missing")
    with pytest.raises(RunNotFoundError, match="run-missing"):
        store.read("run-missing")
    with pytest.raises(RunNotFoundError, match="run-missing"):
        store.append("run-missing", "owner-a", ledger("run-missing", 1))
    with pytest.raises(RunNotFoundError, match="run-missing"):
        store.execute(ClaimRun(run_id="run-missing", expected=None, owner="b", now_us=T0))
    with pytest.raises(RunNotFoundError):
        store.claim("run-missing", "owner-b")
    assert not store.has_run("run-missing")


def test_begin_of_existing_run_raises_conflict_and_keeps_the_original(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 3)
    store.begin_run(run, entries)
    with pytest.raises(RunConflictError, match="already exists"):
        store.begin_run(info(run.run_id, owner="owner-b", workload_name="other"), entries[:1])
    assert store.get_run(run.run_id).owner == "owner-a"
    assert store.get_run(run.run_id).workload_name == "wl"
    assert store.read(run.run_id) == blobs(entries)
    assert store.has_run(run.run_id)


@pytest.mark.parametrize("seqs", [[1, 2], [0, 2], [0, 1, 1]])
def test_begin_with_seqs_not_contiguous_from_zero_writes_nothing(
    store: LedgerStore, seqs: list[int]
) -> None:
    run = info()
    with pytest.raises(RunConflictError, match="expected seq"):
        store.begin_run(run, [raw(s, b"e%d" % i) for i, s in enumerate(seqs)])
    assert not store.has_run(run.run_id)


# --------------------------------------------------------------------------- appends


@pytest.mark.parametrize("first", [2, 4, 0])
def test_append_not_at_the_next_seq_raises_conflict_and_writes_nothing(
    store: LedgerStore, first: int
) -> None:
    run = info()
    entries = ledger(run.run_id, 3)
    store.begin_run(run, entries)
    before = store.get_run(run.run_id)
    with pytest.raises(RunConflictError, match=f"expected seq 3, got {first}"):
        store.append(run.run_id, "owner-a", [raw(first, b"x"), raw(first + 1, b"y")])
    assert store.read(run.run_id) == blobs(entries)
    after = store.get_run(run.run_id)
    assert (after.event_count, after.head) == (before.event_count, before.head)


def test_append_with_a_gap_inside_the_batch_is_atomic(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 8)
    store.begin_run(run, entries[:3])
    batch = [*entries[3:5], entries[6]]
    with pytest.raises(RunConflictError, match="expected seq 5, got 6"):
        store.append(run.run_id, "owner-a", batch, status="completed", release=True)
    assert store.read(run.run_id) == blobs(entries[:3])
    after = store.get_run(run.run_id)
    assert (after.event_count, after.status, after.owner) == (3, "running", "owner-a")
    store.append(run.run_id, "owner-a", entries[3:])
    assert store.read(run.run_id) == blobs(entries)


def batch_of(entries: list[Entry]) -> EntryBatch:
    """``entries`` the way the runtime's writer hands them over (behind their 0x00 byte)."""
    return EntryBatch(entries[0][0], [b"\x00" + e for _, e, _ in entries], [h for *_, h in entries])


def test_an_entry_batch_is_stored_like_the_triples_it_reads_as(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 40)
    store.begin_run(run, batch_of(entries[:5]))
    store.append(run.run_id, "owner-a", batch_of(entries[5:]), status="completed", release=True)
    assert store.read(run.run_id) == blobs(entries)
    after = store.get_run(run.run_id)
    assert (after.event_count, after.head) == (40, entries[-1][2].hex())


def test_an_entry_batch_at_the_wrong_seq_is_refused(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 6)
    store.begin_run(run, entries[:3])
    with pytest.raises(RunConflictError, match="expected seq 3, got 4"):
        store.append(run.run_id, "owner-a", batch_of(entries[4:]))
    assert store.read(run.run_id) == blobs(entries[:3])


def test_append_by_another_owner_raises_conflict_and_writes_nothing(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 4)
    store.begin_run(run, entries[:2])
    with pytest.raises(RunConflictError, match="held by 'owner-a', not 'owner-b'"):
        store.append(run.run_id, "owner-b", entries[2:], status="failed")
    assert store.read(run.run_id) == blobs(entries[:2])
    assert store.get_run(run.run_id).status == "running"


def test_release_clears_owner_and_refuses_later_appends(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 4)
    store.begin_run(run, entries[:2])
    store.append(run.run_id, "owner-a", entries[2:3], release=True)
    assert store.get_run(run.run_id).owner is None
    with pytest.raises(RunConflictError, match="held by None"):
        store.append(run.run_id, "owner-a", entries[3:])
    assert store.get_run(run.run_id).event_count == 3


def test_status_and_finished_us_change_only_when_given(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 5)
    store.begin_run(run, entries[:1])
    store.append(run.run_id, "owner-a", entries[1:2])
    got = store.get_run(run.run_id)
    assert (got.status, got.finished_us) == ("running", None)
    store.append(run.run_id, "owner-a", entries[2:3], status="interrupted")
    assert store.get_run(run.run_id).status == "interrupted"
    store.append(run.run_id, "owner-a", entries[3:4], finished_us=T0 + 99)
    got = store.get_run(run.run_id)
    assert (got.status, got.finished_us) == ("interrupted", T0 + 99)
    assert got.finished_at is not None
    assert got.finished_at.year == 2026
    store.append(run.run_id, "owner-a", entries[4:], status="completed", release=True)
    got = store.get_run(run.run_id)
    assert (got.status, got.finished_us, got.owner) == ("completed", T0 + 99, None)


def test_head_is_hex_leaf_hash_of_last_entry_and_event_count_counts(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 6)
    store.begin_run(run, entries[:2])
    assert store.get_run(run.run_id).head == entries[1][2].hex()
    assert store.get_run(run.run_id).event_count == 2
    store.append(run.run_id, "owner-a", entries[2:])
    assert store.get_run(run.run_id).head == entries[-1][2].hex()
    assert store.get_run(run.run_id).event_count == 6
    store.append(run.run_id, "owner-a", [], status="stopped")
    got = store.get_run(run.run_id)
    assert (got.head, got.event_count, got.status) == (entries[-1][2].hex(), 6, "stopped")


def test_run_info_fields_round_trip(store: LedgerStore) -> None:
    run = info(
        "run-fields-\u00e9\u4e2d",
        workload_name="research team \u00fc",
        status="interrupted",
        finished_us=T0 + 5,
        parent_run_id="run-parent",
        started_us=T0 + 1,
    )
    store.begin_run(run, [])
    assert store.get_run(run.run_id) == run
    assert store.get_run(run.run_id).to_dict() == run.to_dict()


def test_append_refreshes_the_heartbeat(store: LedgerStore) -> None:
    run = begun(store)
    store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-a", now_us=T0))
    before = now_us()
    store.append(run.run_id, "owner-a", ledger(run.run_id, 1))
    heartbeat = store.get_run(run.run_id).heartbeat_us
    assert heartbeat is not None
    assert before <= heartbeat <= now_us()


# --------------------------------------------------------------------------- listing


def test_runs_are_listed_newest_first_with_ties_by_run_id_descending(store: LedgerStore) -> None:
    for run_id, started in [("run-b", 2), ("run-a", 3), ("run-c", 1), ("run-d", 3), ("run-Z", 3)]:
        begun(store, run_id=run_id, started_us=T0 + started)
    assert [r.run_id for r in store.runs()] == ["run-d", "run-a", "run-Z", "run-b", "run-c"]


def test_runs_filter_by_status_and_workload_and_honour_limit(store: LedgerStore) -> None:
    for i, (status, workload) in enumerate(
        [("running", "alpha"), ("completed", "alpha"), ("completed", "beta"), ("failed", "alpha")]
    ):
        begun(store, run_id=f"run-{i}", started_us=T0 + i, status=status, workload_name=workload)
    assert [r.run_id for r in store.runs(status="completed")] == ["run-2", "run-1"]
    assert [r.run_id for r in store.runs(workload_name="alpha")] == ["run-3", "run-1", "run-0"]
    assert [r.run_id for r in store.runs(status="completed", workload_name="alpha")] == ["run-1"]
    assert [r.run_id for r in store.runs(limit=2)] == ["run-3", "run-2"]
    assert [r.run_id for r in store.runs(workload_name="alpha", limit=1)] == ["run-3"]
    assert store.runs(limit=0) == []
    assert len(store.runs(limit=100)) == 4
    assert store.runs(status="stopped") == []
    assert store.runs()[0] == store.get_run("run-3")


# --------------------------------------------------------------------------- claims and leases


def test_claim_succeeds_when_the_expected_owner_still_holds_the_run(store: LedgerStore) -> None:
    run = begun(store, status="interrupted")
    claimed = store.execute(
        ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0 + 7)
    )
    assert (claimed.owner, claimed.heartbeat_us, claimed.status) == ("owner-b", T0 + 7, "running")
    assert store.get_run(run.run_id) == claimed


def test_claim_of_a_released_run_expects_no_owner(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 2)
    store.begin_run(run, entries[:1])
    store.append(run.run_id, "owner-a", entries[1:], status="interrupted", release=True)
    claimed = store.execute(
        ClaimRun(run_id=run.run_id, expected=None, owner="owner-b", now_us=T0 + 1)
    )
    assert (claimed.owner, claimed.status, claimed.event_count) == ("owner-b", "running", 2)
    store.append(run.run_id, "owner-b", ledger(run.run_id, 3)[2:])
    assert store.get_run(run.run_id).event_count == 3


def test_claim_fails_when_the_owner_changed_and_leaves_the_run_as_is(store: LedgerStore) -> None:
    run = begun(store)
    with pytest.raises(RunConflictError, match="owner-a"):
        store.execute(ClaimRun(run_id=run.run_id, expected=None, owner="owner-b", now_us=T0))
    with pytest.raises(RunConflictError):
        store.execute(ClaimRun(run_id=run.run_id, expected="owner-x", owner="owner-b", now_us=T0))
    assert store.get_run(run.run_id) == run


def test_claim_with_an_event_count_fails_when_the_run_has_grown(store: LedgerStore) -> None:
    """A resume claims the run as it read it: if the run holds more events by now (another
    process went on with it), the claim is refused and the run is left as it is."""
    run = info()
    entries = ledger(run.run_id, 3)
    store.begin_run(run, entries[:1])
    store.append(run.run_id, "owner-a", entries[1:], status="interrupted", release=True)
    before = store.get_run(run.run_id)
    with pytest.raises(RunConflictError, match="holds 3 events, not the 2 read"):
        store.claim(run.run_id, "owner-b", event_count=2)
    assert store.get_run(run.run_id) == before
    claimed = store.claim(run.run_id, "owner-b", event_count=3)
    assert (claimed.owner, claimed.event_count) == ("owner-b", 3)


def test_lease_claim_refuses_a_live_owner(store: LedgerStore) -> None:
    """A run executing in this process (held), or recently heartbeating elsewhere, is refused."""
    here = f"{socket.gethostname()}:{os.getpid()}:abc"
    mine = new_owner()
    hold(here)
    hold(mine)
    try:
        for owner in (mine, here, "other-host:1:abc"):
            run = begun(store, owner=owner, started_us=now_us())
            with pytest.raises(RunConflictError, match="is being executed by"):
                store.claim(run.run_id, "owner-new")
            assert store.get_run(run.run_id).owner == owner
    finally:
        release(here)
        release(mine)


def test_lease_of_this_process_that_no_longer_executes_the_run_is_stale(
    store: LedgerStore,
) -> None:
    """A run this process started but stopped executing (its store failed before the lease
    could be released) can be taken over at once, from this very process."""
    run = begun(store, owner=new_owner(), started_us=now_us())
    claimed = store.claim(run.run_id, "owner-new")
    assert claimed.owner == "owner-new"


def test_lease_claim_takes_over_an_owner_whose_process_is_gone(store: LedgerStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}:abc"
    run = begun(store, owner=dead, started_us=now_us())
    claimed = store.claim(run.run_id, "owner-new")
    assert (claimed.owner, claimed.status) == ("owner-new", "running")
    assert store.get_run(run.run_id).owner == "owner-new"


def test_lease_claim_takes_over_an_owner_whose_heartbeat_expired(store: LedgerStore) -> None:
    """Another host's owner whose last heartbeat is older than the lease TTL is presumed gone."""
    beat = now_us() - 61_000_000
    run = replace(info(owner="other-host:1:abc"), heartbeat_us=beat, started_us=beat)
    store.begin_run(run, [])
    claimed = store.claim(run.run_id, "owner-new", ttl_s=60.0)
    assert (claimed.owner, claimed.status) == ("owner-new", "running")
    assert claimed.heartbeat_us is not None
    assert claimed.heartbeat_us > beat


def test_lease_claim_by_the_current_owner_returns_the_run_unchanged(store: LedgerStore) -> None:
    run = begun(store, owner="owner-a")
    assert store.claim(run.run_id, "owner-a") == store.get_run(run.run_id)


def test_claimed_run_takes_appends_only_from_its_new_owner(store: LedgerStore) -> None:
    run = info()
    entries = ledger(run.run_id, 4)
    store.begin_run(run, entries[:2])
    store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0))
    with pytest.raises(RunConflictError, match="another process took it over"):
        store.append(run.run_id, "owner-a", entries[2:])
    store.append(run.run_id, "owner-b", entries[2:], status="completed", release=True)
    assert store.read(run.run_id) == blobs(entries)


# --------------------------------------------------------------------------- async twins


def test_async_twins_return_what_the_sync_methods_return(store: LedgerStore) -> None:
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


def test_async_twins_raise_the_same_errors(store: LedgerStore) -> None:
    with pytest.raises(RunNotFoundError):
        asyncio.run(store.aget_run("run-missing"))
    with pytest.raises(RunNotFoundError):
        asyncio.run(store.aread("run-missing"))


# --------------------------------------------------------------------------- threads


def test_threads_can_write_different_runs_through_one_store(store: LedgerStore) -> None:
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


def test_racing_appends_of_the_same_seq_let_exactly_one_win(store: LedgerStore) -> None:
    run = begun(store)
    for seq in range(5):
        assert race(store, run.run_id, seq, contenders=4) == ["lost", "lost", "lost", "won"]
    assert store.get_run(run.run_id).event_count == 5
    assert len(store.read(run.run_id)) == 5


# --------------------------------------------------------------------------- append-only tables


def raw_sql(store: LedgerStore, sql: str) -> None:
    """Run ``sql`` through the backend's own connection, outside the store's API."""
    from codon_sdk.stores._sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        with store._lock:
            store._connection().execute(sql)
        return
    with store._pool.connection() as pg:  # type: ignore[attr-defined]
        pg.execute(sql)


def refusal(store: LedgerStore) -> type[Exception]:
    """The driver's exception for a statement an append-only trigger refused."""
    from codon_sdk.stores._sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        import sqlite3

        return sqlite3.IntegrityError
    from psycopg import errors

    return errors.RaiseException


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE codon_events SET entry = entry || 'x'",
        "UPDATE codon_events SET seq = seq + 100 WHERE seq = 1",
        "DELETE FROM codon_events WHERE seq = 1",
        "DELETE FROM codon_events",
    ],
)
def test_the_database_refuses_to_update_or_delete_events(sql_store: LedgerStore, sql: str) -> None:
    run = info()
    entries = ledger(run.run_id, 3)
    sql_store.begin_run(run, entries)
    expected = refusal(sql_store)
    with pytest.raises(expected, match="append-only"):
        raw_sql(sql_store, sql)
    assert sql_store.read(run.run_id) == blobs(entries)


# --------------------------------------------------------------------------- EntryBatch


def test_entry_batch_reads_as_a_sequence_of_triples() -> None:
    entries = ledger("run", 5)
    batch = batch_of(entries)
    assert len(batch) == 5
    assert list(batch) == entries
    assert [batch[k] for k in range(5)] == entries
    assert (batch[-1], batch[1:4], batch[::-2]) == (entries[-1], entries[1:4], entries[::-2])
    with pytest.raises(IndexError):
        batch[5]
    with pytest.raises(ValueError, match="2 entries but 1 leaf hashes"):
        EntryBatch(0, [b"\x00{}", b"\x00[]"], [b"h" * 32])
