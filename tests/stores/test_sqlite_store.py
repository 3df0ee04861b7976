"""SQLiteStore on bad input and in the places only a file store has: damaged files, newer
schemas, a full disk, reopening, WAL mode, pragmas, and ``open_store`` URLs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import (
    InvalidStoreURLError,
    RunConflictError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
)
from codon_sdk.stores import _codec as codec
from codon_sdk.stores import _sqlite as sqlite_module
from codon_sdk.stores._base import EntryBatch
from codon_sdk.stores._open import open_store
from codon_sdk.stores._schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS
from codon_sdk.stores._sqlite import PAGE_SIZE, SQLiteStore
from codon_sdk.testing._store_kit import blobs, info, ledger


def filled(path: Path, runs: int = 1, events: int = 50) -> dict[str, list[bytes]]:
    """Write ``runs`` runs of ``events`` events to a new store at ``path``; return them."""
    written: dict[str, list[bytes]] = {}
    with SQLiteStore(path) as store:
        for i in range(runs):
            run = info(f"run-{i}")
            entries = ledger(run.run_id, events)
            store.begin_run(run, entries[:1])
            store.append(run.run_id, "owner-a", entries[1:], status="completed", release=True)
            written[run.run_id] = blobs(entries)
    return written


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        value = conn.execute(f"PRAGMA {name}").fetchone()[0]
    conn.close()
    return value


def read_all(path: Path, run_ids: list[str]) -> None:
    with SQLiteStore(path) as store:
        for run_id in run_ids:
            store.read(run_id)
            store.get_run(run_id)


# --------------------------------------------------------------------------- files


def test_reopening_the_file_keeps_every_run(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    written = filled(path, runs=3)
    with SQLiteStore(path) as store:
        assert {r.run_id for r in store.runs()} == set(written)
        for run_id, data in written.items():
            assert store.read(run_id) == data
            assert store.get_run(run_id).status == "completed"


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "ledger.db"
    with SQLiteStore(str(path)) as store:
        store.begin_run(info(), [])
    assert path.is_file()


def test_the_file_is_in_wal_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SQLiteStore(path) as store:
        store.begin_run(info(), ledger("run", 3))
        assert Path(f"{path}-wal").exists()
        assert pragma(path, "journal_mode") == "wal"


def test_a_new_file_gets_8k_pages_and_an_existing_file_keeps_its_own(tmp_path: Path) -> None:
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    filled(new)
    assert pragma(new, "page_size") == PAGE_SIZE == 8192
    with sqlite3.connect(old) as conn:  # a file made elsewhere, with SQLite's default pages
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    written = filled(old)
    assert pragma(old, "page_size") == 4096
    with SQLiteStore(old) as store:
        assert {run_id: store.read(run_id) for run_id in written} == written


@pytest.mark.parametrize("path", ["bulk", "executemany"])
def test_both_insert_paths_store_the_same_rows(tmp_path: Path, path: str) -> None:
    """One INSERT ... SELECT over json_each, or executemany (SQLite without JSON): same rows,
    each the stored form (stores/_codec.py) of its entry."""
    run = info()
    entries = [*ledger(run.run_id, 300), (300, b"\x00\xff" + bytes(range(256)), b"\x01" * 32)]
    with SQLiteStore(tmp_path / "ledger.db") as store:
        store._bulk = path == "bulk"
        store.begin_run(run, entries[:7])
        store.append(run.run_id, "owner-a", entries[7:150])
        store.append(run.run_id, "owner-a", entries[150:], status="completed", release=True)
        assert store.read(run.run_id) == blobs(entries)
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT seq, entry, leaf_hash FROM codon_events ORDER BY seq"
        ).fetchall()
    conn.close()
    assert_stored_forms(run.run_id, rows, entries)


def test_empty_entries_are_stored_as_empty_bytes(tmp_path: Path) -> None:
    run = info()
    batch = EntryBatch(0, [b"\x00{}", b"\x00"], [b"1" * 32, b"2" * 32])
    with SQLiteStore(tmp_path / "ledger.db") as store:
        store.begin_run(run, batch)
        store.append(run.run_id, "owner-a", [(2, b"", b"3" * 32)])
        assert store.read(run.run_id) == [b"{}", b"", b""]


def test_a_group_larger_than_one_bulk_statement_is_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bound blobs stay far below SQLite's length limit: a big group is several statements
    (in one transaction), whatever the sizes, one entry at least per statement."""
    monkeypatch.setattr(sqlite_module, "_BULK_BYTES", 2500)
    run = info()
    entries = ledger(run.run_id, 60)
    entries[30] = (30, entries[30][1] + b" " * 2000, entries[30][2])  # alone over the limit
    batch = EntryBatch(0, [b"\x00" + e for _, e, _ in entries], [h for *_, h in entries])
    statements: list[str] = []
    with SQLiteStore(tmp_path / "ledger.db") as store:
        store.begin_run(run, batch[:1])
        assert store._conn is not None
        store._conn.set_trace_callback(statements.append)
        store.append(run.run_id, "owner-a", EntryBatch(1, batch.prefixed[1:], batch.leaves[1:]))
        assert store.read(run.run_id) == blobs(entries)
    bulk = [sql for sql in statements if "json_each" in sql]
    assert 59 > len(bulk) > 59 * len(entries[1][1]) // 2500 // 2  # several entries each
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT seq, entry, leaf_hash FROM codon_events ORDER BY seq"
        ).fetchall()
    conn.close()
    assert_stored_forms(run.run_id, rows, entries)


