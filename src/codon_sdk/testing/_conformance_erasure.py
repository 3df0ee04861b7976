"""Store conformance, erasure and retention (schema 9): subject tags, legal holds, retention
policies and :class:`~codon_sdk.stores.EraseEvents`, with
:class:`~codon_sdk.stores.MemoryStore` as the reference. Not part of
:class:`~codon_sdk.testing.StoreConformance`: a plug-in store that erases adds it."""

from __future__ import annotations

import pytest

from codon_sdk.errors import RunConflictError, RunHeldError
from codon_sdk.ledger import check_chain
from codon_sdk.stores import (
    FindSubject,
    LedgerStore,
    erase_run,
    erasure_log,
    hold,
    hold_run,
    legal_holds,
    new_owner,
    release,
    release_run,
    retention_policies,
    set_retention,
    tag_subject,
)
from codon_sdk.testing._store_kit import begun, ledger

__all__ = ["ErasureConformance"]


def _ended(store: LedgerStore, n: int = 5) -> str:
    run = begun(store, [])
    store.append(run.run_id, "owner-a", ledger(run.run_id, n), status="completed", release=True)
    return run.run_id


class ErasureConformance:
    """What erasure asks of a store: tags found, holds and policies kept, stand-ins in place."""

    def test_subject_tags_are_found_per_subject(self, store: LedgerStore) -> None:
        tag_subject(store, "s1", "run-a")
        tag_subject(store, "s1", "run-b", 3)
        tag_subject(store, "s1", "run-b", 3)  # twice: one row
        tag_subject(store, "s2", "run-c")
        assert store.execute(FindSubject("s1")) == [("run-a", -1), ("run-b", 3)]
        assert store.execute(FindSubject("nobody")) == []

    def test_holds_and_policies_round_trip(self, store: LedgerStore) -> None:
        run_id = _ended(store)
        assert hold_run(store, run_id, reason="case", actor="counsel") is True
        assert hold_run(store, run_id, reason="again", actor="counsel") is False
        assert [(h.run_id, h.reason) for h in legal_holds(store)] == [(run_id, "case")]
        assert release_run(store, run_id) is True
        assert release_run(store, run_id) is False
        set_retention(store, "wl", 30)
        set_retention(store, "wl", 60)
        assert retention_policies(store) == [("wl", 60)]
        set_retention(store, "wl", None)
        assert retention_policies(store) == []

    def test_erased_events_keep_the_chain_and_are_logged(self, store: LedgerStore) -> None:
        run_id = _ended(store)
        before = store.read(run_id)
        done = erase_run(store, run_id, reason="test", actor="ops", seqs=[1, 3])
        after = store.read(run_id)
        assert done.seqs == (1, 3)
        assert [after[s] == before[s] for s in range(5)] == [True, False, True, False, True]
        log = erasure_log(store)
        assert not log.problems
        assert sorted(log.of(run_id)) == [1, 3]
        assert check_chain(after, run_id=run_id, permits=log.of(run_id)).ok
        assert not check_chain(after, run_id=run_id).ok  # without the log: forged
        assert store.get_run(run_id).head == check_chain(before).head  # the index holds

    def test_a_held_or_changed_run_is_not_erased(self, store: LedgerStore) -> None:
        run_id = _ended(store)
        hold_run(store, run_id, reason="case", actor="counsel")
        with pytest.raises(RunHeldError):
            erase_run(store, run_id, reason="test", actor="ops")
        owner = new_owner()
        running = begun(store, [], owner=owner).run_id
        store.append(running, owner, ledger(running, 3))
        hold(owner)  # this process executes it: its lease is live
        try:
            with pytest.raises(RunConflictError, match="running"):
                erase_run(store, running, reason="test", actor="ops")
        finally:
            release(owner)
        assert erasure_log(store).lines == 0
