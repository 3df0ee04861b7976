"""Shared fixtures: real PostgreSQL (a throwaway database per session), temp SQLite files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = os.environ.get(
    "CODON_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session, dropped at the end.

    Skips when no server answers on 127.0.0.1:5432, except under ``CI=true``,
    where a missing server fails the run.
    """
    try:
        admin = _pg_admin_connect()
    except Exception as exc:  # psycopg.OperationalError, or psycopg missing
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but is unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"codon_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _close_shared_stores() -> Iterator[None]:
    """Each test starts without the stores earlier tests' ``execute(store=url)`` left open."""
    yield
    from codon_sdk.stores._open import close_shared

    close_shared()
