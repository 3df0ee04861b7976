"""What the two SQL backends share at run time: one statement generator, routing an
operation to its handler, and the operations whose handling is the same in both.

:func:`statements` writes every statement SQLite and PostgreSQL both run once, with the
dialect's paramstyle as its parameter (``?`` for ``sqlite3``, ``%s`` for psycopg, which
also binds binary values as ``%b``); each backend keeps only the statements its dialect
alone has (SQLite's bulk insert over ``json_each``, PostgreSQL's row locks and the checks
that fail a pipelined transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typing_extensions import assert_never

from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.stores import _codec as codec
from codon_sdk.stores import _schema as schema
from codon_sdk.stores._approvers import AddApprover, ListApprovers, RemoveApprover, sql_approvers
from codon_sdk.stores._base import (
    LIST_FILTERS,
    AppendEntries,
    BeginRun,
    ClaimRun,
    GetRun,
    LedgerStore,
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
from codon_sdk.stores._blob_ops import GetBlob, PutBlob, sql_blobs
from codon_sdk.stores._budgets import (
    ChargeBudget,
    ReadBudget,
    TakeRateSlot,
    charge_sql,
    read_sql,
    take_rate_sql,
)
from codon_sdk.stores._erase_ops import ERASE_OPS, sql_erase

__all__ = ["SQLStore", "Statements", "statements"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Statements:
    """Every statement both SQL backends run, in one dialect's paramstyle (:func:`statements`)."""

    placeholder: str
    #: A run's :data:`~codon_sdk.stores._schema.RUN_COLUMNS` by run id.
    select_run: str
    #: A run's listing key, (started_us, run_id), by run id (``ListRuns.after``).
    select_run_key: str
    #: A run's owner and event count by run id.
    select_holder: str
    insert_run: str
    insert_events: str
    #: The fenced update of an append: matches only when the owner holds the run and the
    #: first seq is the next one (parameters: count, head, status, finished_us, release,
    #: heartbeat_us, run_id, owner, first seq).
    append_update: str
    claim: str
    read_events: str
    select_version: str
    set_version: str
    #: :class:`RenewLease`: the fenced heartbeat update, and the holder read that says why
    #: it matched nothing.
    renew: str
    renew_holder: str
    read_checkpoints: str
    get_checkpoint: str
    put_checkpoint: str
    read_log: str
    finished_line: str
    log_run: str
    #: The cache by identity: an entry by key; store one if the key has none (the first
    #: wins), or in place of the one held (``PutCache.replace``).
    lookup_cache: str
    put_cache: str
    replace_cache: str

    def list_runs(
        self, op: ListRuns, after: tuple[int, str] | None = None
    ) -> tuple[str, tuple[object, ...]]:
        """``SELECT`` of the runs :class:`ListRuns` asks for, and its parameters; ``after``
        is the (started_us, run_id) of ``op.after``, which the caller looked up.

        A negative limit is left to the caller (slice the rows), as MemoryStore slices.
        """
        p = self.placeholder
        clauses: list[str] = []
        params: list[object] = []
        for column in LIST_FILTERS:
            value = getattr(op, column)
            if value is not None:
                clauses.append(f"{column} = {p}")
                params.append(value)
        if op.started_from_us is not None:
            clauses.append(f"started_us >= {p}")
            params.append(op.started_from_us)
        if op.started_before_us is not None:
            clauses.append(f"started_us < {p}")
            params.append(op.started_before_us)
        if after is not None:  # keyset: the index on (..., started_us, run_id) serves it
            clauses.append(f"(started_us, run_id) < ({p}, {p})")
            params.extend(after)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"SELECT {_COLUMNS} FROM {schema.RUNS_TABLE}{where}{schema.LIST_ORDER}"
        if op.limit is not None and op.limit >= 0:
            sql += f" LIMIT {p}"
            params.append(op.limit)
        return sql, tuple(params)


_COLUMNS = ", ".join(schema.RUN_COLUMNS)
_CACHE_COLUMNS = ", ".join(schema.CACHE_COLUMNS)


