"""What the SQL backends share: schema migrations, the version check, row mapping, append checks.

Schema versions are ordered migration lists whose index is the version: a
database at version ``v`` has had migrations ``0..v`` applied, a database
without the meta table is at version ``-1``, and opening it applies the
migrations after its version, each in the transaction that records the new
version. There is one list per dialect (SQLite, PostgreSQL); both lists always
have the same length, and migration ``i`` does the same thing in both. A later
feature (signed checkpoints, a blob table) is a new migration appended to both
lists, never an edit of an old one.

Tables (version 1; version 2 adds ``codon_checkpoints`` and ``codon_runs_log``; version 3
adds the runs column ``lease_us``, lets a run have two lines in the log of runs, a start
line and a finish line, and backfills the start line of every run begun before it;
version 4 adds an index per listing filter, each in the listing order; version 5 the cache
by identity; version 6 the keyring of approvers, ``codon_approvers``):

* ``codon_meta(key, value)``: ``schema_version`` and room for other settings;
* ``codon_runs``: one row per run, the :class:`~codon_sdk.stores._base.RunInfo` columns;
* ``codon_events(run_id, seq, entry, leaf_hash)``: each entry's stored form (BLOB/BYTEA,
  see ``_codec``: the entry without what the row holds, read back byte for byte; rows
  of older versions hold the entry verbatim), primary key ``(run_id, seq)``. Triggers
  make any UPDATE or DELETE of an event row fail (and, in PostgreSQL, TRUNCATE), so the table is
  append-only for everything short of dropping the triggers.

No foreign key ties events to runs: the stores write both in one transaction,
and a per-row key check would slow the append path down for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeAlias

from typing_extensions import assert_never

from codon_sdk.errors import RunConflictError, SchemaVersionError, StoreCorruptError
from codon_sdk.stores import _codec as codec
from codon_sdk.stores._approvers import (
    AddApprover,
    ApproverOp,
    ListApprovers,
    RemoveApprover,
    approvers_migration,
)
from codon_sdk.stores._base import (
    AppendEntries,
    BeginRun,
    CacheEntry,
    ClaimRun,
    Entry,
    GetRun,
    ListRuns,
    LookupCache,
    Op,
    PutCache,
    PutCheckpoint,
    ReadCheckpoints,
    ReadEntries,
    ReadRunsLog,
    RenewLease,
    RunInfo,
    check_owner,
)
from codon_sdk.stores._blob_ops import GetBlob, PutBlob, blobs_migration
from codon_sdk.stores._budgets import ChargeBudget, ReadBudget, TakeRateSlot
from codon_sdk.stores._erase_ops import ERASE_OPS, describe_erase, erase_migration
from codon_sdk.stores._schema_budgets import MIGRATION as BUDGETS_MIGRATION
from codon_sdk.stores._schema_budgets import RATE_INDEX, RATE_MIGRATION

__all__ = [
    "APPEND_ONLY_MESSAGE",
    "CACHE_COLUMNS",
    "CACHE_TABLE",
    "CHECKPOINTS_TABLE",
    "EVENTS_TABLE",
    "RUNS_LOG_TABLE",
    "LIST_ORDER",
    "NO_END",
    "META_TABLE",
    "POSTGRES_MIGRATIONS",
    "RUNS_TABLE",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "SQLITE_MIGRATIONS",
    "VERSION_KEY",
    "Migration",
    "cache_from_row",
    "check_checkpoint",
    "check_owner",
    "check_version",
    "finish_refused",
    "describe",
    "info_from_row",
    "insert_params",
    "read_bounds",
    "parse_version",
    "pending",
    "run_row",
]

Migration: TypeAlias = tuple[str, ...]
"""The statements of one migration, run in order inside one transaction."""

META_TABLE: Final = "codon_meta"
RUNS_TABLE: Final = "codon_runs"
EVENTS_TABLE: Final = "codon_events"
CHECKPOINTS_TABLE: Final = "codon_checkpoints"
RUNS_LOG_TABLE: Final = "codon_runs_log"
CACHE_TABLE: Final = "codon_cache"
VERSION_KEY: Final = "schema_version"
APPEND_ONLY_MESSAGE: Final = (
    "codon_events is append-only: ledger events cannot be updated or deleted"
)

NO_END: Final = 2**63 - 1
"""An upper bound above every seq (fits SQLite INTEGER and PostgreSQL BIGINT)."""

#: Newest first; equal start times by run id, descending (the order MemoryStore lists in).
LIST_ORDER: Final = " ORDER BY started_us DESC, run_id DESC"

#: The runs-index columns, in :class:`RunInfo` field order (``SELECT`` lists and row mapping).
RUN_COLUMNS: Final = (
    "run_id",
    "workload_name",
    "workload_version",
    "logic_id",
    "deployment_id",
    "status",
    "started_us",
    "finished_us",
    "event_count",
    "head",
    "parent_run_id",
    "owner",
    "heartbeat_us",
    "lease_us",
)

#: Migration 3's start lines for runs that have none, in (started_us, run_id) order, numbered
#: on from the log's end; ``{now}`` is the dialect's current time in microseconds.
_BACKFILL_START_LINES: Final = f"""INSERT INTO {RUNS_LOG_TABLE} (idx, run_id, size, root, logged_us)
    SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM {RUNS_LOG_TABLE})
               + ROW_NUMBER() OVER (ORDER BY r.started_us, r.run_id) - 1,
           r.run_id, 1, e.leaf_hash, {{now}}
    FROM {RUNS_TABLE} r JOIN {EVENTS_TABLE} e ON e.run_id = r.run_id AND e.seq = 0
    WHERE NOT EXISTS (
        SELECT 1 FROM {RUNS_LOG_TABLE} l WHERE l.run_id = r.run_id AND l.size = 1
    )"""
_RUNS_LOG_INDEX: Final = f"CREATE INDEX codon_runs_log_run ON {RUNS_LOG_TABLE} (run_id, size)"

#: Migration 4: an index per listing filter, each ending in the listing order, so a
#: filtered page (keyset paging from a run included) reads only the rows it returns.
_LISTING_INDICES: Final = (
    "DROP INDEX codon_runs_status",
    *(
        f"CREATE INDEX codon_runs_by_{column} ON {RUNS_TABLE} "
        f"({column}, started_us DESC, run_id DESC)"
        for column in ("status", "workload_name", "logic_id", "deployment_id", "parent_run_id")
    ),
)

#: The cache-by-identity columns, in :class:`~codon_sdk.stores._base.CacheEntry` field order.
CACHE_COLUMNS: Final = ("key", "node_id", "run_id", "seq", "leaf", "created_us")

#: Migration 5: the cache by identity (``{int}``: the dialect's 64-bit integer type). An
#: index, not a ledger: entries are replaced when they expire or do not verify.
_CACHE_TABLE: Final = f"""CREATE TABLE {CACHE_TABLE} (
    key TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    seq {{int}} NOT NULL,
    leaf TEXT NOT NULL,
    created_us {{int}} NOT NULL
)"""

# --------------------------------------------------------------------------- SQLite

SQLITE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    # 0: the meta table that records the schema version.
    (f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    # 1: runs index, events, append-only triggers.
    (
        f"""CREATE TABLE {RUNS_TABLE} (
            run_id TEXT PRIMARY KEY,
            workload_name TEXT NOT NULL,
            workload_version TEXT NOT NULL,
            logic_id TEXT NOT NULL,
            deployment_id TEXT NOT NULL,
            status TEXT NOT NULL,
            started_us INTEGER NOT NULL,
            finished_us INTEGER,
            event_count INTEGER NOT NULL DEFAULT 0,
            head TEXT,
            parent_run_id TEXT,
            owner TEXT,
            heartbeat_us INTEGER
        )""",
        f"CREATE INDEX codon_runs_started ON {RUNS_TABLE} (started_us DESC, run_id DESC)",
        f"CREATE INDEX codon_runs_status ON {RUNS_TABLE} (status, started_us DESC)",
        f"""CREATE TABLE {EVENTS_TABLE} (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            entry BLOB NOT NULL,
            leaf_hash BLOB NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
        f"""CREATE TRIGGER codon_events_no_update BEFORE UPDATE ON {EVENTS_TABLE}
            BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
        f"""CREATE TRIGGER codon_events_no_delete BEFORE DELETE ON {EVENTS_TABLE}
            BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""",
    ),
    # 2: signed checkpoints and the log of finished runs, append-only too.
    (
        f"""CREATE TABLE {CHECKPOINTS_TABLE} (
            run_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            note BLOB NOT NULL,
            created_us INTEGER NOT NULL,
            PRIMARY KEY (run_id, size)
        )""",
        f"""CREATE TABLE {RUNS_LOG_TABLE} (
            idx INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            logged_us INTEGER NOT NULL
        )""",
        *(
            f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
            for table in (CHECKPOINTS_TABLE, RUNS_LOG_TABLE)
            for op in ("UPDATE", "DELETE")
        ),
    ),
    # 3: the holder's lease period; start lines in the log of runs (a run may have two
    # lines, so the UNIQUE run_id goes: SQLite rebuilds the table, its triggers with it).
    (
        f"ALTER TABLE {RUNS_TABLE} ADD COLUMN lease_us INTEGER",
        f"""CREATE TABLE {RUNS_LOG_TABLE}_v3 (
            idx INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            logged_us INTEGER NOT NULL
        )""",
        f"INSERT INTO {RUNS_LOG_TABLE}_v3 (idx, run_id, size, root, logged_us) "
        f"SELECT idx, run_id, size, root, logged_us FROM {RUNS_LOG_TABLE}",
        f"DROP TABLE {RUNS_LOG_TABLE}",  # and its triggers
        f"ALTER TABLE {RUNS_LOG_TABLE}_v3 RENAME TO {RUNS_LOG_TABLE}",
        _RUNS_LOG_INDEX,
        *(
            f"""CREATE TRIGGER {RUNS_LOG_TABLE}_no_{op.lower()} BEFORE {op} ON {RUNS_LOG_TABLE}
            BEGIN SELECT RAISE(ABORT, '{RUNS_LOG_TABLE} is append-only'); END"""
            for op in ("UPDATE", "DELETE")
        ),
        _BACKFILL_START_LINES.format(
            now="CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
        ),
    ),
    # 4: listing indices (see _LISTING_INDICES).
    _LISTING_INDICES,
    # 5: the cache by identity (see _CACHE_TABLE).
    (_CACHE_TABLE.format(int="INTEGER"),),
    # 6: the keyring of approvers (see stores/_approvers.py).
    approvers_migration("INTEGER"),
    # 7: deployment budgets (see stores/_schema_budgets.py).
    (
        BUDGETS_MIGRATION.format(real="REAL", int="INTEGER"),
        RATE_MIGRATION.format(int="INTEGER"),
        RATE_INDEX,
    ),
    # 8: payload blobs kept in the database (see stores/_blob_ops.py).
    blobs_migration("BLOB", "INTEGER"),
    # 9: subjects, the erasure log, legal holds, retention (see stores/_erase_ops.py).
    erase_migration("sqlite"),
)

# --------------------------------------------------------------------------- PostgreSQL

POSTGRES_MIGRATIONS: Final[tuple[Migration, ...]] = (
    # 0: the meta table that records the schema version.
    (f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    # 1: runs index, events, append-only triggers. run_id sorts by code point ("C"),
    # as Python strings do, so listing order does not depend on the server's locale.
    (
        f"""CREATE TABLE {RUNS_TABLE} (
            run_id TEXT COLLATE "C" PRIMARY KEY,
            workload_name TEXT NOT NULL,
            workload_version TEXT NOT NULL,
            logic_id TEXT NOT NULL,
            deployment_id TEXT NOT NULL,
            status TEXT NOT NULL,
            started_us BIGINT NOT NULL,
            finished_us BIGINT,
            event_count BIGINT NOT NULL DEFAULT 0,
            head TEXT,
            parent_run_id TEXT,
            owner TEXT,
            heartbeat_us BIGINT
        )""",
        f"CREATE INDEX codon_runs_started ON {RUNS_TABLE} (started_us DESC, run_id DESC)",
        f"CREATE INDEX codon_runs_status ON {RUNS_TABLE} (status, started_us DESC)",
        f"""CREATE TABLE {EVENTS_TABLE} (
            run_id TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL,
            entry BYTEA NOT NULL,
            leaf_hash BYTEA NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
        f"""CREATE OR REPLACE FUNCTION codon_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (% refused)', TG_OP
                    USING HINT = 'the ledger is an audit record; append new events instead';
            END
            $$""",
        f"""CREATE TRIGGER codon_events_no_update_delete BEFORE UPDATE OR DELETE
            ON {EVENTS_TABLE} FOR EACH ROW EXECUTE FUNCTION codon_events_append_only()""",
        f"""CREATE TRIGGER codon_events_no_truncate BEFORE TRUNCATE
            ON {EVENTS_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION codon_events_append_only()""",
    ),
    # 2: signed checkpoints and the log of finished runs, append-only too.
    (
        f"""CREATE TABLE {CHECKPOINTS_TABLE} (
            run_id TEXT COLLATE "C" NOT NULL,
            size BIGINT NOT NULL,
            note BYTEA NOT NULL,
            created_us BIGINT NOT NULL,
            PRIMARY KEY (run_id, size)
        )""",
        f"""CREATE TABLE {RUNS_LOG_TABLE} (
            idx BIGINT PRIMARY KEY,
            run_id TEXT COLLATE "C" NOT NULL UNIQUE,
            size BIGINT NOT NULL,
            root BYTEA NOT NULL,
            logged_us BIGINT NOT NULL
        )""",
        *(
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION codon_events_append_only()"""
            for table in (CHECKPOINTS_TABLE, RUNS_LOG_TABLE)
        ),
        *(
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION codon_events_append_only()"""
            for table in (CHECKPOINTS_TABLE, RUNS_LOG_TABLE)
        ),
    ),
    # 3: the holder's lease period; start lines in the log of runs (a run may have two
    # lines, so the UNIQUE run_id constraint goes, whatever it was named).
    (
        f"ALTER TABLE {RUNS_TABLE} ADD COLUMN lease_us BIGINT",
        f"""DO $$
            DECLARE found TEXT;
            BEGIN
                FOR found IN SELECT conname FROM pg_constraint
                    WHERE conrelid = '{RUNS_LOG_TABLE}'::regclass AND contype = 'u'
                LOOP
                    EXECUTE format('ALTER TABLE {RUNS_LOG_TABLE} DROP CONSTRAINT %I', found);
                END LOOP;
            END
            $$""",
        _RUNS_LOG_INDEX,
        _BACKFILL_START_LINES.format(now="(EXTRACT(EPOCH FROM clock_timestamp()) * 1e6)::BIGINT"),
    ),
    # 4: listing indices (see _LISTING_INDICES).
    _LISTING_INDICES,
    # 5: the cache by identity (see _CACHE_TABLE).
    (_CACHE_TABLE.format(int="BIGINT"),),
    # 6: the keyring of approvers (see stores/_approvers.py).
    approvers_migration("BIGINT"),
    # 7: deployment budgets (see stores/_schema_budgets.py).
    (
        BUDGETS_MIGRATION.format(real="DOUBLE PRECISION", int="BIGINT"),
        RATE_MIGRATION.format(int="BIGINT"),
        RATE_INDEX,
    ),
    # 8: payload blobs kept in the database (see stores/_blob_ops.py).
    blobs_migration("BYTEA", "BIGINT"),
    # 9: subjects, the erasure log, legal holds, retention (see stores/_erase_ops.py).
    erase_migration("postgres"),
)

