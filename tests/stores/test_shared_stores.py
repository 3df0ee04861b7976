"""Stores named by URL are shared per process: opened once, reused by every run, reopened when
closed or when the SQLite file under them was replaced; ``memory://`` is never shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, open_store
from codon_sdk.errors import StoreError
from codon_sdk.stores._open import close_shared, shared_store


def _workload() -> CodonWorkload:
    workload = CodonWorkload(name="shared", version="1", org_namespace="tests")
    workload.add_node(lambda m, *, runtime, context: m, "echo", "r")
    return workload


def test_runs_naming_one_url_share_one_open_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = shared_store(url)
    _workload().execute(1, deployment_id="d", store=url, run_id="a")
    _workload().execute(2, deployment_id="d", store=url, run_id="b")
    assert shared_store(url) is store
    assert not store.closed  # runs leave the shared store open
    assert {r.run_id for r in store.runs()} == {"a", "b"}


def test_a_closed_shared_store_is_opened_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = shared_store(url)
    first.close()
    with pytest.raises(StoreError, match="is closed; open a new one"):
        first.runs()
    report = _workload().execute(1, deployment_id="d", store=url, run_id="after-close")
    assert report.status == "completed"
    again = shared_store(url)
    assert again is not first
    assert not again.closed
    assert again.has_run("after-close")


def test_a_removed_sqlite_file_is_not_served_by_the_old_handle(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    _workload().execute(1, deployment_id="d", store=url, run_id="old")
    old = shared_store(url)
    for suffix in ("", "-wal", "-shm"):  # the ledger is moved away, as an operator would
        name = Path(f"{path}{suffix}")
        if name.exists():
            name.rename(tmp_path / f"moved{suffix}")
    _workload().execute(2, deployment_id="d", store=url, run_id="new")
    assert old.closed
    with open_store(url, notary=None) as reader:
        assert [r.run_id for r in reader.runs()] == ["new"]


def test_memory_urls_are_never_shared() -> None:
    first, second = shared_store("memory://"), shared_store("memory://")
    assert first is not second
    report = _workload().execute(1, deployment_id="d", store="memory://", run_id="m")
    assert report.status == "completed"


def test_close_shared_closes_every_shared_store(tmp_path: Path) -> None:
    stores: list[Any] = [shared_store(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(3)]
    close_shared()
    assert all(s.closed for s in stores)


@pytest.mark.postgres
def test_postgres_runs_naming_one_url_share_one_pool(pg_url: str) -> None:
    store = shared_store(pg_url)
    for n in range(3):
        _workload().execute(n, deployment_id="d", store=pg_url, run_id=f"shared-pg-{n}")
    assert shared_store(pg_url) is store
    assert all(store.has_run(f"shared-pg-{n}") for n in range(3))