def assert_stored_forms(run_id: str, rows: list[Any], entries: list[Any]) -> None:
    """Rows hold each entry's seq and leaf hash as they are and its stored form, which
    reads back as the entry; all but the odd last one and the first are packed (~p)."""
    assert [(seq, leaf) for seq, _, leaf in rows] == [(seq, leaf) for seq, _, leaf in entries]
    assert codec.unpack(run_id, rows) == [entry for _, entry, _ in entries]
    packed = [bytes(stored[:2]) for _, stored, _ in rows]
    assert packed[1:-1] == [b"~p"] * (len(rows) - 2)


@pytest.mark.parametrize(
    "leaves",
    [[b"short", b"x" * 40], [b"A" * 31, b"B" * 33]],  # the second pair totals 2 x 32 bytes
    ids=["short-and-long", "31-and-33"],
)
def test_leaf_hashes_of_another_length_take_the_executemany_path(
    tmp_path: Path, leaves: list[bytes]
) -> None:
    run = info()
    odd = [(0, b"{}", leaves[0]), (1, b"[]", leaves[1])]
    with SQLiteStore(tmp_path / "ledger.db") as store:
        store.begin_run(run, odd)
        assert store.read(run.run_id) == [b"{}", b"[]"]
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        stored = [row[0] for row in conn.execute("SELECT leaf_hash FROM codon_events ORDER BY seq")]
    conn.close()
    assert stored == leaves


@pytest.mark.parametrize(("mode", "level"), [("NORMAL", 1), ("full", 2)])
def test_synchronous_setting_reaches_the_connection(tmp_path: Path, mode: str, level: int) -> None:
    store = SQLiteStore(tmp_path / "ledger.db", synchronous=mode)
    with store:
        assert store._connection().execute("PRAGMA synchronous").fetchone()[0] == level


def test_unknown_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURLError, match=r"'SOMETIMES'.*NORMAL"):
        SQLiteStore(tmp_path / "ledger.db", synchronous="SOMETIMES")


@pytest.mark.parametrize(
    "pragmas", [{"max_page_count; DROP TABLE x": 1}, {"cache_size": "1; DROP TABLE x"}]
)
def test_pragmas_must_be_plain_names_and_values(
    tmp_path: Path, pragmas: dict[str, int | str]
) -> None:
    with pytest.raises(InvalidStoreURLError, match="not a plain name and value"):
        SQLiteStore(tmp_path / "ledger.db", pragmas=pragmas)


