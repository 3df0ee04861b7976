"""Store conformance, listing: every filter of ``LedgerStore.runs``, time bounds and keyset
paging, with :class:`~codon_sdk.stores.MemoryStore` as the reference."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from codon_sdk.errors import RunNotFoundError
from codon_sdk.stores import LedgerStore, RunInfo
from codon_sdk.testing._store_kit import T0, begun

__all__ = ["ListingConformance"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _ids(runs: list[RunInfo]) -> list[str]:
    return [r.run_id for r in runs]


class ListingConformance:
    """Filters by deployment, logic id and parent, a time range, and pages that follow on."""

    def _six(self, store: LedgerStore) -> None:
        for i in range(6):
            begun(
                store,
                run_id=f"run-{i}",
                started_us=T0 + 10 * i,
                status="completed" if i % 2 else "running",
                workload_name="alpha" if i < 3 else "beta",
                logic_id=("a" if i < 4 else "b") * 64,
                deployment_id=f"dep-{i % 3}",
                parent_run_id="run-0" if i in (2, 5) else None,
            )

    def test_runs_filter_by_deployment_logic_id_and_parent(self, store: LedgerStore) -> None:
        self._six(store)
        assert _ids(store.runs(deployment_id="dep-1")) == ["run-4", "run-1"]
        assert _ids(store.runs(logic_id="b" * 64)) == ["run-5", "run-4"]
        assert _ids(store.runs(parent_run_id="run-0")) == ["run-5", "run-2"]
        assert _ids(store.runs(parent_run_id="run-0", workload_name="alpha")) == ["run-2"]
        assert _ids(store.runs(status="completed", logic_id="a" * 64)) == ["run-3", "run-1"]
        assert store.runs(deployment_id="nowhere") == []

    def test_runs_filter_by_a_time_range_from_inclusive_to_exclusive(
        self, store: LedgerStore
    ) -> None:
        self._six(store)
        assert _ids(store.runs(since=_at(T0 + 20))) == ["run-5", "run-4", "run-3", "run-2"]
        assert _ids(store.runs(until=_at(T0 + 20))) == ["run-1", "run-0"]
        assert _ids(store.runs(since=_at(T0 + 10), until=_at(T0 + 31))) == [
            "run-3",
            "run-2",
            "run-1",
        ]
        assert store.runs(since=_at(T0 + 60)) == []

    def test_pages_follow_on_from_the_last_run_of_the_previous_one(
        self, store: LedgerStore
    ) -> None:
        self._six(store)
        begun(store, run_id="run-3b", started_us=T0 + 30)  # a tie with run-3: run ids decide
        seen: list[str] = []
        after = None
        for _ in range(4):  # 7 runs, 3 a page: a store that ignores ``after`` cannot loop
            page = store.runs(limit=3, after=after)
            if not page:
                break
            seen += _ids(page)
            after = page[-1].run_id
        assert seen == _ids(store.runs())
        assert seen == ["run-5", "run-4", "run-3b", "run-3", "run-2", "run-1", "run-0"]
        # with a filter: the page follows the run given even when it does not match
        assert _ids(store.runs(status="completed", after="run-4")) == ["run-3", "run-1"]

    def test_a_page_after_an_unknown_run_is_refused(self, store: LedgerStore) -> None:
        self._six(store)
        with pytest.raises(RunNotFoundError, match="no-such-run"):
            store.runs(after="no-such-run")

    def test_a_naive_time_bound_is_refused(self, store: LedgerStore) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.runs(since=datetime(2026, 1, 1))  # naive: the point of the test
