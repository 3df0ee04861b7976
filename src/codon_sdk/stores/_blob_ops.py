"""Blobs kept in the ledger database: the ``codon_blobs`` table (migration 8) and its ops.

A PostgreSQL store (and a SQLite store without a file, ``sqlite:///:memory:``) keeps the
payload blobs of its runs here, one row per SHA-256 (``stores/_blobs.py``). A put is its
own statement, committed before the entry that refers to the blob is appended; putting
a digest that is already there keeps the row as it is (content-addressed: same digest,
same bytes, and :meth:`~codon_sdk.stores.BlobStore.get` checks that on every read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from typing_extensions import assert_never

__all__ = [
    "BLOBS_TABLE",
    "GetBlob",
    "PutBlob",
    "blobs_migration",
    "memory_blobs",
    "sql_blobs",
]

BLOBS_TABLE: Final = "codon_blobs"


def blobs_migration(binary: str, int_type: str) -> tuple[str, ...]:
    """Migration 8 in a dialect (``binary``: BLOB or BYTEA; ``int_type``: its 64-bit int)."""
    return (
        f"""CREATE TABLE {BLOBS_TABLE} (
            sha256 TEXT PRIMARY KEY,
            size {int_type} NOT NULL,
            data {binary} NOT NULL
        )""",
    )


@dataclass(frozen=True, slots=True)
class PutBlob:
    """Keep ``data`` under its SHA-256 hex digest ``sha256`` (nothing if already kept)."""

    sha256: str
    data: bytes


@dataclass(frozen=True, slots=True)
class GetBlob:
    """The bytes kept under ``sha256``, or None."""

    sha256: str


BlobOp = PutBlob | GetBlob


def sql_blobs(conn: Any, p: str, op: BlobOp) -> Any:
    """Carry out ``op`` on a SQL connection whose paramstyle is ``p`` (autocommit)."""
    if isinstance(op, PutBlob):
        sql = (
            f"INSERT INTO {BLOBS_TABLE} (sha256, size, data) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (sha256) DO NOTHING"
        )
        conn.execute(sql, (op.sha256, len(op.data), op.data))
        return None
    if isinstance(op, GetBlob):
        row = conn.execute(
            f"SELECT data FROM {BLOBS_TABLE} WHERE sha256 = {p}", (op.sha256,)
        ).fetchone()
        return None if row is None else bytes(row[0])
    assert_never(op)


def memory_blobs(held: dict[str, bytes], op: BlobOp) -> Any:
    """Carry out ``op`` on an in-memory dictionary of blobs (the caller holds its lock)."""
    if isinstance(op, PutBlob):
        held.setdefault(op.sha256, bytes(op.data))
        return None
    if isinstance(op, GetBlob):
        return held.get(op.sha256)
    assert_never(op)
