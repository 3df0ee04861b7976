"""Bad input through ``execute`` and ``resume``: each gets a specific error and leaves the
stored events intact. (The store-level versions are in ``tests/stores``.)

Corrupt or truncated SQLite files, a database written by a newer SDK, an unreachable
PostgreSQL server (the error shows the URL without its password), an unknown run id, a
malformed URL, and a full disk during a write (the run fails loudly; nothing acknowledged
is lost, and the run can go on once there is room again).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError
from codon_sdk.errors import (
    InvalidStoreURLError,
    RunNotFoundError,
    SchemaVersionError,
    StoreConnectionError,
    StoreCorruptError,
    StoreError,
)
from codon_sdk.stores import SQLiteStore
from codon_sdk.stores import _codec as codec
from codon_sdk.stores._open import close_shared

from ._support import (
    assert_chain,
    opened,
    outcome,
    parse,
    run_child,
    stored_entries,
    write_module,
)

BIG = 400_000  # characters in the last step's result: more than the capped file can hold
LIMIT = 2 * BIG  # max_event_bytes that lets such a result be recorded
CAP = {
    "max_page_count": 35
}  # what schema 9 takes: the small steps fit in its pages' free space (8 KiB pages), BIG not

CHAIN = """
from codon_sdk import CodonWorkload

BIG = 400_000


def step(i, *, runtime, context):
    runtime.state["last"] = i
    runtime.state.setdefault("seen", []).append(i)
    if i < 6:
        runtime.emit("step", i + 1)
        return f"step {i}"
    return "x" * BIG


workload = CodonWorkload(name="filler", version="1", org_namespace="durable-tests")
workload.add_node(step, "step", "worker")
workload.add_edge("step", "step")
"""


def chain() -> CodonWorkload:
    """Six steps; the last returns a result too large for the capped ledger file."""

    def step(i: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["last"] = i
        runtime.state.setdefault("seen", []).append(i)
        if i < 6:
            runtime.emit("step", i + 1)
            return f"step {i}"
        return "x" * BIG

    workload = CodonWorkload(name="filler", version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    return workload


def _ledger_with_runs(path: Path, runs: int = 3) -> list[list[bytes]]:
    url = f"sqlite:///{path}"
    for k in range(runs):
        chain().execute(1, deployment_id="d", store=url, run_id=f"kept-{k}", max_event_bytes=LIMIT)
    return [stored_entries(url, f"kept-{k}") for k in range(runs)]


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT run_id, seq, entry FROM codon_events ORDER BY 1, 2").fetchall()
    conn.close()
    return rows


def _execute_and_resume_raise(url: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        chain().execute(1, deployment_id="d", store=url, run_id="new-run")
    with pytest.raises(error, match=match):
        chain().resume("kept-0", store=url)


# --------------------------------------------------------------------------- damaged files


def test_a_file_that_is_not_a_database_is_reported_as_corrupt_and_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"my notes, not a ledger\n" * 500)
    _execute_and_resume_raise(f"sqlite:///{path}", StoreCorruptError, r"notes\.db.*backup")
    assert path.read_bytes() == b"my notes, not a ledger\n" * 500


@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_a_truncated_ledger_file_is_reported_as_corrupt_and_left_alone(
    tmp_path: Path, keep: float
) -> None:
    original = tmp_path / "ledger.db"
    _ledger_with_runs(original)
    damaged = tmp_path / "damaged.db"
    shutil.copy(original, damaged)
    size = damaged.stat().st_size
    with damaged.open("r+b") as f:
        f.truncate(int(size * keep))
    content = damaged.read_bytes()
    _execute_and_resume_raise(f"sqlite:///{damaged}", StoreCorruptError, r"damaged\.db")
    assert damaged.read_bytes() == content


def test_a_sqlite_ledger_from_a_newer_sdk_is_refused_and_its_events_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _ledger_with_runs(path)
    before = _rows(path)
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute(
            "SELECT value FROM codon_meta WHERE key = 'schema_version'"
        ).fetchone()
        conn.execute(
            "UPDATE codon_meta SET value = ? WHERE key = 'schema_version'", (str(int(version) + 1),)
        )
    conn.close()
    _execute_and_resume_raise(f"sqlite:///{path}", SchemaVersionError, "upgrade codon-sdk")
    assert _rows(path) == before


@pytest.mark.postgres
def test_a_postgres_ledger_from_a_newer_sdk_is_refused_and_its_events_kept(
    postgres_url: str,
) -> None:
    import psycopg

    chain().execute(
        1, deployment_id="d", store=postgres_url, run_id="kept-0", max_event_bytes=LIMIT
    )
    before = stored_entries(postgres_url, "kept-0")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE codon_meta SET value = (value::int + 1)::text WHERE key = 'schema_version'"
        )
    close_shared()  # the schema is checked when a process opens the store: as a new process
    _execute_and_resume_raise(postgres_url, SchemaVersionError, "upgrade codon-sdk")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT seq, entry FROM codon_events WHERE run_id = 'kept-0' ORDER BY seq"
        ).fetchall()
    assert codec.unpack("kept-0", rows) == before  # the rows hold their stored forms


# --------------------------------------------------------------------------- servers and URLs


def test_an_unreachable_postgres_server_is_named_without_its_password() -> None:
    url = "postgresql://codon:s3cr3t-pw@127.0.0.1:1/ledger"
    for call in (
        lambda: chain().execute(1, deployment_id="d", store=url, run_id="r"),
        lambda: chain().resume("r", store=url),
    ):
        with pytest.raises(StoreConnectionError) as caught:
            call()
        message = str(caught.value)
        assert "s3cr3t-pw" not in message
        assert "postgresql://codon:***@127.0.0.1:1/ledger" in message


def test_resuming_an_unknown_run_id_names_it_and_writes_nothing(ledger_url: str) -> None:
    chain().execute(1, deployment_id="d", store=ledger_url, run_id="known", max_event_bytes=LIMIT)
    with pytest.raises(RunNotFoundError, match="'no-such-run'") as caught:
        chain().resume("no-such-run", store=ledger_url, input="x", actor="alice")
    assert isinstance(caught.value, LookupError)
    with opened(ledger_url) as store:
        assert [r.run_id for r in store.runs()] == ["known"]


@pytest.mark.parametrize(
    "url",
    [
        "ledger.db",
        "sqlite://",
        "sqlite:/relative.db",
        "mysql://user@host/db",
        "",
        "postgresql://user:hunter2@host:notaport/db",
    ],
)
def test_a_malformed_store_url_is_refused_by_execute_and_resume(url: str) -> None:
    for call in (
        lambda: chain().execute(1, deployment_id="d", store=url, run_id="r"),
        lambda: chain().resume("r", store=url),
    ):
        with pytest.raises(InvalidStoreURLError) as caught:
            call()
        assert "hunter2" not in str(caught.value)
        assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- a full disk


def _acknowledged_prefix(stored: list[bytes], recorded: list[bytes]) -> None:
    """The store holds a prefix of what was recorded, cut at whole events, chain intact."""
    assert recorded[: len(stored)] == stored
    if stored:
        assert_chain(stored, parse(stored)[0].run_id, require_end=False)


def test_a_full_disk_during_a_sync_run_fails_it_loudly_and_keeps_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, pragmas=CAP)
    with pytest.raises(WorkloadRuntimeError, match="disk or database is full") as caught:
        chain().execute(
            1,
            deployment_id="d",
            store=store,
            run_id="full-sync",
            durability="sync",
            max_event_bytes=LIMIT,
        )
    store.close()
    assert isinstance(caught.value.__cause__, StoreError)
    report = caught.value.report
    assert report is not None
    recorded = list(report.entries)
    stored = stored_entries(f"sqlite:///{path}", "full-sync")
    _acknowledged_prefix(stored, recorded)
    # every step before the one whose result did not fit was committed (sync commits at each
    # step boundary); what is missing is that step and the run's end: nothing acknowledged
    # is lost
    stored_events, missing = parse(stored), parse(recorded[len(stored) :])
    assert stored_events[-1].type == "node_completed"
    assert [e.type for e in stored_events].count("node_completed") == 5
    failing = {e.token_id for e in missing if e.type == "token_dequeued"}
    assert len(failing) == 1
    assert {e.token_id for e in missing} <= failing | {None}
    assert any(e.type == "node_completed" and len(e.entry) > BIG for e in missing)


@pytest.mark.parametrize("durability", ["sync", "batch", "exit"])
def test_a_full_disk_fails_the_run_with_workload_runtime_error_and_its_report(
    tmp_path: Path, durability: str
) -> None:
    """Whatever the durability, a store failure ends ``execute`` the same way: a
    ``WorkloadRuntimeError`` caused by the ``StoreError``, carrying the run's report, even
    when the failing write is the last one (batch commits it at the end of the run)."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, pragmas=CAP)
    with pytest.raises(WorkloadRuntimeError) as caught:
        chain().execute(
            1,
            deployment_id="d",
            store=store,
            run_id=f"full-{durability}",
            durability=durability,
            max_event_bytes=LIMIT,
        )
    store.close()
    assert isinstance(caught.value.__cause__, StoreError)
    assert "full" in str(caught.value)
    assert caught.value.report is not None
    with opened(f"sqlite:///{path}") as reopened:
        if reopened.has_run(f"full-{durability}"):
            stored = reopened.read(f"full-{durability}")
            _acknowledged_prefix(stored, list(caught.value.report.entries))


