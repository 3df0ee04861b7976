"""Schema migration 6 on a SQLite database written at schema 5: opening it adds the keyring of
approvers, empty, and leaves the runs as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from codon_sdk.ledger import Ed25519Signer
from codon_sdk.stores import add_approver, approvers
from codon_sdk.stores._approvers import approvers_migration
from codon_sdk.stores._schema import SCHEMA_VERSION, SQLITE_MIGRATIONS
from codon_sdk.stores._sqlite import SQLiteStore

#: The keyring's migration (6 when written; found by content, should migrations be renumbered).
KEYRING = SQLITE_MIGRATIONS.index(approvers_migration("INTEGER"))


def test_a_schema_5_database_gains_an_empty_keyring(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in SQLITE_MIGRATIONS[:KEYRING]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(
        "INSERT INTO codon_meta (key, value) VALUES ('schema_version', ?)", (str(KEYRING - 1),)
    )
    conn.close()
    with SQLiteStore(path) as store:
        assert approvers(store) == []
        vkey = Ed25519Signer.generate("alice").vkey
        add_approver(store, "Refunds", vkey)
        assert [k.vkey for k in approvers(store, "Refunds")] == [vkey]
        assert store.runs() == []
    conn = sqlite3.connect(path)
    (version,) = conn.execute(
        "SELECT value FROM codon_meta WHERE key = 'schema_version'"
    ).fetchone()
    conn.close()
    assert version == str(SCHEMA_VERSION)