def test_extra_pragmas_are_applied(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db", pragmas={"cache_size": -4096})
    with store:
        assert store._connection().execute("PRAGMA cache_size").fetchone()[0] == -4096


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.runs()


# --------------------------------------------------------------------------- damaged files


def test_a_file_that_is_not_a_database_raises_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreCorruptError, match=r"notes\.db") as caught:
        SQLiteStore(path)
    assert "backup" in str(caught.value)
    assert path.read_bytes().startswith(b"these are my notes")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_truncated_file_raises_store_corrupt(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "ledger.db"
    written = filled(path, runs=4, events=200)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * keep))
    with pytest.raises(StoreCorruptError, match=r"ledger\.db.*damaged"):
        read_all(path, list(written))


def test_a_version_tagged_file_missing_its_tables_raises_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE codon_events")
    conn.close()
    with pytest.raises(StoreCorruptError, match="codon_events"):
        SQLiteStore(path)


def test_a_database_from_a_newer_sdk_raises_schema_version_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE codon_meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    conn.close()
    expected = (
        f"newer codon-sdk \\(schema {SCHEMA_VERSION + 1}, this SDK knows up to "
        f"{SCHEMA_VERSION}\\); upgrade codon-sdk"
    )
    with pytest.raises(SchemaVersionError, match=expected):
        SQLiteStore(path)


def test_a_garbled_schema_version_raises_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE codon_meta SET value = 'banana' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreCorruptError, match="'banana'"):
        SQLiteStore(path)


def test_an_older_schema_is_migrated_on_open(tmp_path: Path) -> None:
    """A file at version 0 (meta table only) gets the later migrations and keeps its meta row."""
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        for statement in SQLITE_MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO codon_meta VALUES ('schema_version', '0'), ('note', 'kept')")
    conn.close()
    with SQLiteStore(path) as store:
        store.begin_run(info("run-x"), ledger("run-x", 2))
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM codon_meta").fetchall())
    conn.close()
    assert meta == {"schema_version": str(SCHEMA_VERSION), "note": "kept"}


def test_every_schema_version_exists_for_both_dialects() -> None:
    assert len(SQLITE_MIGRATIONS) == len(POSTGRES_MIGRATIONS) == SCHEMA_VERSION + 1


# --------------------------------------------------------------------------- full disk


def test_a_full_disk_raises_store_error_and_keeps_earlier_commits(tmp_path: Path) -> None:
    """``max_page_count`` caps the file the way a full disk would (the schema takes 35 pages)."""
    path = tmp_path / "ledger.db"
    run = info()
    entries = ledger(run.run_id, 40)
    huge = ledger(run.run_id, 41, payload={"blob": os.urandom(300_000).hex()})[40]
    room = 35 + 32 * 1024 // PAGE_SIZE  # the schema and 32 KiB
    with SQLiteStore(path, pragmas={"max_page_count": room}) as store:
        store.begin_run(run, entries[:1])
        for k in range(1, 40, 3):
            store.append(run.run_id, "owner-a", entries[k : k + 3])
        with pytest.raises(StoreError, match="disk or database is full") as caught:
            store.append(run.run_id, "owner-a", [huge], status="completed", release=True)
        assert not isinstance(caught.value, RunConflictError)
        assert "ledger.db" in str(caught.value)
        assert store.read(run.run_id) == blobs(entries)
        after = store.get_run(run.run_id)
        assert (after.event_count, after.status, after.owner) == (40, "running", "owner-a")
        assert after.head == entries[-1][2].hex()
    with SQLiteStore(path) as store:  # room again: the run goes on where it stopped
        assert store.read(run.run_id) == blobs(entries)
        store.append(run.run_id, "owner-a", [huge], status="completed", release=True)
        assert store.get_run(run.run_id).event_count == 41


# --------------------------------------------------------------------------- URLs


def test_open_store_makes_a_sqlite_store_from_a_relative_or_absolute_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/ledger.db") as store:
        assert isinstance(store, SQLiteStore)
        assert store.url == "sqlite:///rel/ledger.db"
    assert (tmp_path / "rel" / "ledger.db").is_file()
    absolute = tmp_path / "abs.db"
    with open_store(f"sqlite:///{absolute}", timeout=1.0) as store:
        assert isinstance(store, SQLiteStore)
        assert store.timeout == 1.0
    assert absolute.is_file()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://relative.db", "ledger.db", "", "mysql://h/db"]
)
def test_malformed_store_urls_raise_invalid_store_url(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        open_store(url)