SCHEMA_VERSION: Final = len(SQLITE_MIGRATIONS) - 1
"""The newest schema version this SDK knows."""

# --------------------------------------------------------------------------- versions


def parse_version(value: object, *, where: str) -> int:
    """The schema version stored in the meta table (``None``: no version yet, ``-1``)."""
    if value is None:
        return -1
    try:
        version = int(str(value))
    except ValueError:
        version = -2
    if version < 0:
        raise StoreCorruptError(
            f"{where} has schema version {value!r} in {META_TABLE}, which is not a version "
            "number; the tables were damaged or written by something else: restore the "
            "ledger from a backup, or point codon at a new database"
        )
    return version


def check_version(found: int, *, where: str, latest: int = SCHEMA_VERSION) -> None:
    """Refuse a database written by a newer SDK than this one."""
    if found > latest:
        raise SchemaVersionError(
            f"{where} was written by a newer codon-sdk (schema {found}, this SDK knows up to "
            f"{latest}); upgrade codon-sdk"
        )


def pending(
    found: int, migrations: Sequence[Migration], *, where: str
) -> list[tuple[int, Migration]]:
    """``(version, statements)`` of the migrations a database at version ``found`` still needs."""
    check_version(found, where=where, latest=len(migrations) - 1)
    return [(v, m) for v, m in enumerate(migrations) if v > found]


