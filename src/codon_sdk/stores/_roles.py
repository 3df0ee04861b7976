"""Least-privilege PostgreSQL roles: an owner that migrates, an application that writes.

The role that owns ``codon_events`` can ``ALTER TABLE ... DISABLE TRIGGER ALL`` and
then delete or rewrite events: append-only would hold only against honest code. So
the tables belong to an *owner* role used for migrations only, and the application
connects as a role that may read, insert events, checkpoints and log lines, and
insert and update run rows; nothing else. The append-only triggers refuse updates
and deletes, and only the owner (or a superuser) could switch them off.

``grant_sql`` gives the statements (``codon db grant --print-sql`` prints them for a
DBA); ``grant_roles`` runs them through a connection with the right to create roles
(``CREATEROLE``, or a superuser) and migrates the schema as the owner.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from codon_sdk.errors import InvalidStoreURLError
from codon_sdk.stores import _schema as schema
from codon_sdk.stores._approvers import APPROVERS_TABLE
from codon_sdk.stores._blob_ops import BLOBS_TABLE
from codon_sdk.stores._erase_ops import ERASURES_TABLE, HOLDS_TABLE, RETENTION_TABLE, SUBJECTS_TABLE
from codon_sdk.stores._schema_budgets import BUDGETS_TABLE, RATE_TABLE

__all__ = ["APP_PRIVILEGES", "apply_statements", "grant_sql", "owns_ledger_sql", "validate_role"]

_ROLE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")

#: What the application role may do, per table: nothing on events but read and insert.
APP_PRIVILEGES: Final[tuple[tuple[str, str], ...]] = (
    (schema.META_TABLE, "SELECT"),
    (schema.RUNS_TABLE, "SELECT, INSERT, UPDATE"),
    (schema.EVENTS_TABLE, "SELECT, INSERT"),
    (schema.CHECKPOINTS_TABLE, "SELECT, INSERT"),
    # UPDATE only for LOCK TABLE ... SHARE ROW EXCLUSIVE (serialising log indexes):
    # the append-only trigger refuses any update, and only the owner could disable it.
    (schema.RUNS_LOG_TABLE, "SELECT, INSERT, UPDATE"),
    # an index, not a ledger: an expired or unverifiable entry is replaced (UPDATE)
    (schema.CACHE_TABLE, "SELECT, INSERT, UPDATE"),
    # who may approve: the application reads the keyring, only the owner changes it
    (APPROVERS_TABLE, "SELECT"),
    # deployment budgets: totals updated in place by each charge
    (BUDGETS_TABLE, "SELECT, INSERT, UPDATE"),
    # shared rate windows: one row per granted call, expired ones deleted
    (RATE_TABLE, "SELECT, INSERT, DELETE"),
    # payload blobs: written once, read; never changed or deleted by the application
    (BLOBS_TABLE, "SELECT, INSERT"),
    # subjects are tagged as runs start; the erasure log, holds and retention policies
    # are the owner's (erasure lifts the events' trigger, which only the owner may do)
    (SUBJECTS_TABLE, "SELECT, INSERT"),
    (ERASURES_TABLE, "SELECT"),
    (HOLDS_TABLE, "SELECT"),
    (RETENTION_TABLE, "SELECT"),
)
_TABLES: Final = tuple(table for table, _ in APP_PRIVILEGES)

#: True when the connected role can disable the append-only triggers (owner or superuser).
owns_ledger_sql: Final = (
    "SELECT c.relowner IS NOT NULL AND pg_has_role(current_user, c.relowner, 'USAGE') "
    "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
    f"FROM pg_class c WHERE c.oid = to_regclass('{schema.EVENTS_TABLE}')"
)


def validate_role(name: str, what: str) -> str:
    """``name`` if it is a plain lower-case SQL identifier, else InvalidStoreURLError."""
    if not isinstance(name, str) or _ROLE.match(name) is None:
        raise InvalidStoreURLError(
            f"invalid {what} role name {name!r}: use 1-63 lower-case letters, digits and '_', "
            "starting with a letter or '_'"
        )
    return name


def grant_sql(owner: str, app: str, schema_name: str, *, create_roles: bool = True) -> list[str]:
    """The statements that make ``owner`` own the ledger and give ``app`` least privilege.

    Run them after the tables exist (``codon db grant`` migrates first). Idempotent:
    roles are created only when missing, ownership and grants are set again.
    """
    validate_role(owner, "owner")
    validate_role(app, "application")
    if owner == app:
        raise InvalidStoreURLError(
            f"the owner and the application role must differ (both are {owner!r}): the "
            "owner can disable the append-only triggers, the application must not"
        )
    quoted = _ident(schema_name)
    out: list[str] = []
    if create_roles:
        out += [_create_role(owner), _create_role(app)]
    out += [
        f"GRANT USAGE, CREATE ON SCHEMA {quoted} TO {owner}",
        f"GRANT USAGE ON SCHEMA {quoted} TO {app}",
        f"REVOKE CREATE ON SCHEMA {quoted} FROM {app}",
    ]
    for table in _TABLES:
        out.append(f"ALTER TABLE {quoted}.{table} OWNER TO {owner}")
    out.append(f"ALTER FUNCTION {quoted}.codon_events_append_only() OWNER TO {owner}")
    for table, privileges in APP_PRIVILEGES:
        out.append(f"REVOKE ALL ON {quoted}.{table} FROM {app}")
        out.append(f"GRANT {privileges} ON {quoted}.{table} TO {app}")
    return out


def _create_role(name: str) -> str:
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
        f"CREATE ROLE {name} LOGIN; END IF; END $$"
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def apply_statements(conn: Any, statements: Sequence[str]) -> None:
    """Run ``statements`` in one transaction on a psycopg connection."""
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
