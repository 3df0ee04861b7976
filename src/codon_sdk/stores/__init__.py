"""Ledger stores: where run ledgers live (memory, SQLite, PostgreSQL).

What other layers and applications use:

- :func:`open_store` picks one from a URL (``memory://``, ``sqlite:///path.db``,
  ``postgresql://...``); :func:`shared_store` is the one store this process shares for a
  PostgreSQL URL; :func:`default_ledger_url` is where the CLI reads by default;
- :class:`LedgerStore`, the interface every backend implements, with :class:`RunInfo`,
  :class:`Entry` / :class:`EntryBatch` and the run-lease helpers (:func:`new_owner`,
  :func:`hold`, :func:`release`, :func:`lease_is_stale`);
- the notary that signs Merkle checkpoints over finished runs (:class:`Notary`,
  :class:`FileCheckpointSink`) and the store-level verification (:func:`verify_run`,
  :func:`verify_all`);
- least-privilege PostgreSQL roles (:func:`grant_sql`).

``PostgresStore`` and the PostgreSQL administration helpers need the ``postgres`` extra
and are imported on first use. The modules behind this face are private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon_sdk.stores._base import (
    RUN_STATUSES,
    Entry,
    EntryBatch,
    LedgerStore,
    RunInfo,
    hold,
    lease_is_stale,
    lease_seconds,
    new_owner,
    release,
)
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._notary import FileCheckpointSink, Notary, sign_runs_log
from codon_sdk.stores._open import (
    DEFAULT_LEDGER_URL,
    default_ledger_url,
    is_shared,
    mask_url,
    open_store,
    shared_store,
)
from codon_sdk.stores._roles import apply_statements, grant_sql
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.stores._verify import StoreVerification, verify_all, verify_run

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._postgres import PostgresStore, connect_admin, migrate_as_admin

__all__ = [
    "DEFAULT_LEDGER_URL",
    "RUN_STATUSES",
    "Entry",
    "EntryBatch",
    "FileCheckpointSink",
    "LedgerStore",
    "MemoryStore",
    "Notary",
    "PostgresStore",
    "RunInfo",
    "SQLiteStore",
    "StoreVerification",
    "apply_statements",
    "connect_admin",
    "default_ledger_url",
    "grant_sql",
    "hold",
    "is_shared",
    "lease_is_stale",
    "lease_seconds",
    "mask_url",
    "migrate_as_admin",
    "new_owner",
    "open_store",
    "release",
    "shared_store",
    "sign_runs_log",
    "verify_all",
    "verify_run",
]

_NEEDS_POSTGRES = {"PostgresStore", "connect_admin", "migrate_as_admin"}


def __getattr__(name: str) -> Any:
    """The PostgreSQL parts are imported on first use: they need the ``postgres`` extra."""
    if name not in _NEEDS_POSTGRES:
        raise AttributeError(f"module 'codon_sdk.stores' has no attribute {name!r}")
    return getattr(importlib.import_module("codon_sdk.stores._postgres"), name)
