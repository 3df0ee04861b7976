"""Least-privilege PostgreSQL roles (``codon db grant``): the application role writes runs
but cannot disable the append-only triggers, delete or update events; the store warns
when it runs as the tables' owner (or a superuser)."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from codon_sdk import CachePolicy, CodonWorkload, PostgresStore, verify_run
from codon_sdk.stores import CacheEntry
from codon_sdk.stores._postgres import _warned_owner

psycopg = pytest.importorskip("psycopg")


@dataclass(frozen=True)
class Roles:
    admin_url: str  # the test's superuser, search_path set to the schema
    owner_url: str
    app_url: str
    schema: str
    owner: str
    app: str


def _codon(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``codon ARGS`` in a new process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _as(pg_url: str, role: str, schema: str) -> str:
    scheme, _, rest = pg_url.partition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}://{role}@{host}?options=-csearch_path%3D{schema}"


def _drop_roles(pg_url: str, *roles: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for role in roles:
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(f"DROP OWNED BY {role} CASCADE")
                admin.execute(f"DROP ROLE {role}")


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    """``codon db grant`` run (as a real command) on a fresh schema, with fresh role names."""
    tag = uuid.uuid4().hex[:10]
    schema, owner, app = f"roles_{tag}", f"codon_owner_{tag}", f"codon_app_{tag}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    admin_url = f"{pg_url}?options=-csearch_path%3D{schema}"
    try:
        done = _codon("db", "grant", "--ledger", admin_url, "--owner", owner, "--app", app)
        assert done.returncode == 0, done.stderr
        assert f"tables owned by {owner}" in done.stdout
        yield Roles(
            admin_url, _as(pg_url, owner, schema), _as(pg_url, app, schema), schema, owner, app
        )
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _drop_roles(pg_url, app, owner)


def _workload() -> CodonWorkload:
    def draft(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["seen"] = message
        return runtime.interrupt("approve?", payload=message)

    workload = CodonWorkload(name="Roles", version="1", org_namespace="t")
    workload.add_node(draft, "draft", "writer")
    return workload


def test_the_application_role_shares_the_cache(roles: Roles) -> None:
    """The application role may look up, add and replace cache entries (``codon_cache``)."""
    calls: list[Any] = []

    def lookup(message: Any, *, runtime: Any, context: Any) -> Any:
        calls.append(message)
        return message

    workload = CodonWorkload(name="RolesCache", version="1", org_namespace="t")
    workload.add_node(lookup, "lookup", "tool", cache=CachePolicy())
    store = PostgresStore(roles.app_url, min_size=0, max_size=2)
    try:
        for _ in range(2):
            assert workload.execute("q", deployment_id="prod", store=store).status == "completed"
        assert calls == ["q"]
        entry = CacheEntry(
            key="k" * 64, node_id="n" * 64, run_id="r", seq=1, leaf="00" * 32, created_us=1
        )
        assert store.put_cache(entry)
        assert store.put_cache(replace(entry, seq=2), replace=True)  # UPDATE is granted
        assert store.lookup_cache("k" * 64) == replace(entry, seq=2)
    finally:
        store.close()


def test_the_application_role_runs_resumes_and_verifies(roles: Roles) -> None:
    """Inserting events and updating run rows is all a run needs: execute, resume, verify."""
    store = PostgresStore(roles.app_url, min_size=0, max_size=2)
    try:
        workload = _workload()
        paused = workload.execute("hello", deployment_id="prod", store=store)
        final = workload.resume(paused.run_id, store=store, input="ok", actor="alice")
        assert final.status == "completed"
        assert verify_run(store, final.run_id).status == "unanchored"
    finally:
        store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE codon_events DISABLE TRIGGER ALL",
        "ALTER TABLE codon_events DISABLE TRIGGER codon_events_no_update_delete",
        "DELETE FROM codon_events",
        "UPDATE codon_events SET entry = entry",
        "TRUNCATE codon_events",
        "DROP TABLE codon_events",
        "ALTER TABLE codon_runs_log DISABLE TRIGGER ALL",
        "DELETE FROM codon_checkpoints",
        "CREATE TABLE codon_shadow (x int)",
    ],
)
def test_the_application_role_cannot_undo_append_only(roles: Roles, statement: str) -> None:
    """Connected as the application role, every way of rewriting the ledger is refused by
    privilege (not just by a trigger the role could switch off)."""
    store = PostgresStore(roles.app_url, min_size=0, max_size=1)
    try:
        _workload().execute("hello", deployment_id="prod", store=store, run_id="r1")
    finally:
        store.close()
    with psycopg.connect(roles.app_url, autocommit=True) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement)
        # the events are all still there, and the run still verifies
        count = app.execute("SELECT count(*) FROM codon_events WHERE run_id = 'r1'").fetchone()
        assert count is not None
        assert count[0] > 0
    assert verify_run(roles.app_url, "r1").status in ("unanchored", "incomplete")


def test_the_tables_belong_to_the_owner_and_the_grants_are_exact(roles: Roles) -> None:
    with psycopg.connect(roles.admin_url, autocommit=True) as admin:
        owners = admin.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = %s", (roles.schema,)
        ).fetchall()
        granted = admin.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_schema = %s",
            (roles.app, roles.schema),
        ).fetchall()
    assert {owner for _, owner in owners} == {roles.owner}
    events = {p for t, p in granted if t == "codon_events"}
    assert events == {"SELECT", "INSERT"}
    assert {p for t, p in granted if t == "codon_runs"} == {"SELECT", "INSERT", "UPDATE"}


def test_the_store_warns_once_when_it_runs_as_the_owner(
    roles: Roles, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner (and a superuser) could disable the triggers: one warning per URL."""
    caplog.set_level(logging.WARNING, logger="codon_sdk")
    for url in (roles.owner_url, roles.owner_url, roles.app_url):
        PostgresStore(url, min_size=0, max_size=1).close()
    warnings = [r for r in caplog.records if "owns its tables" in r.getMessage()]
    assert len(warnings) == 1
    assert roles.owner in warnings[0].getMessage()
    # a superuser is warned about too (a URL not seen before in this process)
    superuser = roles.admin_url + "&application_name=roles_test"
    _warned_owner.discard(superuser)
    PostgresStore(superuser, min_size=0, max_size=1).close()
    assert len([r for r in caplog.records if "owns its tables" in r.getMessage()]) == 2


