"""The pool's check on checkout still catches a connection whose backend went away while it
sat idle in the pool, with retrying turned off (that the check costs a healthy connection
no round trip is pinned by ``tests/durable/test_pg_step_commits.py``)."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from codon_sdk.stores._postgres import PostgresStore

from .test_conformance import pg_schema_url

pytestmark = pytest.mark.postgres


def _terminate(url: str, app: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (app,),
        ).fetchone()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone() != (0,):
            time.sleep(0.02)
    return int(killed[0]) if killed else 0


@pytest.mark.parametrize("pool", [1, 3])
def test_an_idle_connection_whose_backend_was_terminated_is_replaced_not_used(
    pg_url: str, pool: int
) -> None:
    app = f"pool-check-{uuid.uuid4().hex[:8]}"
    with pg_schema_url(pg_url) as url:
        store = PostgresStore(
            f"{url}&application_name={app}&codon_retry_timeout=0", min_size=pool, max_size=pool
        )
        try:
            assert store.runs() == []
            assert _terminate(url, app) == pool  # every pooled connection, idle
            for _ in range(pool + 1):  # each dead one is found on checkout and replaced
                assert store.runs() == []
        finally:
            store.close()
