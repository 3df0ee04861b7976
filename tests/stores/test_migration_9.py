"""Schema migration 9 (subjects, the erasure log, holds, retention): a ledger written before
it opens, keeps verifying, and can be erased; the memory store erases the same way."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from codon_sdk import CodonWorkload, verify_run
from codon_sdk.stores import (
    MemoryStore,
    ReadErasures,
    SQLiteStore,
    erase_run,
    erase_subject,
    erasure_log,
)
from codon_sdk.stores._erase_ops import erase_migration
from codon_sdk.stores._schema import SCHEMA_VERSION, SQLITE_MIGRATIONS

#: Found by content, should migrations be renumbered.
ERASURE = SQLITE_MIGRATIONS.index(erase_migration("sqlite"))
TABLES = ("codon_subjects", "codon_erasures", "codon_holds", "codon_retention")


def _workload() -> CodonWorkload:
    wl = CodonWorkload(name="old", version="1")

    def step(message: Any, *, runtime: Any, context: Any) -> str:
        runtime.state["seen"] = message
        return f"seen {message}"

    wl.add_node(step, name="step", role="r")
    return wl


def test_a_ledger_from_before_migration_9_verifies_and_can_be_erased(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    run_id = _workload().execute("SECRET-old", deployment_id="d", store=f"sqlite:///{path}").run_id
    conn = sqlite3.connect(path, isolation_level=None)  # back to schema 8, the run kept
    for table in TABLES:
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE codon_meta SET value = ? WHERE key = 'schema_version'", (ERASURE - 1,))
    conn.close()
    with SQLiteStore(path) as store:
        assert store.execute(ReadErasures()) == []
        assert verify_run(store, run_id).ok
        done = erase_run(store, run_id, reason="retention:test", actor="ops")
        assert len(done.seqs) == store.get_run(run_id).event_count
        report = verify_run(store, run_id)
        assert report.ok
        assert sum(f.code == "erased" for f in report.findings) == len(done.seqs)
    conn = sqlite3.connect(path)
    (version,) = conn.execute(
        "SELECT value FROM codon_meta WHERE key = 'schema_version'"
    ).fetchone()
    conn.close()
    assert version == str(SCHEMA_VERSION)
    assert b"SECRET-old" not in path.read_bytes()


def test_the_memory_store_erases_and_verifies_like_the_sql_stores() -> None:
    store = MemoryStore()
    wl = _workload()
    erased = wl.execute("SECRET-mem", deployment_id="d", store=store, subject="u1").run_id
    kept = wl.execute("other", deployment_id="d", store=store).run_id
    (done,) = erase_subject(store, "u1", actor="dpo")
    assert done.run_id == erased
    assert not any(b"SECRET-mem" in e for e in store.read(erased))
    report = verify_run(store, erased)
    assert report.ok
    assert [f.seq for f in report.findings if f.code == "erased"] == list(done.seqs)
    assert verify_run(store, kept).findings == ()
    assert len(erasure_log(store).of(erased)) == len(done.seqs)
    assert erase_subject(store, "u1", actor="dpo") == []  # the tags went with the run