def test_grant_is_idempotent_and_print_sql_names_every_grant(roles: Roles) -> None:
    again = _codon(
        "db", "grant", "--ledger", roles.admin_url, "--owner", roles.owner, "--app", roles.app
    )
    assert again.returncode == 0, again.stderr
    printed = _codon(
        "db", "grant", "--print-sql", "--owner", "own", "--app", "app", "--schema", "ledger"
    )
    assert printed.returncode == 0, printed.stderr
    assert 'GRANT SELECT, INSERT ON "ledger".codon_events TO app;' in printed.stdout
    assert 'ALTER TABLE "ledger".codon_events OWNER TO own;' in printed.stdout
    # DELETE only on the rate-limit windows (expired slots), never on a ledger table
    deletes = [line for line in printed.stdout.splitlines() if "DELETE" in line]
    assert all("codon_rate_slots" in line for line in deletes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner", "same", "--app", "same"], "must differ"),
        (["--owner", "Robert'); DROP TABLE x;--", "--app", "a"], "invalid owner role name"),
        (["--owner", "o", "--app", ""], "invalid application role name"),
    ],
)
def test_grant_refuses_bad_role_names(args: list[str], message: str) -> None:
    done = _codon("db", "grant", "--print-sql", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("codon: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_grant_refuses_a_ledger_that_is_not_postgresql(tmp_path: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "codon_sdk",
            "db",
            "grant",
            "--ledger",
            f"sqlite:///{tmp_path}/l.db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "needs a PostgreSQL ledger" in done.stderr
