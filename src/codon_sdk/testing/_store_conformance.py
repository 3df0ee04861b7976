"""The ledger store conformance suite: what every backend must do, as pytest tests.

Subclass :class:`StoreConformance` in a test module, under a name pytest collects
(``Test...``), and say how to open a fresh, empty store::

    class TestMyStore(StoreConformance):
        def make_store(self, tmp_path: Path) -> LedgerStore:
            return open_store(f"mystore:///{tmp_path}/ledger")

Every test of the suite then runs on that backend, each with a store of its own,
closed after it. A backend whose set-up needs other fixtures (a database server)
overrides the ``store`` fixture itself instead. The built-in backends (memory,
SQLite, PostgreSQL) pass the same suite in Codon's own tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk.errors import StorePluginError
from codon_sdk.stores import LedgerStore
from codon_sdk.testing._conformance_approvers import ApproverConformance
from codon_sdk.testing._conformance_begin_then import BeginThenConformance
from codon_sdk.testing._conformance_cache import CacheConformance
from codon_sdk.testing._conformance_entries import EntryConformance
from codon_sdk.testing._conformance_leases import LeaseConformance
from codon_sdk.testing._conformance_listing import ListingConformance
from codon_sdk.testing._conformance_threads import ConcurrencyConformance

__all__ = ["StoreConformance"]


class StoreConformance(
    EntryConformance,
    BeginThenConformance,
    ListingConformance,
    LeaseConformance,
    ConcurrencyConformance,
    CacheConformance,
    ApproverConformance,
):
    """The conformance suite of :class:`~codon_sdk.stores.LedgerStore` backends (needs pytest).

    Subclass it as ``Test<YourStore>`` and implement :meth:`make_store`, or override
    the :meth:`store` fixture. The tests check entries round trip byte for byte, that
    appends are atomic and fenced by the run's owner, the runs index and its listing
    (order, every filter, time bounds, keyset paging), claims and leases, the log of
    runs, async twins, concurrent writers, the cache by identity and the keyring of
    approvers: the
    guarantees listed in :mod:`codon_sdk.stores`' ``LedgerStore`` documentation, with
    :class:`~codon_sdk.stores.MemoryStore` as the reference.
    """

    def make_store(self, tmp_path: Path) -> LedgerStore:
        """A new, empty store for one test; ``tmp_path`` is that test's own directory.

        The suite closes it after the test.
        """
        raise StorePluginError(
            f"{type(self).__qualname__} runs the store conformance suite but does not say "
            "which store: implement make_store(self, tmp_path) to return a new, empty "
            "LedgerStore (or override the store fixture)"
        )

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LedgerStore]:
        """The store under test: :meth:`make_store`'s, closed when the test ends."""
        opened: object = self.make_store(tmp_path)
        if not isinstance(opened, LedgerStore):
            raise StorePluginError(
                f"{type(self).__qualname__}.make_store returned {type(opened).__qualname__}, "
                "not a LedgerStore; return an instance of a codon_sdk.stores.LedgerStore "
                "subclass"
            )
        try:
            yield opened
        finally:
            opened.close()
