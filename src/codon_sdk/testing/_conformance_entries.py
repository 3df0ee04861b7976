"""Store conformance, part one: entries round trip, appends are atomic, runs are listed.

Every check pins down one of the guarantees listed in ``codon_sdk.stores.LedgerStore``'s
module, or the result of one operation, with :class:`~codon_sdk.stores.MemoryStore` as
the reference.
"""

from __future__ import annotations

import os

import pytest

from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.stores import ClaimRun, LedgerStore
from codon_sdk.testing._store_kit import (
    EVERY_BYTE,
    T0,
    batch_of,
    begun,
    blobs,
    info,
    ledger,
    now_us,
    raw,
)

__all__ = ["EntryConformance"]


class EntryConformance:
    """Round trips, unknown and existing runs, appends, the runs index and listing."""

    def test_begin_and_appends_read_back_byte_for_byte(self, store: LedgerStore) -> None:
        run = info("run-roundtrip")
        entries = ledger(run.run_id, 12)
        store.begin_run(run, entries[:1])
        store.append(run.run_id, "owner-a", entries[1:5])
        store.append(run.run_id, "owner-a", entries[5:])
        got = store.read(run.run_id)
        assert got == blobs(entries)
        assert all(type(e) is bytes for e in got)

    def test_every_byte_value_round_trips_verbatim(self, store: LedgerStore) -> None:
        """JSON strings holding U+0000..U+00FF and opaque non-JSON bytes come back unchanged."""
        run = info()
        entries = ledger(run.run_id, 3)
        entries += [raw(3, EVERY_BYTE * 4), raw(4, b"\x00"), raw(5, b'{"a":"\\u0000\xff"}\x00\n')]
        store.begin_run(run, entries[:3])
        store.append(run.run_id, "owner-a", entries[3:])
        assert store.read(run.run_id) == blobs(entries)

    def test_one_megabyte_entries_round_trip(self, store: LedgerStore) -> None:
        run = info()
        big = ledger(run.run_id, 3, payload={"blob": os.urandom(500_000).hex()})
        assert all(len(e) > 1_000_000 for _, e, _ in big[1:])
        store.begin_run(run, big[:2])
        store.append(run.run_id, "owner-a", big[2:])
        assert store.read(run.run_id) == blobs(big)
        assert store.get_run(run.run_id).head == big[-1][2].hex()

    def test_read_returns_seqs_from_start_up_to_end_like_a_slice(self, store: LedgerStore) -> None:
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

    def test_run_without_events_reads_as_empty_list(self, store: LedgerStore) -> None:
        run = begun(store)
        assert store.read(run.run_id) == []
        assert store.get_run(run.run_id).event_count == 0
        assert store.get_run(run.run_id).head is None

    def test_unknown_run_raises_run_not_found_for_every_operation(self, store: LedgerStore) -> None:
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

    def test_begin_of_existing_run_raises_conflict_and_keeps_the_original(
        self, store: LedgerStore
    ) -> None:
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
        self, store: LedgerStore, seqs: list[int]
    ) -> None:
        run = info()
        with pytest.raises(RunConflictError, match="expected seq"):
            store.begin_run(run, [raw(s, b"e%d" % i) for i, s in enumerate(seqs)])
        assert not store.has_run(run.run_id)

    @pytest.mark.parametrize("first", [2, 4, 0])
    def test_append_not_at_the_next_seq_raises_conflict_and_writes_nothing(
        self, store: LedgerStore, first: int
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

    def test_append_with_a_gap_inside_the_batch_is_atomic(self, store: LedgerStore) -> None:
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

    def test_an_entry_batch_is_stored_like_the_triples_it_reads_as(
        self, store: LedgerStore
    ) -> None:
        run = info()
        entries = ledger(run.run_id, 40)
        store.begin_run(run, batch_of(entries[:5]))
        store.append(run.run_id, "owner-a", batch_of(entries[5:]), status="completed", release=True)
        assert store.read(run.run_id) == blobs(entries)
        after = store.get_run(run.run_id)
        assert (after.event_count, after.head) == (40, entries[-1][2].hex())

    def test_an_entry_batch_at_the_wrong_seq_is_refused(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 6)
        store.begin_run(run, entries[:3])
        with pytest.raises(RunConflictError, match="expected seq 3, got 4"):
            store.append(run.run_id, "owner-a", batch_of(entries[4:]))
        assert store.read(run.run_id) == blobs(entries[:3])

    def test_append_by_another_owner_raises_conflict_and_writes_nothing(
        self, store: LedgerStore
    ) -> None:
        run = info()
        entries = ledger(run.run_id, 4)
        store.begin_run(run, entries[:2])
        with pytest.raises(RunConflictError, match="held by 'owner-a', not 'owner-b'"):
            store.append(run.run_id, "owner-b", entries[2:], status="failed")
        assert store.read(run.run_id) == blobs(entries[:2])
        assert store.get_run(run.run_id).status == "running"

    def test_release_clears_owner_and_refuses_later_appends(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 4)
        store.begin_run(run, entries[:2])
        store.append(run.run_id, "owner-a", entries[2:3], release=True)
        assert store.get_run(run.run_id).owner is None
        with pytest.raises(RunConflictError, match="held by None"):
            store.append(run.run_id, "owner-a", entries[3:])
        assert store.get_run(run.run_id).event_count == 3

    def test_status_and_finished_us_change_only_when_given(self, store: LedgerStore) -> None:
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

    def test_head_is_hex_leaf_hash_of_last_entry_and_event_count_counts(
        self, store: LedgerStore
    ) -> None:
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

    def test_run_info_fields_round_trip(self, store: LedgerStore) -> None:
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

    def test_append_refreshes_the_heartbeat(self, store: LedgerStore) -> None:
        run = begun(store)
        store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-a", now_us=T0))
        before = now_us()
        store.append(run.run_id, "owner-a", ledger(run.run_id, 1))
        heartbeat = store.get_run(run.run_id).heartbeat_us
        assert heartbeat is not None
        assert before <= heartbeat <= now_us()

    def test_runs_are_listed_newest_first_with_ties_by_run_id_descending(
        self, store: LedgerStore
    ) -> None:
        for run_id, started in [
            ("run-b", 2),
            ("run-a", 3),
            ("run-c", 1),
            ("run-d", 3),
            ("run-Z", 3),
        ]:
            begun(store, run_id=run_id, started_us=T0 + started)
        assert [r.run_id for r in store.runs()] == ["run-d", "run-a", "run-Z", "run-b", "run-c"]

    def test_runs_filter_by_status_and_workload_and_honour_limit(self, store: LedgerStore) -> None:
        for i, (status, workload) in enumerate(
            [
                ("running", "alpha"),
                ("completed", "alpha"),
                ("completed", "beta"),
                ("failed", "alpha"),
            ]
        ):
            begun(
                store, run_id=f"run-{i}", started_us=T0 + i, status=status, workload_name=workload
            )
        assert [r.run_id for r in store.runs(status="completed")] == ["run-2", "run-1"]
        assert [r.run_id for r in store.runs(workload_name="alpha")] == ["run-3", "run-1", "run-0"]
        assert [r.run_id for r in store.runs(status="completed", workload_name="alpha")] == [
            "run-1"
        ]
        assert [r.run_id for r in store.runs(limit=2)] == ["run-3", "run-2"]
        assert [r.run_id for r in store.runs(workload_name="alpha", limit=1)] == ["run-3"]
        assert store.runs(limit=0) == []
        assert len(store.runs(limit=100)) == 4
        assert store.runs(status="stopped") == []
        assert store.runs()[0] == store.get_run("run-3")
