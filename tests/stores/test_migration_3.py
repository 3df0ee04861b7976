"""Schema migration 3 on a database written at schema 2 (SQLite and PostgreSQL).

The schema-2 database is built with the schema-2 statements themselves
(``*_MIGRATIONS[:3]``) and filled the way an SDK of that version left it: runs,
their events, finish lines (``UNIQUE(run_id)``) for finished runs only.
Opening it must add the lease column, lift the uniqueness, keep the log
append-only, and backfill one start line per run in (started_us, run_id) order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import RunConflictError
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.testing._store_kit import T0, info, ledger

from .test_conformance import pg_schema_url

ROOT = b"\x07" * 32
#: (run id, started_us, events, finished): "run-b" and "run-a" start at the same moment.
RUNS = [
    ("run-c", T0 + 1, 3, True),
    ("run-b", T0 + 2, 2, False),
    ("run-a", T0 + 2, 4, True),
    ("run-0", T0 + 0, 2, False),
]
RUN_COLUMNS_2 = (
    "run_id, workload_name, workload_version, logic_id, deployment_id, status, started_us, "
    "event_count, owner, heartbeat_us"
)


def fill_schema_2(execute: Callable[[str, tuple[Any, ...]], object], p: str) -> dict[str, bytes]:
    """Rows as schema 2 held them; returns each run's seq-0 leaf hash."""
    firsts: dict[str, bytes] = {}
    for idx, (run_id, started, n, finished) in enumerate(sorted(RUNS, key=lambda r: r[3])):
        entries = ledger(run_id, n)
        firsts[run_id] = entries[0][2]
        status = "completed" if finished else "interrupted"
        execute(
            f"INSERT INTO codon_runs ({RUN_COLUMNS_2}) VALUES ({', '.join([p] * 10)})",
            (run_id, "wl", "1", "a" * 64, "d" * 64, status, started, n, None, started),
        )
        for seq, entry, leaf in entries:
            execute(
                f"INSERT INTO codon_events (run_id, seq, entry, leaf_hash) VALUES ({p}, {p}, {p}, "
                f"{p})",
                (run_id, seq, entry, leaf),
            )
        if finished:
            execute(
                f"INSERT INTO codon_runs_log (idx, run_id, size, root, logged_us) VALUES "
                f"({p}, {p}, {p}, {p}, {p})",
                (idx - 2, run_id, n, ROOT, started),
            )
    return firsts


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema_2(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Callable[[], LedgerStore], Callable[[str], list[Any]], dict[str, bytes]]]:
    """A filled schema-2 database: (open it with the SDK, raw SQL on it, seq-0 leaves)."""
    if request.param == "sqlite":
        path = tmp_path / "v2.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for migration in SQLITE_MIGRATIONS[:3]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("INSERT INTO codon_meta VALUES ('schema_version', '2')")
        firsts = fill_schema_2(conn.execute, "?")

        def raw_sqlite(sql: str) -> list[Any]:
            return conn.execute(sql).fetchall()

        try:
            yield (lambda: SQLiteStore(path)), raw_sqlite, firsts
        finally:
            conn.close()
        return
    import psycopg

    from codon_sdk.stores._postgres import PostgresStore

    with pg_schema_url(request.getfixturevalue("pg_url")) as url:
        pg = psycopg.connect(url, autocommit=True)
        for migration in POSTGRES_MIGRATIONS[:3]:
            for statement in migration:
                pg.execute(statement)
        pg.execute("INSERT INTO codon_meta VALUES ('schema_version', '2')")
        firsts = fill_schema_2(pg.execute, "%s")

        def raw_pg(sql: str) -> list[Any]:
            cur = pg.execute(sql)
            return cur.fetchall() if cur.description else []

        try:
            yield (lambda: PostgresStore(url)), raw_pg, firsts
        finally:
            pg.close()


def test_migration_3_backfills_one_start_line_per_run_in_start_order(schema_2: Any) -> None:
    open_it, _, firsts = schema_2
    with open_it() as store:
        log = store.runs_log()
    assert [(idx, run_id, size) for idx, run_id, size, _ in log] == [
        (0, "run-c", 3),
        (1, "run-a", 4),
        (2, "run-0", 1),
        (3, "run-c", 1),
        (4, "run-a", 1),
        (5, "run-b", 1),
    ]
    assert all(root == firsts[run_id] for _, run_id, size, root in log if size == 1)
    assert all(root == ROOT for _, _, size, root in log if size > 1)


def test_migration_3_adds_the_lease_column_and_records_the_new_version(schema_2: Any) -> None:
    open_it, raw, _ = schema_2
    with open_it() as store:
        assert {store.get_run(run_id).lease_us for run_id, *_ in RUNS} == {None}
    assert raw("SELECT value FROM codon_meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]


def test_reopening_a_migrated_database_backfills_nothing_again(schema_2: Any) -> None:
    open_it, _, _ = schema_2
    with open_it() as store:
        first = store.runs_log()
    with open_it() as store:
        assert store.runs_log() == first


def test_after_migration_3_a_run_takes_a_start_and_a_finish_line(schema_2: Any) -> None:
    open_it, _, _ = schema_2
    with open_it() as store:
        run = info("run-new")
        entries = ledger(run.run_id, 2)
        store.begin_run(run, entries[:1])
        store.append(run.run_id, "owner-a", entries[1:], log_root=ROOT)
        with pytest.raises(RunConflictError, match="already has a finish line"):
            store.append(run.run_id, "owner-a", [], log_root=ROOT)
        log = store.runs_log()
    assert [(idx, run_id, size) for idx, run_id, size, _ in log[-2:]] == [
        (6, "run-new", 1),
        (7, "run-new", 2),
    ]


@pytest.mark.parametrize(
    "statement", ["UPDATE codon_runs_log SET size = 9", "DELETE FROM codon_runs_log"]
)
def test_the_rebuilt_log_of_runs_is_still_append_only(schema_2: Any, statement: str) -> None:
    open_it, raw, _ = schema_2
    with open_it() as store:
        before = store.runs_log()
    with pytest.raises(Exception, match="append-only"):
        raw(statement)
    with open_it() as store:
        assert store.runs_log() == before
