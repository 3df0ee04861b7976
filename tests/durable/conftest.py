"""Fixtures for the durable-execution tests: ledger URLs on a fresh SQLite file or PG schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import pg_schema_url


@pytest.fixture(autouse=True)
def org_namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test (and every child process it starts) runs with ORG_NAMESPACE=durable-tests."""
    monkeypatch.setenv("ORG_NAMESPACE", "durable-tests")
    monkeypatch.delenv("CODON_ORGANIZATION_ID", raising=False)
    monkeypatch.delenv("CODON_LEDGER_URL", raising=False)
    return "durable-tests"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A ledger URL on a SQLite file no other test uses (created on first use)."""
    return f"sqlite:///{tmp_path / 'ledgers' / 'ledger.db'}"


@pytest.fixture
def postgres_url(pg_url: str) -> Iterator[str]:
    """A ledger URL on the session's PostgreSQL database whose tables live in a new schema."""
    with pg_schema_url(pg_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The same test against a fresh SQLite file and a fresh PostgreSQL schema."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
