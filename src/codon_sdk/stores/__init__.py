"""Ledger stores: where run ledgers live (memory, SQLite, PostgreSQL).

``open_store(url)`` picks one from a URL. ``PostgresStore`` needs the
``postgres`` extra and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codon_sdk.stores._base import LedgerStore, RunInfo
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._open import DEFAULT_LEDGER_URL, default_ledger_url, open_store
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.stores._url import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._postgres import PostgresStore

__all__ = [
    "DEFAULT_LEDGER_URL",
    "LedgerStore",
    "MemoryStore",
    "PostgresStore",
    "RunInfo",
    "SQLiteStore",
    "default_ledger_url",
    "mask_url",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from codon_sdk.stores._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'codon_sdk.stores' has no attribute {name!r}")