# --------------------------------------------------------------------------- rows


def info_from_row(row: Sequence[Any]) -> RunInfo:
    """A :class:`RunInfo` from a row selected as :data:`RUN_COLUMNS`."""
    return RunInfo(**dict(zip(RUN_COLUMNS, row, strict=True)))


def cache_from_row(row: Sequence[Any]) -> CacheEntry:
    """A :class:`CacheEntry` from a row selected as :data:`CACHE_COLUMNS`, as stored (its
    reader checks every field: a row is hostile input)."""
    return CacheEntry(**dict(zip(CACHE_COLUMNS, row, strict=True)))


def run_row(info: RunInfo, entries: Sequence[Entry]) -> tuple[Any, ...]:
    """The :data:`RUN_COLUMNS` values of a new run that starts with ``entries``."""
    return (
        info.run_id,
        info.workload_name,
        info.workload_version,
        info.logic_id,
        info.deployment_id,
        info.status,
        info.started_us,
        info.finished_us,
        len(entries),
        entries[-1][2].hex() if entries else None,
        info.parent_run_id,
        info.owner,
        info.heartbeat_us,
        info.lease_us,
    )


def insert_params(run_id: str, entries: Sequence[Entry]) -> list[tuple[str, int, bytes, bytes]]:
    """Parameters of one ``executemany`` that inserts ``entries`` into the events table."""
    if not entries:
        return []
    stored = codec.stored_rows(run_id, entries)
    return [
        (run_id, seq, entry, leaf) for (seq, _, leaf), entry in zip(entries, stored, strict=True)
    ]


