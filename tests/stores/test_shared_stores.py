"""PostgreSQL stores named by URL are shared per process: opened once, reused by every run,
reopened when closed, closed at exit. SQLite and ``memory://`` URLs open a store per call
(a SQLite file is whole, its write-ahead log checkpointed, when the run returns)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import StoreError
from codon_sdk.stores._open import close_shared, is_shared, shared_store


def _workload() -> CodonWorkload:
    workload = CodonWorkload(name="shared", version="1", org_namespace="tests")
    workload.add_node(lambda m, *, runtime, context: m, "echo", "r")
    return workload


@pytest.mark.postgres
def test_runs_naming_one_postgres_url_share_one_open_store(pg_url: str) -> None:
    store = shared_store(pg_url)
    for n in range(3):
        _workload().execute(n, deployment_id="d", store=pg_url, run_id=f"shared-pg-{n}")
    assert shared_store(pg_url) is store
    assert is_shared(store)
    assert not store.closed  # runs leave the shared store open
    assert all(store.has_run(f"shared-pg-{n}") for n in range(3))


@pytest.mark.postgres
def test_a_closed_shared_store_fails_clearly_and_is_opened_again(pg_url: str) -> None:
    first = shared_store(pg_url)
    first.close()
    with pytest.raises(StoreError, match="is closed; open a new one"):
        first.runs()
    report = _workload().execute(1, deployment_id="d", store=pg_url, run_id="after-close")
    assert report.status == "completed"
    again = shared_store(pg_url)
    assert again is not first
    assert not again.closed
    assert again.has_run("after-close")


@pytest.mark.postgres
def test_close_shared_closes_every_shared_store(pg_url: str) -> None:
    store = shared_store(pg_url)
    close_shared()
    assert store.closed
    assert not is_shared(store)


def test_a_sqlite_url_opens_a_store_per_run_and_leaves_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    first, second = shared_store(url), shared_store(url)
    assert first is not second
    assert not is_shared(first)
    first.close()
    second.close()
    _workload().execute(1, deployment_id="d", store=url, run_id="copied")
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)  # the main file alone, as a backup by cp would take it
    with sqlite3.connect(copy) as conn:
        rows = conn.execute("SELECT count(*) FROM codon_events WHERE run_id = 'copied'")
        assert rows.fetchone()[0] > 0
    conn.close()


def test_memory_urls_are_never_shared() -> None:
    first, second = shared_store("memory://"), shared_store("memory://")
    assert first is not second
    report = _workload().execute(1, deployment_id="d", store="memory://", run_id="m")
    assert report.status == "completed"
