"""Store conformance: a run begun and ended in one operation (``BeginRun.then``).

An ``exit``-durability run is written once, when it ends: its row, its events, its start
line and its end (status, release, checkpoints, finish line). A store whose ``begins_then``
is true carries the ``then`` append out in the begin's transaction: all of it, or, when
any of it is refused, none of it. A store that leaves it false is skipped (the writer then
sends the begin and the append as two operations).
"""

from __future__ import annotations

import pytest

from codon_sdk.errors import RunConflictError
from codon_sdk.ledger import merkle_root
from codon_sdk.stores import AppendEntries, BeginRun, LedgerStore
from codon_sdk.testing._store_kit import T0, blobs, info, ledger

__all__ = ["BeginThenConformance"]


def _end(run_id: str, root: bytes | None, **fields: object) -> AppendEntries:
    return AppendEntries(
        run_id=run_id,
        owner="owner-a",
        entries=[],
        status="completed",
        finished_us=T0 + 99,
        release=True,
        log_root=root,
        **fields,  # type: ignore[arg-type]
    )


def _needs_begins_then(store: LedgerStore) -> None:
    # called by each test here, never an autouse fixture: mixed into one conformance
    # class, a fixture would skip every other mixin's tests too
    if not store.begins_then:
        pytest.skip("this store sends a run's begin and end as two operations")


class BeginThenConformance:
    """``BeginRun(..., then=AppendEntries(...))``: one transaction, all or nothing."""

    def test_a_run_begun_and_ended_at_once_is_whole(self, store: LedgerStore) -> None:
        _needs_begins_then(store)
        run = info()
        entries = ledger(run.run_id, 4)
        root = merkle_root([leaf for *_, leaf in entries])
        note = b"a signed note\n"
        store.execute(
            BeginRun(
                info=run, entries=entries, then=_end(run.run_id, root, checkpoints=[(4, note)])
            )
        )
        got = store.get_run(run.run_id)
        assert (got.status, got.finished_us, got.owner) == ("completed", T0 + 99, None)
        assert (got.event_count, got.head) == (4, entries[-1][2].hex())
        assert store.read(run.run_id) == blobs(entries)
        lines = [line for line in store.runs_log() if line[1] == run.run_id]
        assert [(size, bytes(r)) for _, _, size, r in lines] == [(1, entries[0][2]), (4, root)]
        assert store.checkpoints(run.run_id) == [(4, note)]

    def test_a_taken_run_id_refuses_the_begin_and_its_end(self, store: LedgerStore) -> None:
        _needs_begins_then(store)
        run = info()
        entries = ledger(run.run_id, 3)
        store.begin_run(run, entries[:1])
        log = store.runs_log()
        root = merkle_root([leaf for *_, leaf in entries])
        with pytest.raises(RunConflictError):
            store.execute(BeginRun(info=run, entries=entries, then=_end(run.run_id, root)))
        held = store.get_run(run.run_id)
        assert (held.status, held.owner, held.event_count) == ("running", "owner-a", 1)
        assert store.runs_log() == log

    def test_an_end_that_is_refused_leaves_nothing_of_the_begin(self, store: LedgerStore) -> None:
        """One event is too few for a finish line: the whole operation is refused."""
        _needs_begins_then(store)
        run = info()
        entries = ledger(run.run_id, 1)
        log = store.runs_log()
        with pytest.raises(RunConflictError, match="at least run_started and run_finished"):
            store.execute(BeginRun(info=run, entries=entries, then=_end(run.run_id, b"r" * 32)))
        assert not store.has_run(run.run_id)
        assert store.runs_log() == log

    @pytest.mark.parametrize("wrong", ["entries", "run", "owner"])
    def test_an_end_for_another_run_or_owner_or_with_entries_is_refused(
        self, store: LedgerStore, wrong: str
    ) -> None:
        run = info()
        entries = ledger(run.run_id, 3)
        then = AppendEntries(
            run_id="other" if wrong == "run" else run.run_id,
            owner="owner-b" if wrong == "owner" else "owner-a",
            entries=entries[2:] if wrong == "entries" else [],
            status="completed",
        )
        with pytest.raises(ValueError, match="`then` must be an append without entries"):
            BeginRun(info=run, entries=entries[:2], then=then)
        assert not store.has_run(run.run_id)