def read_bounds(op: ReadEntries, event_count: Callable[[], int]) -> tuple[int, int]:
    """``(start, end)`` seqs to select, ``start <= seq < end``.

    Negative bounds count from the end, as in a Python slice (MemoryStore slices
    a list); only then is ``event_count()`` called.
    """
    start, end = op.start, op.end
    if start < 0 or (end is not None and end < 0):
        start, end, _ = slice(start, end).indices(event_count())
    return start, NO_END if end is None else end


# --------------------------------------------------------------------------- append checks


def describe(op: Op) -> str:
    """What an operation was doing, for error messages (``could not <describe(op)> ...``)."""
    if isinstance(op, AppendEntries):
        return f"append {len(op.entries)} event(s) to run {op.run_id!r}"
    if isinstance(op, ReadEntries):
        return f"read the events of run {op.run_id!r}"
    if isinstance(op, BeginRun):
        return f"begin run {op.info.run_id!r}"
    if isinstance(op, GetRun):
        return f"get run {op.run_id!r}"
    if isinstance(op, ListRuns):
        return "list runs"
    if isinstance(op, ClaimRun):
        return f"claim run {op.run_id!r} for {op.owner!r}"
    if isinstance(op, ReadCheckpoints):
        return f"read the checkpoints of run {op.run_id!r}"
    if isinstance(op, PutCheckpoint):
        return f"store a checkpoint of size {op.size} for run {op.run_id!r}"
    if isinstance(op, ReadRunsLog):
        return "read the log of runs"
    if isinstance(op, RenewLease):
        return f"renew the lease of {op.owner!r} on run {op.run_id!r}"
    if isinstance(op, LookupCache):
        return f"look up cache key {op.key[:16]!r}"
    if isinstance(op, PutCache):
        return f"store cache key {op.entry.key[:16]!r}"
    if isinstance(op, (AddApprover, RemoveApprover, ListApprovers)):
        return _describe_approvers(op)
    if isinstance(op, (ChargeBudget, ReadBudget)):
        verb = "charge" if isinstance(op, ChargeBudget) else "read"
        return f"{verb} budget {op.budget!r} of deployment {op.deployment_id!r}"
    if isinstance(op, TakeRateSlot):
        return f"take a place in the rate-limit window {op.key[:60]!r}"
    if isinstance(op, PutBlob):
        return f"store blob {op.sha256[:16]} ({len(op.data)} bytes)"
    if isinstance(op, GetBlob):
        return f"read blob {op.sha256[:16]}"
    if isinstance(op, ERASE_OPS):
        return describe_erase(op)
    assert_never(op)


def _describe_approvers(op: ApproverOp) -> str:
    if isinstance(op, AddApprover):
        return f"add approver {op.key.name!r} for workload {op.key.workload_name!r}"
    if isinstance(op, RemoveApprover):
        return f"remove an approver of workload {op.workload_name!r}"
    return "list approvers"


def finish_refused(run_id: str) -> RunConflictError:
    return RunConflictError(f"run {run_id!r} already has a finish line in the log of runs")


def check_checkpoint(run_id: str, size: int, held: bytes | None, note: bytes) -> bool:
    """Whether ``note`` still needs storing: False if the same note is held; raise if another is."""
    if held is None:
        return True
    if bytes(held) != note:
        raise RunConflictError(f"run {run_id!r} already has a different checkpoint for size {size}")
    return False
