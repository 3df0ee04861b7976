"""PostgresStore: ledgers in PostgreSQL, through psycopg 3 and a pool (``codon-sdk[postgres]``)."""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, Final
from urllib.parse import unquote, urlsplit

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as err:  # pragma: no cover - exercised in a subprocess without psycopg
    raise ImportError('PostgresStore needs psycopg: pip install "codon-sdk[postgres]"') from err


from codon_sdk.errors import (
    InvalidStoreURLError,
    RunConflictError,
    StoreConnectionError,
    StoreCorruptError,
    StoreError,
)
from codon_sdk.redaction import get_logger
from codon_sdk.stores import _codec as codec
from codon_sdk.stores import _schema as schema
from codon_sdk.stores._base import (
    AppendEntries,
    BeginRun,
    ClaimRun,
    Entry,
    EntryBatch,
    Op,
    PutCheckpoint,
    ReadEntries,
    RunInfo,
    check_claim,
    check_finish_size,
    check_seqs,
    claimed,
    start_leaf,
)
from codon_sdk.stores._pg_retry import (
    RETRY_OPTION,
    Backoff,
    committed,
    connection_lost,
    split_retry_option,
)
from codon_sdk.stores._roles import owns_ledger_sql
from codon_sdk.stores._sql import SQLStore, statements
from codon_sdk.stores._url import mask_url

__all__ = ["PostgresStore", "connect_admin", "migrate_as_admin"]

_Conn = psycopg.Connection[Any]
_log = get_logger("codon_sdk")
_warned_owner: set[str] = set()  # store URLs whose owner role was warned about

_SQL: Final = statements("%s", binary="%b")
_LOCK_RUN: Final = _SQL.select_run + " FOR UPDATE"
#: A group of events as two arrays (stored entries, leaf hashes) numbered from a first seq:
#: one statement inserts them all, in one round trip with whatever it is part of (measured
#: 3-4x cheaper than ``executemany`` in a pipeline, and cheaper than ``COPY``, at 3 to 300
#: events; see ``docs/guides/postgresql.md``).
_EVENTS_FROM_ARRAYS: Final = (
    f"INSERT INTO {schema.EVENTS_TABLE} (run_id, seq, entry, leaf_hash) "
    "SELECT %s, %s + t.n - 1, t.e, t.l "
    "FROM unnest(%b::bytea[], %b::bytea[]) WITH ORDINALITY AS t(e, l, n)"
)
#: An append as one statement, so one implicit transaction and one round trip: the fenced
#: update of the run row (``Statements.append_update``: the owner check folded in) and the
#: events, inserted only when the update matched. It returns the new event count, or no
#: row when the fence refused it, and then nothing was written (``_refuse_append`` says why).
_APPEND: Final = (
    f"WITH u AS ({_SQL.append_update} RETURNING event_count), "
    f"i AS ({_EVENTS_FROM_ARRAYS} WHERE EXISTS (SELECT FROM u)) "
    "SELECT event_count FROM u"
)
#: The same inside a transaction that goes on (checkpoints, a finish line): it fails the
#: transaction (division by zero, SQLSTATE 22012) when the fence refused, so the whole
#: transaction can go to the server in one pipelined round trip.
_FENCED_APPEND: Final = (
    f"WITH u AS ({_SQL.append_update} RETURNING event_count), "
    f"i AS ({_EVENTS_FROM_ARRAYS} WHERE EXISTS (SELECT FROM u)) "
    "SELECT (SELECT event_count FROM u), 1 / (SELECT count(*)::int FROM u)"
)
#: A new run's row and its first events, one statement.
_BEGIN: Final = f"WITH r AS ({_SQL.insert_run}) {_EVENTS_FROM_ARRAYS}"
#: Refuses (22012) a second finish line, a checkpoint that differs from the one held.
_NO_FINISH_LINE: Final = (
    f"SELECT 1 / (1 - (SELECT count(*)::int FROM {schema.RUNS_LOG_TABLE} "
    "WHERE run_id = %s AND size > 1))"
)
_SAME_CHECKPOINT: Final = (
    f"SELECT 1 / (SELECT count(*)::int FROM {schema.CHECKPOINTS_TABLE} "
    "WHERE run_id = %s AND size = %s AND note = %s)"
)
#: Log-of-runs writers one at a time (held until commit): idx follows commit order, without a
#: gap, and a signed checkpoint of the log never sees a line appear before an earlier one.
#: Taken with or without a notary (a decision, see "The log of runs and its lock" in
#: docs/guides/postgresql.md): line numbers are MAX(idx) + 1 under the primary key, so two
#: run boundaries racing for the next number would otherwise fail one of them with a unique
#: violation instead of making it wait; it is the last statement before COMMIT, and taken
#: only by the commits that add a line (a run's first and last, or once for an ``exit`` run).
_LOCK_LOG: Final = f"LOCK TABLE {schema.RUNS_LOG_TABLE} IN SHARE ROW EXCLUSIVE MODE"
#: Advisory lock held while migrating, so concurrent first opens do not race ("codon" in ASCII).
_MIGRATION_LOCK: Final = 0x636F646F6E
_SQLALCHEMY_SCHEME: Final = "postgresql+psycopg://"
#: Connections the pool may open (it opens them as concurrent operations need them): enough
#: for the many runs one process makes at once, each holding one only while it commits.
DEFAULT_MAX_CONNECTIONS: Final = 20


