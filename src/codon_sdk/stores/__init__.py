"""Ledger stores: where run ledgers live (memory, SQLite, PostgreSQL, or a plug-in).

``open_store(url)`` picks one from a URL, by its scheme, through the store
registry: :func:`register_store` adds a scheme in code, and an entry point in the
group ``codon_sdk.stores`` (:data:`ENTRY_POINT_GROUP`) adds one from another
distribution. A backend subclasses :class:`LedgerStore` and carries out the
operation records (:data:`Op`); the helpers below are the checks every backend
makes, and :class:`codon_sdk.testing.StoreConformance` is the suite it must pass.
``PostgresStore`` needs the ``postgres`` extra and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codon_sdk.stores._base import (
    AppendEntries,
    BeginRun,
    ClaimRun,
    Entry,
    EntryBatch,
    GetRun,
    LedgerStore,
    ListRuns,
    Op,
    PutCheckpoint,
    ReadCheckpoints,
    ReadEntries,
    ReadRunsLog,
    RenewLease,
    RunInfo,
    check_claim,
    check_finish_size,
    check_owner,
    check_seqs,
    claimed,
    entry_bytes,
    start_leaf,
)
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._open import DEFAULT_LEDGER_URL, default_ledger_url, open_store
from codon_sdk.stores._registry import (
    ENTRY_POINT_GROUP,
    StoreFactory,
    register_store,
    unregister_store,
)
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.stores._url import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._postgres import PostgresStore

__all__ = [
    "DEFAULT_LEDGER_URL",
    "ENTRY_POINT_GROUP",
    "AppendEntries",
    "BeginRun",
    "ClaimRun",
    "Entry",
    "EntryBatch",
    "GetRun",
    "LedgerStore",
    "ListRuns",
    "MemoryStore",
    "Op",
    "PostgresStore",
    "PutCheckpoint",
    "ReadCheckpoints",
    "ReadEntries",
    "ReadRunsLog",
    "RenewLease",
    "RunInfo",
    "SQLiteStore",
    "StoreFactory",
    "check_claim",
    "check_finish_size",
    "check_owner",
    "check_seqs",
    "claimed",
    "default_ledger_url",
    "entry_bytes",
    "mask_url",
    "open_store",
    "register_store",
    "start_leaf",
    "unregister_store",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from codon_sdk.stores._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'codon_sdk.stores' has no attribute {name!r}")
