"""``codon db grant``: least-privilege PostgreSQL roles for a ledger (see stores/_roles.py)."""

from __future__ import annotations

import argparse

from codon_sdk.cli._common import EXIT_OK, CliError
from codon_sdk.errors import CodonError
from codon_sdk.stores import default_ledger_url, mask_url

__all__ = ["add_db", "grant"]


def add_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="set up the ledger database (PostgreSQL roles)")
    db_cmds = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    grant_cmd = db_cmds.add_parser(
        "grant",
        help="create the tables, give them to an owner role and grant an application role "
        "only what it needs (read; insert events, checkpoints and log lines; insert and "
        "update run rows): it cannot disable triggers, delete or update events",
        description="Connect with --ledger as a role that may create roles (CREATEROLE or a "
        "superuser), migrate the ledger schema, make --owner own the tables and grant --app "
        "least privilege. Run it again after upgrading codon-sdk. Roles are created without "
        "a password: set one with ALTER ROLE ... PASSWORD, or use your server's "
        "authentication. The application then connects as --app.",
    )
    grant_cmd.add_argument("--ledger", metavar="URL", help="PostgreSQL URL of an admin role")
    grant_cmd.add_argument("--owner", default="codon_owner", help="owner role (codon_owner)")
    grant_cmd.add_argument("--app", default="codon_app", help="application role (codon_app)")
    grant_cmd.add_argument(
        "--schema", help="schema holding the tables (default: the connection's current schema)"
    )
    grant_cmd.add_argument(
        "--print-sql",
        action="store_true",
        help="print the SQL instead of running it (for a DBA; run it after the tables exist)",
    )
    grant_cmd.set_defaults(func=grant)


def grant(args: argparse.Namespace) -> int:
    from codon_sdk.stores import grant_sql

    if args.print_sql:
        try:
            statements = grant_sql(args.owner, args.app, args.schema or "public")
        except CodonError as exc:
            raise CliError(str(exc)) from exc
        print(";\n".join(statements) + ";")
        return EXIT_OK
    url = args.ledger or default_ledger_url()
    if not url.lower().startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise CliError(
            f"codon db grant needs a PostgreSQL ledger, not {mask_url(url)}; pass --ledger "
            "postgresql://admin@host/db"
        )
    try:
        schema_name = _grant(url, args.owner, args.app, args.schema)
    except CodonError as exc:
        raise CliError(str(exc), 1) from exc
    print(
        f"ledger {mask_url(url)} (schema {schema_name}): tables owned by {args.owner}; "
        f"{args.app} may read, insert events and update run rows, and cannot disable "
        "triggers, delete or update events"
    )
    return EXIT_OK


def _grant(url: str, owner: str, app: str, schema_name: str | None) -> str:
    import psycopg

    from codon_sdk.stores import apply_statements, connect_admin, grant_sql, migrate_as_admin

    grant_sql(owner, app, "public")  # names checked before anything is created
    migrate_as_admin(url)
    with connect_admin(url) as conn:
        try:
            if schema_name is None:
                row = conn.execute("SELECT current_schema()").fetchone()
                schema_name = str(row[0]) if row and row[0] else "public"
            apply_statements(conn, grant_sql(owner, app, schema_name))
        except psycopg.Error as exc:
            raise CliError(
                f"cannot set up the roles in {mask_url(url)}: {str(exc).strip()}; connect as "
                "a role with CREATEROLE (or a superuser) that may alter the ledger tables",
                1,
            ) from exc
    return schema_name
