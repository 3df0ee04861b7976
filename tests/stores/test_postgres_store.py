"""PostgresStore on bad input and where only a server store can fail: unreachable servers
(with the password kept out of messages), malformed URLs, newer schemas, closing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from codon_sdk.errors import (
    InvalidStoreURLError,
    RunConflictError,
    SchemaVersionError,
    StoreConnectionError,
    StoreCorruptError,
    StoreError,
)
from codon_sdk.stores._open import open_store
from codon_sdk.stores._postgres import PostgresStore
from codon_sdk.stores._schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION
from codon_sdk.testing._store_kit import blobs, info, ledger

from .test_conformance import pg_schema_url


@pytest.fixture
def url(pg_url: str) -> Iterator[str]:
    """A URL whose tables live in a new, empty schema."""
    with pg_schema_url(pg_url) as fresh:
        yield fresh


def sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


# --------------------------------------------------------------------------- reaching the server


def test_an_unreachable_server_raises_store_connection_error_without_the_password() -> None:
    with pytest.raises(StoreConnectionError) as caught:
        PostgresStore("postgresql://postgres:secret@127.0.0.1:1/x", connect_timeout=2)
    message = str(caught.value)
    assert "secret" not in message
    assert "postgresql://postgres:***@127.0.0.1:1/x" in message
    assert "server is running" in message


@pytest.mark.postgres
def test_a_missing_database_raises_store_connection_error_naming_it(pg_url: str) -> None:
    base = pg_url.rsplit("/", 1)[0].replace("postgresql://postgres@", "postgresql://postgres:pw@")
    with pytest.raises(StoreConnectionError, match="codon_no_such_db") as caught:
        PostgresStore(f"{base}/codon_no_such_db")
    assert ":pw@" not in str(caught.value)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:notaport/db", "port 'notaport'"),
        ("postgresql://postgres:hunter2@127.0.0.1:99999/db", "port '99999'"),
        ("postgresql://postgres:hunter2@[::1/db", "cannot parse"),
        ("postgresql://postgres:hunter2@127.0.0.1/db?nonsense=1", "nonsense"),
        ("postgresql://post gres:hunter2@127.0.0.1/db", "cannot parse"),
    ],
)
def test_malformed_postgres_urls_raise_invalid_store_url(bad: str, reason: str) -> None:
    with pytest.raises(InvalidStoreURLError, match=reason) as caught:
        open_store(bad)
    assert "hunter2" not in str(caught.value)


def test_invalid_pool_sizes_are_refused() -> None:
    with pytest.raises(InvalidStoreURLError, match="max_size=0"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/x", min_size=0, max_size=0)


def test_without_psycopg_the_import_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "from codon_sdk.stores._open import open_store\n"
        "try:\n"
        "    open_store('postgresql://127.0.0.1:1/x')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "    print(type(exc.__cause__).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        'PostgresStore needs psycopg: pip install "codon-sdk[postgres]"',
        "ModuleNotFoundError",
    ]


# --------------------------------------------------------------------------- opening and closing


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_open_store_makes_a_postgres_store_for_each_scheme_spelling(url: str, scheme: str) -> None:
    with open_store(url.replace("postgresql", scheme, 1), max_size=2) as store:
        assert isinstance(store, PostgresStore)
        store.begin_run(info("run-1"), [])
        assert store.get_run("run-1").run_id == "run-1"


@pytest.mark.postgres
def test_a_second_store_on_the_same_database_sees_the_first_ones_runs(url: str) -> None:
    run = info()
    entries = ledger(run.run_id, 30)
    with PostgresStore(url) as first:
        first.begin_run(run, entries[:10])
        first.append(run.run_id, "owner-a", entries[10:], status="completed", release=True)
    with PostgresStore(url, min_size=0, max_size=1) as second:
        assert second.read(run.run_id) == blobs(entries)
        assert second.get_run(run.run_id).status == "completed"


@pytest.mark.postgres
def test_close_closes_the_pool(url: str) -> None:
    store = PostgresStore(url)
    store.close()
    assert store._pool.closed
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.runs()


@pytest.mark.postgres
def test_a_database_from_a_newer_sdk_raises_schema_version_error(url: str) -> None:
    PostgresStore(url).close()
    sql(url, f"UPDATE codon_meta SET value = '{SCHEMA_VERSION + 1}'")
    expected = (
        f"newer codon-sdk \\(schema {SCHEMA_VERSION + 1}, this SDK knows up to "
        f"{SCHEMA_VERSION}\\); upgrade codon-sdk"
    )
    with pytest.raises(SchemaVersionError, match=expected):
        PostgresStore(url)


@pytest.mark.postgres
def test_a_version_tagged_database_missing_its_tables_raises_store_corrupt(url: str) -> None:
    PostgresStore(url).close()
    sql(url, "DROP TABLE codon_events")
    with pytest.raises(StoreCorruptError, match="codon_events"):
        PostgresStore(url)


@pytest.mark.postgres
def test_tables_dropped_while_open_raise_store_corrupt(url: str) -> None:
    with PostgresStore(url) as store:
        sql(url, "DROP TABLE codon_runs")
        with pytest.raises(StoreCorruptError, match="missing or damaged"):
            store.get_run("run-1")


@pytest.mark.postgres
def test_the_database_refuses_to_truncate_events(url: str) -> None:
    with PostgresStore(url) as store:
        store.begin_run(info("run-1"), ledger("run-1", 3))
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(url, "TRUNCATE codon_events")
        assert len(store.read("run-1")) == 3


@pytest.mark.postgres
def test_an_older_schema_is_migrated_on_open(url: str) -> None:
    """A database at version 0 (meta table only) gets the later migrations."""
    for statement in POSTGRES_MIGRATIONS[0]:
        sql(url, statement)
    sql(url, "INSERT INTO codon_meta VALUES ('schema_version', '0'), ('note', 'kept')")
    with PostgresStore(url) as store:
        store.begin_run(info("run-1"), ledger("run-1", 2))
    with psycopg.connect(url) as conn:
        meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM codon_meta").fetchall())
    assert meta == {"schema_version": str(SCHEMA_VERSION), "note": "kept"}


@pytest.mark.postgres
def test_a_serialization_failure_becomes_a_run_conflict(url: str) -> None:
    """Under SERIALIZABLE, an append that waited for a concurrent update of its run row fails
    with SerializationFailure, which the store reports as RunConflictError."""
    serializable = f"{url}%20-cdefault_transaction_isolation%3Dserializable"
    entries = ledger("run-1", 2)
    outcome: list[BaseException] = []
    with PostgresStore(serializable, max_size=2) as store:
        store.begin_run(info("run-1"), entries[:1])
        other = psycopg.connect(url)
        try:
            other.execute("UPDATE codon_runs SET heartbeat_us = heartbeat_us + 1")
            waiter = threading.Thread(target=append_capturing, args=(store, entries, outcome))
            waiter.start()
            wait_for_lock_wait(url)
            other.commit()
            waiter.join(timeout=30)
        finally:
            other.close()
        assert len(outcome) == 1
        assert isinstance(outcome[0], RunConflictError)
        assert isinstance(outcome[0].__cause__, psycopg.errors.SerializationFailure)
        assert store.get_run("run-1").event_count == 1


def append_capturing(
    store: PostgresStore, entries: list[Any], outcome: list[BaseException]
) -> None:
    try:
        store.append("run-1", "owner-a", entries[1:])
    except BaseException as exc:  # examined by the test
        outcome.append(exc)


def wait_for_lock_wait(url: str) -> None:
    """Return once some session of the database waits for a row lock."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the append never waited for the run row's lock")


@pytest.mark.postgres
def test_a_pooled_connection_whose_backend_died_is_replaced_on_checkout(url: str) -> None:
    """The backend of the pool's idle connection is terminated (as pg_terminate_backend or
    a server restart would): the next operation gets a live connection, not the dead one."""
    import psycopg

    run = info()
    with PostgresStore(url, min_size=1, max_size=1) as store:
        store.begin_run(run, ledger(run.run_id, 3))
        with store._pool.connection() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            for _ in range(100):
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if row == (0,):
                    break
                time.sleep(0.05)
        assert store.get_run(run.run_id).event_count == 3
        with store._pool.connection() as conn:
            assert conn.info.backend_pid != pid