class PostgresStore(SQLStore):
    """Ledgers in a PostgreSQL database, shared by any number of processes and hosts.

    ``open_store("postgresql://user:password@host:port/dbname")`` makes one (any
    libpq URL works, e.g. ``?sslmode=require`` or ``?options=-csearch_path%3Dledger``
    to keep the tables in another schema). The tables are created (or migrated)
    on first use. Operations borrow a connection from a pool of ``min_size`` to
    ``max_size`` (default 20) connections, opened as concurrent operations need
    them; ``connect_timeout`` bounds how long reaching the server may take.

    An operation whose connection is lost (its backend terminated, the server restarted,
    the network cut) is retried on a fresh connection, with exponential backoff and
    jitter, for up to ``retry_timeout`` seconds (default 30; ``?codon_retry_timeout=`` in
    the URL sets it too; 0 turns retrying off), then fails with ``StoreConnectionError``.
    A retried write first checks whether it committed after all (its acknowledgement may
    be what was lost), so nothing is written twice (``stores/_pg_retry.py``).

    An append is one statement (one round trip, one implicit transaction): a fenced
    ``UPDATE`` of the run's row that matches only when the writer holds the run and its
    first seq is the next one (concurrent writers to one run are serialised by the row
    lock; the loser gets ``RunConflictError`` or ``LeaseLostError``), and the events,
    inserted from two arrays only when it matched. With checkpoints or a log-of-runs line
    it is one transaction sent as one pipeline. Commits follow the server's
    ``synchronous_commit`` setting (on by default: a committed append survives a server
    crash). See "What a run costs the server" in ``docs/guides/postgresql.md``.
    """

    _sql = _SQL
    begins_then = True

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = 5.0,
        retry_timeout: float | None = None,
    ) -> None:
        self._secrets = _passwords(url)
        self.url = _masked(url, self._secrets)
        self._connect_timeout = connect_timeout
        url, self.retry_timeout = split_retry_option(url, retry_timeout, self.url)
        conninfo = _conninfo(url, self.url, self._scrub)
        if min_size < 0 or max_size < max(1, min_size):
            raise InvalidStoreURLError(
                f"PostgresStore pool sizes min_size={min_size}, max_size={max_size} are "
                "invalid; use 0 <= min_size <= max_size and max_size >= 1"
            )
        kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq takes whole seconds (and treats 1 as 2).
            "connect_timeout": max(1, math.ceil(connect_timeout)),
        }
        self._conninfo, self._kwargs = conninfo, kwargs
        try:  # one direct connection first: its errors say why the server is unreachable
            with psycopg.connect(conninfo, **kwargs) as conn:
                self._migrate(conn)
                self._check_role(conn)
        except pg_errors.InsufficientPrivilege as exc:
            raise StoreError(
                f"the role connected to {self.url} may not migrate the ledger schema "
                f"({self._scrub(str(exc).strip())}): open the store once as the owner role, "
                "or run `codon db grant` again after upgrading (see the PostgreSQL guide)"
            ) from exc
        except psycopg.Error as exc:
            raise self._error(exc, "open the ledger") from exc
        self._pool: ConnectionPool[_Conn] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            open=False,
            name="codon-ledger",
            # how long an operation waits for a pooled connection (the pool reconnects in the
            # background meanwhile); then it tries once on a connection of its own
            timeout=max(self.retry_timeout, connect_timeout),
            # a connection whose backend died (terminated, server restarted) is found on
            # checkout and replaced, instead of failing the next operation that borrows it
            check=_check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise self._error(exc, "open the connection pool") from exc

    # ------------------------------------------------------------------ opening

    def _migrate(self, conn: _Conn) -> None:
        where = f"the ledger database {self.url}"
        version = self._version(conn)
        schema.check_version(version, where=where)
        if version < schema.SCHEMA_VERSION:
            # A session lock taken before the transaction starts: a transaction that began
            # before another opener committed its migration could still see the tables as
            # missing (stale catalog caches) and try to create them again.
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                with conn.transaction():
                    version = self._version(conn)
                    for target, statements in schema.pending(
                        version, schema.POSTGRES_MIGRATIONS, where=where
                    ):
                        for statement in statements:
                            conn.execute(statement)
                        conn.execute(_SQL.set_version, (schema.VERSION_KEY, str(target)))
            finally:
                with suppress(psycopg.Error):  # a broken session drops its locks anyway
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        row = conn.execute(
            "SELECT to_regclass(%s) IS NULL, to_regclass(%s) IS NULL",
            (schema.RUNS_TABLE, schema.EVENTS_TABLE),
        ).fetchone()
        missing = [name for name, gone in zip(_TABLES, row or (True, True), strict=True) if gone]
        if missing:
            raise StoreCorruptError(
                f"{where} says it has schema {schema.SCHEMA_VERSION} but lacks the table(s) "
                f"{', '.join(missing)}; restore them from a backup, or use a new database"
            )

    def _check_role(self, conn: _Conn) -> None:
        """Warn (once per URL and process) when the connected role owns the tables or is a
        superuser: it could disable the append-only triggers and rewrite events."""
        row = conn.execute(owns_ledger_sql).fetchone()
        if row is None or not row[0] or self.url in _warned_owner:
            return
        _warned_owner.add(self.url)
        _log.warning(
            "the ledger %s is opened by a role that owns its tables or is a superuser, so it "
            "could disable the append-only triggers and rewrite events; connect the "
            "application as a role with least privilege (codon db grant, see the PostgreSQL "
            "guide)",
            self.url,
        )

    def _version(self, conn: _Conn) -> int:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (schema.META_TABLE,)).fetchone()
        if row is None or not row[0]:
            return -1
        found = conn.execute(_SQL.select_version, (schema.VERSION_KEY,)).fetchone()
        return schema.parse_version(None if found is None else found[0], where=self.url)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()

    @property
    def closed(self) -> bool:
        pool = getattr(self, "_pool", None)
        return pool is None or bool(pool.closed)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, exc: psycopg.Error, action: str) -> StoreError:
        detail = self._scrub(str(exc).strip())
        where = self.url
        if isinstance(exc, PoolClosed):
            return StoreError(f"the ledger store {where} is closed; open a new one to use it")
        if isinstance(exc, PoolTimeout):
            return StoreConnectionError(
                f"no connection to {where} within the time allowed, while trying to {action} "
                f"({detail}); check that the server is up and reachable, or raise "
                "connect_timeout / max_size"
            )
        # By SQLSTATE: psycopg's classes for class 40 do not all derive from TransactionRollback.
        state = exc.sqlstate or ""
        if state == pg_errors.UniqueViolation.sqlstate or state.startswith("40"):
            return RunConflictError(
                f"could not {action} in {where}: another writer changed the run at the same "
                f"time ({detail}); re-read the run and retry"
            )
        if state == pg_errors.DiskFull.sqlstate:
            return StoreError(
                f"the disk or database is full: could not {action} in {where} ({detail}); "
                "nothing of this write was kept; free space on the server and retry"
            )
        if state in (pg_errors.UndefinedTable.sqlstate, pg_errors.UndefinedColumn.sqlstate):
            return StoreCorruptError(
                f"the ledger tables in {where} are missing or damaged ({detail}) while trying "
                f"to {action}; restore them from a backup, or use a new database"
            )
        if isinstance(exc, psycopg.OperationalError):
            return StoreConnectionError(
                f"cannot reach the ledger database {where} to {action}: {detail}; check the "
                "host, port, database name and credentials, and that the server is running"
            )
        return StoreError(f"could not {action} in the ledger database {where}: {detail}")

    # ------------------------------------------------------------------ operations

    def execute(self, op: Op) -> Any:
        try:
            with self._pool.connection() as conn:
                return self._dispatch(conn, op)
        except psycopg.Error as exc:
            if not (self.retry_timeout > 0 and connection_lost(exc)):
                raise self._error(exc, schema.describe(op)) from exc
            lost = exc
        return self._retry(op, lost)

    def _retry(self, op: Op, lost: psycopg.Error) -> Any:
        """Carry out ``op`` again on fresh connections after ``lost`` broke its connection,
        with backoff, until it succeeds, fails otherwise, or the retry bound has passed
        (see ``stores/_pg_retry.py``). A retried write that had committed is not written again.

        When the pool had no connection to give within its wait (the bound already spent
        waiting, while the pool reconnected in the background), one attempt is made at once.
        """
        action = schema.describe(op)
        waited = isinstance(lost, PoolTimeout)
        backoff = Backoff(0.0 if waited else self.retry_timeout)
        _log.warning(
            "lost the connection to the ledger database %s while trying to %s (%s); %s",
            self.url,
            action,
            self._scrub(str(lost).strip().splitlines()[0] if str(lost).strip() else ""),
            "trying once on a new connection"
            if waited
            else f"retrying on a new connection for up to {self.retry_timeout:g}s",
        )
        while (delay := backoff.next_delay()) is not None:
            time.sleep(delay)
            if self.closed:
                raise self._error(PoolClosed(), action) from lost
            kwargs = {
                **self._kwargs,
                "connect_timeout": max(
                    1, math.ceil(min(self._connect_timeout, max(0.0, backoff.remaining())))
                ),
            }
            try:
                with psycopg.connect(self._conninfo, **kwargs) as conn:
                    done, result = committed(conn, op, _SQL.select_run)
                    if not done:
                        result = self._dispatch(conn, op)
            except psycopg.Error as exc:
                if not connection_lost(exc):
                    raise self._error(exc, action) from exc
                lost = exc
                continue
            _log.info(
                "reconnected to %s after %.3fs and %d attempt(s); %s %s",
                self.url,
                backoff.elapsed(),
                backoff.attempts,
                action,
                "had committed before the connection was lost" if done else "succeeded",
            )
            return result
        raise self._gone(lost, action, backoff) from lost

    def _gone(self, exc: psycopg.Error, action: str, backoff: Backoff) -> StoreConnectionError:
        detail = self._scrub(str(exc).strip())
        return StoreConnectionError(
            f"lost the connection to the ledger database {self.url} while trying to {action}, "
            f"and could not get one back within {self.retry_timeout:g}s ({backoff.attempts} "
            f"attempt(s); last error: {detail}). Whatever was committed before is kept, and "
            "this write was not, or was only once. Check that the server is up and reachable, "
            "then resume the run it stopped (workload.resume(run_id, store=...)); to ride out "
            f"longer outages, raise the bound (?{RETRY_OPTION}=SECONDS in the store URL, or "
            "PostgresStore(url, retry_timeout=SECONDS))"
        )

    def _get(self, conn: _Conn, run_id: str, *, lock: bool = False) -> RunInfo:
        row = conn.execute(_LOCK_RUN if lock else _SQL.select_run, (run_id,)).fetchone()
        if row is None:
            raise self._not_found(run_id)
        return schema.info_from_row(row)

    def _begin(self, conn: _Conn, op: BeginRun) -> None:
        """The run row and its first events: one statement; with its start line (the lock
        on the log of runs, then the line) and any ``then`` (its fenced update, checkpoints
        and finish line), one transaction sent as one pipeline."""
        run_id, entries, then = op.info.run_id, op.entries, op.then
        check_seqs(run_id, 0, entries)
        row = schema.run_row(op.info, entries)
        if then is not None and then.log_root is not None:
            check_finish_size(run_id, len(entries))
        try:
            if not entries and then is None:  # no events, no start line yet (the first
                conn.execute(_SQL.insert_run, row)  # append writes it)
                return
            with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                cur.execute(_BEGIN, (*row, run_id, 0, *_arrays(run_id, entries)))
                self._log_start(cur, run_id, entries)
                if then is not None:
                    cur.execute(_FENCED_APPEND, (*_fence(then), run_id, 0, [], []))
                    if then.checkpoints or then.log_root is not None:
                        self._audit_rows(cur, then, len(entries))
        except pg_errors.DivisionByZero as exc:  # pragma: no cover - a new run is this owner's
            raise RunConflictError(
                f"run {run_id!r} changed while beginning it in {self.url}; retry"
            ) from exc
        except pg_errors.UniqueViolation as exc:
            if conn.execute(_SQL.select_run, (run_id,)).fetchone() is not None:
                raise RunConflictError(f"run {run_id!r} already exists in {self.url}") from exc
            raise

    @staticmethod
    def _log_start(cur: psycopg.Cursor[Any], run_id: str, entries: Sequence[Entry]) -> None:
        """The run's start line, when ``entries`` begin it: the transaction's last statements,
        so the log lock is held for as short a time as possible."""
        leaf = start_leaf(entries)
        if leaf is not None:
            cur.execute(_LOCK_LOG)
            cur.execute(_SQL.log_run, (run_id, 1, leaf, time.time_ns() // 1000))

    def _append(self, conn: _Conn, op: AppendEntries) -> None:
        """The fenced update of the run row (the owner check folded in) and the events, as
        one statement: one implicit transaction, one round trip. With checkpoints or a
        log-of-runs line, one transaction sent as one pipeline: that statement (failing the
        transaction when the fence refuses), the checkpoints, the lock and the line, COMMIT.

        A finish line with no events costs a second round trip (its size is read back
        first). When a check fails nothing is written and :meth:`_refuse_append` says why.
        """
        run_id, entries = op.run_id, op.entries
        first = entries[0][0] if entries else None
        if entries:
            check_seqs(run_id, entries[0][0], entries)
        fence = _fence(op)
        events = (run_id, first or 0, *_arrays(run_id, entries))
        audit = bool(op.checkpoints) or op.log_root is not None or first == 0
        if not audit:
            if conn.execute(_APPEND, (*fence, *events)).fetchone() is None:
                self._refuse_append(conn, op)
            return
        try:
            with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                cur.execute(_FENCED_APPEND, (*fence, *events))
                if op.log_root is not None:
                    count = first + len(entries) if first is not None else _count(cur)
                    check_finish_size(run_id, count)
                if op.checkpoints or op.log_root is not None:
                    self._audit_rows(cur, op, count if op.log_root is not None else 0)
                if first == 0:  # a run begun without events: its start line
                    self._log_start(cur, run_id, entries)
        except pg_errors.DivisionByZero:
            self._refuse_append(conn, op)
            raise

    def _refuse_append(self, conn: _Conn, op: AppendEntries) -> None:
        """Raise why an append was refused (the checks MemoryStore makes, in its order)."""
        row = conn.execute(_SQL.select_holder, (op.run_id,)).fetchone()
        if row is None:
            raise self._not_found(op.run_id)
        schema.check_owner(op.run_id, row[0], op.owner)
        check_seqs(op.run_id, row[1], op.entries)
        for size, note in op.checkpoints:
            held = conn.execute(_SQL.get_checkpoint, (op.run_id, size)).fetchone()
            schema.check_checkpoint(op.run_id, size, held and bytes(held[0]), bytes(note))
        finished = (
            op.log_root is not None and conn.execute(_SQL.finished_line, (op.run_id,)).fetchone()
        )
        if finished:
            raise schema.finish_refused(op.run_id)
        raise RunConflictError(  # pragma: no cover - the checks above find the reason
            f"run {op.run_id!r} changed while appending to it; retry"
        )

    def _audit_rows(self, cur: psycopg.Cursor[Any], op: AppendEntries, count: int) -> None:
        """Checkpoints and the log-of-runs line that go with an append (same transaction,
        same pipeline: a different checkpoint held, or a second finish line, refuses it)."""
        now = time.time_ns() // 1000
        for size, note in op.checkpoints:
            cur.execute(
                _SQL.put_checkpoint + " ON CONFLICT DO NOTHING", (op.run_id, size, note, now)
            )
            cur.execute(_SAME_CHECKPOINT, (op.run_id, size, note))
        if op.log_root is not None:
            cur.execute(_LOCK_LOG)
            cur.execute(_NO_FINISH_LINE, (op.run_id,))
            cur.execute(_SQL.log_run, (op.run_id, count, op.log_root, now))

    _dialect = "postgres"
    _lock_key = "SELECT pg_advisory_xact_lock(hashtext(%s))"

    def _atomic(self, conn: _Conn) -> Any:
        return conn.transaction()

    def _put_checkpoint(self, conn: _Conn, op: PutCheckpoint) -> None:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                _SQL.put_checkpoint + " ON CONFLICT DO NOTHING",
                (op.run_id, op.size, op.note, time.time_ns() // 1000),
            )
            held = cur.execute(_SQL.get_checkpoint, (op.run_id, op.size)).fetchone()
            schema.check_checkpoint(
                op.run_id, op.size, bytes(held[0]) if held else None, bytes(op.note)
            )

    def _read(self, conn: _Conn, op: ReadEntries) -> list[bytes]:
        start, end = schema.read_bounds(op, lambda: self._get(conn, op.run_id).event_count)
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(_SQL.read_events, (op.run_id, start, end)).fetchall()
        entries = codec.unpack(op.run_id, rows)
        if not entries:
            self._get(conn, op.run_id)  # raises RunNotFoundError for an unknown run
        return entries

    def _claim(self, conn: _Conn, op: ClaimRun) -> RunInfo:
        with conn.transaction():
            info = self._get(conn, op.run_id, lock=True)
            check_claim(info, op)
            conn.execute(_SQL.claim, (op.owner, op.now_us, op.lease_us, op.run_id))
        return claimed(info, op)


_TABLES: Final = (schema.RUNS_TABLE, schema.EVENTS_TABLE)


def _check_connection(conn: _Conn) -> None:
    """The pool's check on checkout, without a round trip for a healthy idle connection.

    A backend that went away (terminated, the server shutting down or restarting, the
    proxy or network closing the socket) leaves its idle connection's socket readable (its
    last error message, or the end of the stream); only then is the connection asked with
    an empty query (``ConnectionPool.check_connection``), which raises for a dead one, so
    the pool replaces it. A connection cut without a word (a silent network partition) is
    not seen here: its operation fails, and is retried on a new connection like any other
    lost one (``stores/_pg_retry.py``).
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        readable = [True]
    if readable:
        ConnectionPool.check_connection(conn)


def _fence(op: AppendEntries) -> tuple[Any, ...]:
    """The parameters of the fenced update of ``op`` (``Statements.append_update``)."""
    entries = op.entries
    return (
        len(entries),
        entries[-1][2].hex() if entries else None,
        op.status or None,
        op.finished_us,
        op.release,
        time.time_ns() // 1000,
        op.run_id,
        op.owner,
        entries[0][0] if entries else None,
    )


def _arrays(run_id: str, entries: Sequence[Entry]) -> tuple[list[bytes], list[bytes]]:
    """The stored forms and the leaf hashes of consecutive ``entries``, as two arrays."""
    if not entries:
        return [], []
    leaves = entries.leaves if isinstance(entries, EntryBatch) else [bytes(e[2]) for e in entries]
    return codec.stored_rows(run_id, entries), leaves


def _count(cur: psycopg.Cursor[Any]) -> int:
    """The event count the fenced update just returned (waits for the server's answer)."""
    row = cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _masked(url: str, secrets: list[str]) -> str:
    """``mask_url(url)``, also for URLs whose port it cannot read (it raises ValueError then)."""
    try:
        return mask_url(url)
    except ValueError:
        for secret in secrets:
            url = url.replace(f":{secret}@", ":***@")
        return url


def _passwords(url: str) -> list[str]:
    """Every spelling of the URL's password that could appear in a driver message.

    Also for URLs no parser accepts (their error messages quote the URL): the
    text between the first ``:`` and the last ``@`` of the authority counts.
    """
    found: set[str] = set()
    rest = url.partition("://")[2]
    userinfo = rest[: rest.rfind("@")] if "@" in rest else ""
    if ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    with suppress(ValueError):
        found.add(urlsplit(url).password or "")
    with suppress(psycopg.Error):
        found.add(str(conninfo_to_dict(_normalised(url)).get("password") or ""))
    found |= {unquote(secret) for secret in found}
    return sorted((s for s in found if s), key=len, reverse=True)


def _normalised(url: str) -> str:
    """libpq knows ``postgresql://`` and ``postgres://``; accept the SQLAlchemy-style spelling."""
    if url.lower().startswith(_SQLALCHEMY_SCHEME):
        return "postgresql://" + url[len(_SQLALCHEMY_SCHEME) :]
    return url


def _conninfo(url: str, masked: str, scrub: Callable[[str], str]) -> str:
    """The libpq connection string for ``url``, or InvalidStoreURLError saying what is wrong."""
    conninfo = _normalised(url)
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise InvalidStoreURLError(
            f"cannot parse the PostgreSQL URL {masked!r}: {scrub(str(exc).strip())}; expected "
            "postgresql://user:password@host:port/dbname"
        ) from exc
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidStoreURLError(
                f"the PostgreSQL URL {masked!r} has port {port!r}, which is not a number from "
                "1 to 65535; expected postgresql://user:password@host:port/dbname"
            )
    return conninfo


def connect_admin(url: str) -> _Conn:
    """A plain autocommit connection to ``url`` (for ``codon db grant``); errors are masked."""
    secrets = _passwords(url)
    masked = _masked(url, secrets)

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    try:
        return psycopg.connect(_conninfo(url, masked, scrub), autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise StoreConnectionError(
            f"cannot connect to {masked}: {scrub(str(exc).strip())}"
        ) from exc


def migrate_as_admin(url: str) -> None:
    """Create or migrate the ledger tables through ``url`` (an admin role, about to hand
    them to an owner role: no warning that it owns them)."""
    _warned_owner.add(_masked(url, _passwords(url)))
    PostgresStore(url, min_size=0, max_size=1).close()