def test_a_run_stopped_by_a_full_disk_resumes_in_a_new_process_once_there_is_room(
    tmp_path: Path,
) -> None:
    path = write_module(tmp_path / "mods", "filler", CHAIN)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    failed = outcome(
        run_child(
            path,
            "execute",
            payload=1,
            sqlite_pragmas=CAP,
            kwargs={"store": url, "run_id": "full-resume", "durability": "sync"},
        )
    )
    assert failed["error"] == "WorkloadRuntimeError", failed
    assert failed["cause"] == "StoreError"
    before = stored_entries(url, "full-resume")
    resumed = outcome(run_child(path, "resume", run_id="full-resume", kwargs={"store": url}))
    assert resumed.get("status") == "completed", resumed
    assert resumed["state"] == {"last": 6, "seen": [1, 2, 3, 4, 5, 6]}
    entries = stored_entries(url, "full-resume")
    assert entries[: len(before)] == before
    assert_chain(entries, "full-resume", require_end=True)


def test_a_run_stopped_by_a_full_disk_resumes_in_the_same_process_once_there_is_room(
    tmp_path: Path,
) -> None:
    """The process whose run failed is alive but no longer executing it: the run's lease
    must not keep it from being resumed (for the 60 s of a stale lease)."""
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, pragmas=CAP)
    with pytest.raises(WorkloadRuntimeError):
        chain().execute(1, deployment_id="d", store=store, run_id="full-again", durability="sync")
    store.close()
    report = chain().resume("full-again", store=f"sqlite:///{path}")
    assert report.status == "completed"
    assert report.state == {"last": 6, "seen": [1, 2, 3, 4, 5, 6]}