def statements(placeholder: str, *, binary: str | None = None) -> Statements:
    """The shared statements with ``placeholder`` for parameters (``binary`` for the entry and
    leaf-hash bytes of an event, where the driver binds those differently)."""
    p, b = placeholder, binary or placeholder
    runs, events, meta = schema.RUNS_TABLE, schema.EVENTS_TABLE, schema.META_TABLE
    checkpoints, log = schema.CHECKPOINTS_TABLE, schema.RUNS_LOG_TABLE
    cache = schema.CACHE_TABLE
    put_cache = (
        f"INSERT INTO {cache} ({_CACHE_COLUMNS}) "
        f"VALUES ({', '.join([p] * len(schema.CACHE_COLUMNS))})"
    )
    return Statements(
        placeholder=p,
        select_run=f"SELECT {_COLUMNS} FROM {runs} WHERE run_id = {p}",
        select_run_key=f"SELECT started_us, run_id FROM {runs} WHERE run_id = {p}",
        select_holder=f"SELECT owner, event_count FROM {runs} WHERE run_id = {p}",
        insert_run=(
            f"INSERT INTO {runs} ({_COLUMNS}) VALUES ({', '.join([p] * len(schema.RUN_COLUMNS))})"
        ),
        insert_events=(
            f"INSERT INTO {events} (run_id, seq, entry, leaf_hash) VALUES ({p}, {p}, {b}, {b})"
        ),
        append_update=(
            f"UPDATE {runs} SET event_count = event_count + {p}, head = COALESCE({p}, head), "
            f"status = COALESCE({p}, status), finished_us = COALESCE({p}, finished_us), "
            f"owner = CASE WHEN {p} THEN NULL ELSE owner END, heartbeat_us = {p} "
            f"WHERE run_id = {p} AND owner = {p} AND event_count = COALESCE({p}, event_count)"
        ),
        claim=(
            f"UPDATE {runs} SET owner = {p}, heartbeat_us = {p}, lease_us = {p}, "
            f"status = 'running' WHERE run_id = {p}"
        ),
        read_events=(
            f"SELECT seq, entry FROM {events} WHERE run_id = {p} AND seq >= {p} AND seq < {p} "
            "ORDER BY seq"
        ),
        select_version=f"SELECT value FROM {meta} WHERE key = {p}",
        set_version=(
            f"INSERT INTO {meta} (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        renew=f"UPDATE {runs} SET heartbeat_us = {p} WHERE run_id = {p} AND owner = {p}",
        renew_holder=f"SELECT owner FROM {runs} WHERE run_id = {p}",
        read_checkpoints=f"SELECT size, note FROM {checkpoints} WHERE run_id = {p} ORDER BY size",
        get_checkpoint=f"SELECT note FROM {checkpoints} WHERE run_id = {p} AND size = {p}",
        put_checkpoint=(
            f"INSERT INTO {checkpoints} (run_id, size, note, created_us) "
            f"VALUES ({p}, {p}, {p}, {p})"
        ),
        read_log=f"SELECT idx, run_id, size, root FROM {log} ORDER BY idx",
        finished_line=f"SELECT idx FROM {log} WHERE run_id = {p} AND size > 1",
        log_run=(
            f"INSERT INTO {log} (idx, run_id, size, root, logged_us) "
            f"SELECT COALESCE(MAX(idx) + 1, 0), {p}, {p}, {p}, {p} FROM {log}"
        ),
        lookup_cache=f"SELECT {_CACHE_COLUMNS} FROM {cache} WHERE key = {p}",
        put_cache=f"{put_cache} ON CONFLICT (key) DO NOTHING",
        replace_cache=(
            f"{put_cache} ON CONFLICT (key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in schema.CACHE_COLUMNS[1:])
        ),
    )


class SQLStore(LedgerStore):
    """Base of SQLiteStore and PostgresStore: each supplies a connection per operation and
    the handlers below; :meth:`_dispatch` routes every operation type exactly once."""

    #: The shared statements in the backend's paramstyle (:func:`statements`).
    _sql: Statements

    def _dispatch(self, conn: Any, op: Op) -> Any:
        if isinstance(op, AppendEntries):
            return self._append(conn, op)
        if isinstance(op, ReadEntries):
            return self._read(conn, op)
        if isinstance(op, BeginRun):
            return self._begin(conn, op)
        if isinstance(op, GetRun):
            return self._get(conn, op.run_id)
        if isinstance(op, ListRuns):
            return self._list(conn, op)
        if isinstance(op, ClaimRun):
            return self._claim(conn, op)
        if isinstance(op, ReadCheckpoints):
            rows = conn.execute(self._sql.read_checkpoints, (op.run_id,))
            return [(size, bytes(note)) for size, note in rows]
        if isinstance(op, PutCheckpoint):
            return self._put_checkpoint(conn, op)
        if isinstance(op, ReadRunsLog):
            rows = conn.execute(self._sql.read_log)
            return [(idx, run_id, size, bytes(root)) for idx, run_id, size, root in rows]
        if isinstance(op, RenewLease):
            return self._renew(conn, op)
        if isinstance(op, LookupCache):
            row = conn.execute(self._sql.lookup_cache, (op.key,)).fetchone()
            return None if row is None else schema.cache_from_row(row)
        if isinstance(op, PutCache):
            return self._put_cache(conn, op)
        if isinstance(op, (AddApprover, RemoveApprover, ListApprovers)):
            return sql_approvers(conn, self._sql.placeholder, op)
        if isinstance(op, ChargeBudget):
            return charge_sql(conn, self._sql.placeholder, op)
        if isinstance(op, ReadBudget):
            return read_sql(conn, self._sql.placeholder, op)
        if isinstance(op, TakeRateSlot):
            return take_rate_sql(
                conn, self._sql.placeholder, op, self._atomic(conn), self._lock_key
            )
        if isinstance(op, (PutBlob, GetBlob)):
            return sql_blobs(conn, self._sql.placeholder, op)
        if isinstance(op, ERASE_OPS):
            return sql_erase(
                conn, self._sql.placeholder, op, self._atomic, self._dialect, codec.pack
            )
        assert_never(op)

    def _put_cache(self, conn: Any, op: PutCache) -> bool:
        """One INSERT (its own transaction: both backends' connections autocommit)."""
        e = op.entry
        sql = self._sql.replace_cache if op.replace else self._sql.put_cache
        row = (e.key, e.node_id, e.run_id, e.seq, e.leaf, e.created_us)
        return bool(conn.execute(sql, row).rowcount == 1)

    def _renew(self, conn: Any, op: RenewLease) -> None:
        """One fenced UPDATE (its own transaction: both backends' connections autocommit)."""
        if conn.execute(self._sql.renew, (op.now_us, op.run_id, op.owner)).rowcount == 1:
            return
        row = conn.execute(self._sql.renew_holder, (op.run_id,)).fetchone()
        if row is None:
            raise self._not_found(op.run_id)
        check_owner(op.run_id, row[0], op.owner)
        raise RunConflictError(  # pragma: no cover - the holder changed back in between
            f"run {op.run_id!r} changed hands while renewing the lease of {op.owner!r}; retry"
        )

    def _list(self, conn: Any, op: ListRuns) -> list[RunInfo]:
        after = None
        if op.after is not None:
            row = conn.execute(self._sql.select_run_key, (op.after,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"no run {op.after!r} to list after in {self.url}")
            after = (int(row[0]), str(row[1]))
        sql, params = self._sql.list_runs(op, after)
        runs = [schema.info_from_row(row) for row in conn.execute(sql, params)]
        return runs if op.limit is None or op.limit >= 0 else runs[: op.limit]

    def _not_found(self, run_id: str) -> RunNotFoundError:
        return RunNotFoundError(f"no run {run_id!r} in {self.url}")

    #: ``sqlite`` or ``postgres``: what erasure does differently (``_erase_ops``).
    _dialect: str = "sqlite"

    #: The statement that serialises the takers of one rate window key, if the backend's
    #: transaction does not already (SQLite's ``BEGIN IMMEDIATE`` does).
    _lock_key: str | None = None

    # the handlers each backend writes in its own dialect
    def _atomic(self, conn: Any) -> Any:
        """A context manager: one write transaction on ``conn``."""
        raise NotImplementedError

    def _append(self, conn: Any, op: AppendEntries) -> None:
        raise NotImplementedError

    def _read(self, conn: Any, op: ReadEntries) -> list[bytes]:
        raise NotImplementedError

    def _begin(self, conn: Any, op: BeginRun) -> None:
        raise NotImplementedError

    def _get(self, conn: Any, run_id: str) -> RunInfo:
        raise NotImplementedError

    def _claim(self, conn: Any, op: ClaimRun) -> RunInfo:
        raise NotImplementedError

    def _put_checkpoint(self, conn: Any, op: PutCheckpoint) -> None:
        raise NotImplementedError
