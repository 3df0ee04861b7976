"""One conformance suite for every ledger store: memory, SQLite and PostgreSQL alike.

The suite ships in ``codon_sdk.testing`` (:class:`~codon_sdk.testing.StoreConformance`,
in ``_conformance_entries``, ``_conformance_leases`` and ``_conformance_threads``); here
it runs on each built-in backend, one class per backend. PostgreSQL tests get a fresh
schema each (``search_path`` in the URL), SQLite tests a fresh file. What only the SQL
backends promise (triggers refuse to rewrite events) runs on ``sql_store`` (``conftest.py``),
and ``tests/stores/test_third_party_store.py`` runs the suite on a store from outside.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.stores._base import EntryBatch, LedgerStore
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.testing import ErasureConformance, StoreConformance
from codon_sdk.testing._store_kit import batch_of, blobs, info, ledger

# --------------------------------------------------------------------------- backends


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


SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class TestMemoryStore(StoreConformance, ErasureConformance):
    def make_store(self, tmp_path: Path) -> LedgerStore:
        return MemoryStore()


class TestSQLiteStore(StoreConformance, ErasureConformance):
    def make_store(self, tmp_path: Path) -> LedgerStore:
        from codon_sdk.stores._sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "ledger.db")


@pytest.mark.postgres
class TestPostgresStore(StoreConformance, ErasureConformance):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
        with open_backend("postgres", request, tmp_path) as store:
            yield store


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
