"""Store conformance, part two: claims, leases and fencing.

A run's holder declares its lease period (``RunInfo.lease_us``) and keeps the
lease with ``RenewLease``; only the holder may renew or append (fencing), and a
claimant judges the holder by the lease the holder declared.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace

import pytest

from codon_sdk.errors import LeaseLostError, RunConflictError, RunNotFoundError
from codon_sdk.stores import ClaimRun, LedgerStore, RenewLease, hold, new_owner, release
from codon_sdk.testing._store_kit import T0, begun, blobs, info, ledger, now_us

__all__ = ["LeaseConformance"]


class LeaseConformance:
    """Claims (compare-and-set of the owner), leases and fencing."""

    def test_claim_succeeds_when_the_expected_owner_still_holds_the_run(
        self, store: LedgerStore
    ) -> None:
        run = begun(store, status="interrupted")
        claimed = store.execute(
            ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0 + 7)
        )
        assert (claimed.owner, claimed.heartbeat_us, claimed.status) == (
            "owner-b",
            T0 + 7,
            "running",
        )
        assert store.get_run(run.run_id) == claimed

    def test_claim_of_a_released_run_expects_no_owner(self, store: LedgerStore) -> None:
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

    def test_claim_fails_when_the_owner_changed_and_leaves_the_run_as_is(
        self, store: LedgerStore
    ) -> None:
        run = begun(store)
        with pytest.raises(RunConflictError, match="owner-a"):
            store.execute(ClaimRun(run_id=run.run_id, expected=None, owner="owner-b", now_us=T0))
        with pytest.raises(RunConflictError):
            store.execute(
                ClaimRun(run_id=run.run_id, expected="owner-x", owner="owner-b", now_us=T0)
            )
        assert store.get_run(run.run_id) == run

    def test_claim_with_an_event_count_fails_when_the_run_has_grown(
        self, store: LedgerStore
    ) -> None:
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

    def test_lease_claim_refuses_a_live_owner(self, store: LedgerStore) -> None:
        """A run executing in this process (held), or recently heartbeating elsewhere, is
        refused."""
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
        self,
        store: LedgerStore,
    ) -> None:
        """A run this process started but stopped executing (its store failed before the lease
        could be released) can be taken over at once, from this very process."""
        run = begun(store, owner=new_owner(), started_us=now_us())
        claimed = store.claim(run.run_id, "owner-new")
        assert claimed.owner == "owner-new"

    def test_lease_claim_takes_over_an_owner_whose_process_is_gone(
        self, store: LedgerStore
    ) -> None:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        dead = f"{socket.gethostname()}:{child.pid}:abc"
        run = begun(store, owner=dead, started_us=now_us())
        claimed = store.claim(run.run_id, "owner-new")
        assert (claimed.owner, claimed.status) == ("owner-new", "running")
        assert store.get_run(run.run_id).owner == "owner-new"

    def test_lease_claim_takes_over_an_owner_whose_heartbeat_expired(
        self, store: LedgerStore
    ) -> None:
        """Another host's owner whose last heartbeat is older than the lease TTL is presumed
        gone."""
        beat = now_us() - 61_000_000
        run = replace(info(owner="other-host:1:abc"), heartbeat_us=beat, started_us=beat)
        store.begin_run(run, [])
        claimed = store.claim(run.run_id, "owner-new", ttl_s=60.0)
        assert (claimed.owner, claimed.status) == ("owner-new", "running")
        assert claimed.heartbeat_us is not None
        assert claimed.heartbeat_us > beat

    def test_lease_claim_by_the_current_owner_returns_the_run_unchanged(
        self, store: LedgerStore
    ) -> None:
        run = begun(store, owner="owner-a")
        assert store.claim(run.run_id, "owner-a") == store.get_run(run.run_id)

    def test_claimed_run_takes_appends_only_from_its_new_owner(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 4)
        store.begin_run(run, entries[:2])
        store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0))
        with pytest.raises(RunConflictError, match="another process took it over"):
            store.append(run.run_id, "owner-a", entries[2:])
        store.append(run.run_id, "owner-b", entries[2:], status="completed", release=True)
        assert store.read(run.run_id) == blobs(entries)

    def test_renew_lease_refreshes_only_the_heartbeat_of_the_holder(
        self, store: LedgerStore
    ) -> None:
        run = begun(store, ledger("run-renew", 3), run_id="run-renew")
        before = store.get_run(run.run_id)
        store.execute(RenewLease(run_id=run.run_id, owner="owner-a", now_us=T0 + 5))
        assert store.get_run(run.run_id) == replace(before, heartbeat_us=T0 + 5)

    def test_renew_lease_by_an_owner_that_was_taken_over_raises_lease_lost_naming_the_holder(
        self,
        store: LedgerStore,
    ) -> None:
        run = begun(store)
        store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0))
        with pytest.raises(LeaseLostError, match="'owner-b' holds it now") as caught:
            store.execute(RenewLease(run_id=run.run_id, owner="owner-a", now_us=T0 + 9))
        assert "stop working on this run" in str(caught.value)
        assert isinstance(caught.value, RunConflictError)
        assert store.get_run(run.run_id).heartbeat_us == T0

    def test_renew_lease_of_a_released_run_raises_lease_lost(self, store: LedgerStore) -> None:
        run = info()
        entries = ledger(run.run_id, 2)
        store.begin_run(run, entries[:1])
        store.append(run.run_id, "owner-a", entries[1:], status="interrupted", release=True)
        with pytest.raises(LeaseLostError, match="nobody holds it now"):
            store.renew_lease(run.run_id, "owner-a")
        assert store.get_run(run.run_id).owner is None

    def test_renew_lease_of_an_unknown_run_raises_run_not_found(self, store: LedgerStore) -> None:
        with pytest.raises(RunNotFoundError, match="run-missing"):
            store.execute(RenewLease(run_id="run-missing", owner="owner-a", now_us=T0))

    def test_an_append_by_an_owner_that_lost_the_run_raises_lease_lost_and_writes_nothing(
        self,
        store: LedgerStore,
    ) -> None:
        """Fencing: the former owner's append is refused however late it comes."""
        run = info()
        entries = ledger(run.run_id, 4)
        store.begin_run(run, entries[:2])
        store.execute(ClaimRun(run_id=run.run_id, expected="owner-a", owner="owner-b", now_us=T0))
        store.append(run.run_id, "owner-b", entries[2:3])
        with pytest.raises(LeaseLostError, match="held by 'owner-b', not 'owner-a'"):
            store.append(run.run_id, "owner-a", entries[3:], status="completed", release=True)
        got = store.get_run(run.run_id)
        assert (got.owner, got.event_count, got.status) == ("owner-b", 3, "running")
        assert store.read(run.run_id) == blobs(entries[:3])

    def test_the_declared_lease_round_trips_and_a_claim_records_the_claimants(
        self,
        store: LedgerStore,
    ) -> None:
        run = begun(store, lease_us=5_000_000, status="interrupted")
        assert store.get_run(run.run_id).lease_us == 5_000_000
        claimed = store.execute(
            ClaimRun(
                run_id=run.run_id,
                expected="owner-a",
                owner="owner-b",
                now_us=T0,
                lease_us=7_000_000,
            )
        )
        assert claimed.lease_us == 7_000_000
        assert store.get_run(run.run_id) == claimed
        again = store.execute(ClaimRun(run_id=run.run_id, expected="owner-b", owner="c", now_us=T0))
        assert again.lease_us is None
        assert store.get_run(run.run_id).lease_us is None

    def test_a_holder_is_judged_by_the_lease_it_declared(self, store: LedgerStore) -> None:
        """Three seconds without a heartbeat: stale under a 2 s lease (though the default is 60 s);
        61 s without one: still live under a 120 s lease."""
        short = begun(store, owner="other-host:1:abc", lease_us=2_000_000)
        store.execute(
            RenewLease(run_id=short.run_id, owner="other-host:1:abc", now_us=now_us() - 3_000_000)
        )
        claimed = store.claim(short.run_id, "owner-new", lease_us=9_000_000)
        assert (claimed.owner, claimed.lease_us) == ("owner-new", 9_000_000)

        long = begun(store, owner="other-host:1:abc", lease_us=120_000_000)
        beat = now_us() - 61_000_000
        store.execute(RenewLease(run_id=long.run_id, owner="other-host:1:abc", now_us=beat))
        with pytest.raises(RunConflictError, match=r"is being executed by .*lease 120s"):
            store.claim(long.run_id, "owner-new")
        assert store.get_run(long.run_id).owner == "other-host:1:abc"

    def test_a_renewed_lease_keeps_a_claimant_out(self, store: LedgerStore) -> None:
        run = begun(store, owner="other-host:1:abc", lease_us=2_000_000)
        store.execute(
            RenewLease(run_id=run.run_id, owner="other-host:1:abc", now_us=now_us() - 3_000_000)
        )
        store.renew_lease(run.run_id, "other-host:1:abc")
        with pytest.raises(RunConflictError, match="is being executed by"):
            store.claim(run.run_id, "owner-new")

    @pytest.mark.parametrize("stored", [0, -5])
    def test_a_stored_lease_that_is_not_positive_counts_as_the_default(
        self, store: LedgerStore, stored: int
    ) -> None:
        """The runs row is read back from a database: a lease of 0 or below means the default."""
        run = begun(store, owner="other-host:1:abc", lease_us=stored)
        with pytest.raises(RunConflictError, match="lease 60s"):
            store.claim(run.run_id, "owner-new")
