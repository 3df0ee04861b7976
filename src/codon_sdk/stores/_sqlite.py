"""SQLiteStore: every ledger in one SQLite file (standard library ``sqlite3``, WAL mode)."""

from __future__ import annotations

import operator
import os
import sqlite3
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, Final

import orjson

from codon_sdk.errors import (
    InvalidStoreURLError,
    RunConflictError,
    StoreCorruptError,
    StoreError,
)
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
from codon_sdk.stores._sql import SQLStore, statements

__all__ = ["SQLiteStore"]

_LEAF: Final = operator.itemgetter(2)

SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
PAGE_SIZE: Final = 8192  # of files this store creates

_SQL: Final = statements("?")
# One INSERT ... SELECT over json_each inserts a whole group of events in a single sqlite3_step,
# which runs with the GIL released: executemany takes the GIL back for every row, so a batch
# writer thread spent most of its time queued behind the engine for it. The entries travel as
# one blob with a JSON array of (1-based start << 32 | length) spans, the leaf hashes as one
# blob of 32-byte slices; measured a third cheaper than executemany in CPU as well.
_INSERT_EVENTS_BULK: Final = (
    f"INSERT INTO {schema.EVENTS_TABLE} (run_id, seq, entry, leaf_hash) "
    "SELECT ?1, ?2 + key, substr(?3, value >> 32, value & 4294967295), "
    "substr(?4, 32 * key + 1, 32) FROM json_each(?5)"
)
_LEAF_SIZE: Final = 32
_BULK_BYTES = 64 * 1024 * 1024  # per bound blob: far below SQLite's 1 GB SQLITE_LIMIT_LENGTH

# What each SQLite result code means for a ledger, by the code's prefix (sqlite_errorname),
# with the message fragment that identifies it on Pythons older than 3.11.
_CORRUPT: Final = (
    ("SQLITE_NOTADB", "file is not a database"),
    ("SQLITE_CORRUPT", "malformed"),
)
_FULL: Final = (("SQLITE_FULL", "is full"),)
_BUSY: Final = (("SQLITE_BUSY", "database is locked"), ("SQLITE_LOCKED", "table is locked"))
_DUPLICATE: Final = (
    ("SQLITE_CONSTRAINT_PRIMARYKEY", "UNIQUE constraint failed"),
    ("SQLITE_CONSTRAINT_UNIQUE", "UNIQUE constraint failed"),
)


def _is(exc: sqlite3.Error, kinds: tuple[tuple[str, str], ...]) -> bool:
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return any(name.startswith(code) for code, _ in kinds)
    text = str(exc)
    return any(fragment in text for _, fragment in kinds)


class SQLiteStore(SQLStore):
    """Ledgers in one SQLite file, shared by the threads of a process and by several processes.

    ``open_store("sqlite:///path.db")`` makes one. The file (and its parent
    directories) is created on first use and put in WAL journal mode, so readers
    never block the writer. Each write is one ``BEGIN IMMEDIATE`` transaction;
    a writer that finds the file locked by another process waits up to
    ``timeout`` seconds, so several processes can write different runs to one
    file at once. One connection, guarded by a lock, serves every thread of the
    process.

    Durability (``synchronous``), in WAL mode:

    * ``"NORMAL"`` (default): a commit is appended to the write-ahead log without
      an fsync; the log is synced at each checkpoint. A committed run survives
      the process crashing or being killed, but a power loss or operating-system
      crash may lose the transactions committed since the last checkpoint (the
      file itself stays consistent: never half a transaction, never a broken
      hash chain, only a shorter ledger).
    * ``"FULL"``: every commit fsyncs the log before returning, so a committed
      append survives power loss too, at the cost of one fsync per commit.
    * ``"EXTRA"`` adds directory syncs; ``"OFF"`` hands syncing to the OS entirely
      (a power loss may corrupt the file: for throwaway ledgers only).

    ``pragmas`` are extra ``PRAGMA name = value`` settings applied to the
    connection after those above (for example ``{"max_page_count": 10_000}`` to
    cap the file size, or ``{"cache_size": -65536}``). A file the store creates gets
    8 KiB pages (``PAGE_SIZE``); an existing file keeps its own.
    """

    _sql = _SQL
    begins_then = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        pragmas: Mapping[str, int | str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise InvalidStoreURLError(
                f"SQLite synchronous={synchronous!r} is not a mode; use one of "
                f"{', '.join(SYNCHRONOUS_MODES)} (NORMAL is the default)"
            )
        settings = {"synchronous": mode, **_checked_pragmas(pragmas or {})}
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._bulk = True  # SQLite built with JSON (3.38+ always is, unless SQLITE_OMIT_JSON)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory of the ledger file {self.path!r}: {exc}; "
                    "check the path and its permissions"
                ) from exc
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open the ledger") from exc
        try:
            self._setup(settings)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening

    def _setup(self, settings: Mapping[str, int | str]) -> None:
        try:
            self._migrate(self._connection(), settings)
        except sqlite3.Error as exc:
            raise self._error(exc, "open the ledger") from exc

    def _has_json(self, conn: sqlite3.Connection) -> bool:
        try:
            conn.execute("SELECT json_valid('[]')").fetchone()
        except sqlite3.OperationalError:
            return False
        return True

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. Several processes opening a new file at once can get SQLITE_BUSY
        here without the busy handler's wait, so retry until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if not _is(exc, _BUSY) or time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def _migrate(self, conn: sqlite3.Connection, settings: Mapping[str, int | str]) -> None:
        # Only a new, empty file takes this (an existing one keeps its page size). Every
        # commit writes each page it touched to the WAL, whole: a short run touches about 14
        # (the runs row and its indices, events, the log of runs), a sync step 3-4. On 8 KiB
        # pages batch appends cost what they cost on 16 KiB (a third less than on 4 KiB),
        # while a sync step costs 0.68x and a short run 0.8x what it costs on 16 KiB.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self._wal(conn)
        self._bulk = self._has_json(conn)
        for name, value in settings.items():
            conn.execute(f"PRAGMA {name} = {value}").fetchall()
        version = self._version(conn)
        where = f"the ledger file {self.path!r}"
        schema.check_version(version, where=where)
        if version < schema.SCHEMA_VERSION:
            with self._write(conn):
                version = self._version(conn)
                for target, statements in schema.pending(
                    version, schema.SQLITE_MIGRATIONS, where=where
                ):
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(_SQL.set_version, (schema.VERSION_KEY, str(target)))
        self._check_tables(conn)

    def _version(self, conn: sqlite3.Connection) -> int:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (schema.META_TABLE,)
        ).fetchone()
        if found is None:
            return -1
        row = conn.execute(_SQL.select_version, (schema.VERSION_KEY,)).fetchone()
        return schema.parse_version(None if row is None else row[0], where=repr(self.path))

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = sorted({schema.RUNS_TABLE, schema.EVENTS_TABLE} - names)
        if missing:
            raise StoreCorruptError(
                f"the ledger file {self.path!r} says it has schema {schema.SCHEMA_VERSION} but "
                f"lacks the table(s) {', '.join(missing)}; restore it from a backup, or move it "
                "aside and let codon create a new ledger"
            )

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the ledger store {self.url} is closed; open a new one to use it")
        return self._conn

    def _atomic(self, conn: Any) -> Any:
        return self._write(conn)

    @staticmethod
    @contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back otherwise."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _error(self, exc: sqlite3.Error, action: str) -> StoreError:
        path = self.path
        if _is(exc, _CORRUPT):
            return StoreCorruptError(
                f"the ledger file {path!r} is not a SQLite database or is damaged ({exc}) "
                f"while trying to {action}; restore it from a backup, or move it aside and let "
                "codon create a new ledger"
            )
        if _is(exc, _FULL):
            return StoreError(
                f"the disk or database is full: could not {action} in {path!r} ({exc}); nothing "
                "of this write was kept and everything committed before is intact; free disk "
                "space (or raise the max_page_count pragma) and retry"
            )
        if _is(exc, _BUSY):
            return StoreError(
                f"the ledger file {path!r} stayed locked by another connection for more than "
                f"{self.timeout}s while trying to {action}; retry, or open the store with a "
                "longer timeout"
            )
        if _is(exc, _DUPLICATE):
            return RunConflictError(
                f"could not {action} in {path!r}: {exc}; another writer changed the run "
                "at the same time"
            )
        return StoreError(
            f"could not {action} in the ledger file {path!r}: {exc}; check that the file is "
            "readable and writable and its disk healthy"
        )

    # ------------------------------------------------------------------ operations

    def execute(self, op: Op) -> Any:
        with self._lock:
            conn = self._connection()
            try:
                return self._dispatch(conn, op)
            except sqlite3.Error as exc:
                raise self._error(exc, schema.describe(op)) from exc

    def _get(self, conn: sqlite3.Connection, run_id: str) -> RunInfo:
        row = conn.execute(_SQL.select_run, (run_id,)).fetchone()
        if row is None:
            raise self._not_found(run_id)
        return schema.info_from_row(row)

    def _begin(self, conn: sqlite3.Connection, op: BeginRun) -> None:
        run_id = op.info.run_id
        with self._write(conn):
            if conn.execute(_SQL.select_holder, (run_id,)).fetchone() is not None:
                raise RunConflictError(f"run {run_id!r} already exists in {self.url}")
            check_seqs(run_id, 0, op.entries)
            conn.execute(_SQL.insert_run, schema.run_row(op.info, op.entries))
            if op.entries:
                self._insert(conn, run_id, op.entries)
                self._log_start(conn, run_id, op.entries)
            if op.then is not None:  # refused: the whole transaction rolls back
                self._append_in(conn, op.then)

    @staticmethod
    def _log_start(conn: sqlite3.Connection, run_id: str, entries: Sequence[Entry]) -> None:
        """The run's start line, when ``entries`` begin it (inside the write transaction, which
        SQLite holds alone: the next idx is always the one after the last)."""
        leaf = start_leaf(entries)
        if leaf is not None:
            conn.execute(_SQL.log_run, (run_id, 1, leaf, time.time_ns() // 1000))

    def _append(self, conn: sqlite3.Connection, op: AppendEntries) -> None:
        """One conditional UPDATE of the run row, one executemany, one commit.

        The UPDATE only matches when ``op.owner`` holds the run and the first seq
        is the next one; when it matches nothing, the row says why.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._append_in(conn, op)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _append_in(self, conn: sqlite3.Connection, op: AppendEntries) -> None:
        """The append's statements, inside a write transaction the caller holds."""
        run_id, entries = op.run_id, op.entries
        last = entries[-1] if entries else None
        updated = conn.execute(
            _SQL.append_update,
            (
                len(entries),
                None if last is None else last[2].hex(),
                op.status or None,
                op.finished_us,
                op.release,
                time.time_ns() // 1000,
                run_id,
                op.owner,
                entries[0][0] if entries else None,
            ),
        ).rowcount
        if updated != 1:
            self._refuse_append(conn, op)
        if entries:
            check_seqs(run_id, entries[0][0], entries)
            self._insert(conn, run_id, entries)
            if entries[0][0] == 0:  # a run begun without events gets its start line now
                self._log_start(conn, run_id, entries)
        if op.checkpoints or op.log_root is not None:
            self._audit_rows(conn, op)

    def _insert(self, conn: sqlite3.Connection, run_id: str, entries: Sequence[Entry]) -> None:
        """Insert checked entries: bulk statements (see ``_INSERT_EVENTS_BULK``) of at most
        ``_BULK_BYTES`` each, or one ``executemany`` where SQLite lacks JSON or an entry is
        not plain bytes with a 32-byte leaf hash (which the bulk form cannot carry)."""
        pieces, skip = codec.stored_rows(run_id, entries), 0  # the stored forms (_codec)
        leaves = entries.leaves if isinstance(entries, EntryBatch) else list(map(_LEAF, entries))
        lengths = list(map(len, pieces))
        if (
            not self._bulk
            or set(map(type, leaves)) != {bytes}
            or set(map(len, leaves)) != {_LEAF_SIZE}
            or set(map(type, pieces)) != {bytes}
            or min(lengths) <= skip  # an empty entry: substr() would make it NULL
        ):
            conn.executemany(_SQL.insert_events, schema.insert_params(run_id, entries))
            return
        first, n, start = entries[0][0], len(pieces), 0
        ends = list(accumulate(lengths))
        while start < n:  # groups of at most _BULK_BYTES (one entry at least)
            base = ends[start - 1] if start else 0
            stop = max(bisect_right(ends, base + _BULK_BYTES, start), start + 1)
            part = lengths[start:stop]
            starts = accumulate(part, initial=1 + skip)  # 1-based, past any prefix byte
            sizes = map(operator.sub, part, repeat(skip))
            spans = list(map(operator.or_, map(operator.lshift, starts, repeat(32)), sizes))
            conn.execute(
                _INSERT_EVENTS_BULK,
                (
                    run_id,
                    first + start,
                    b"".join(pieces[start:stop]),
                    b"".join(leaves[start:stop]),
                    orjson.dumps(spans),
                ),
            )
            start = stop

    def _audit_rows(self, conn: sqlite3.Connection, op: AppendEntries) -> None:
        """Checkpoints and the log-of-runs line that go with an append (same transaction)."""
        now = time.time_ns() // 1000
        for size, note in op.checkpoints:
            held = conn.execute(_SQL.get_checkpoint, (op.run_id, size)).fetchone()
            if schema.check_checkpoint(op.run_id, size, held and held[0], note):
                conn.execute(_SQL.put_checkpoint, (op.run_id, size, note, now))
        if op.log_root is not None:
            if conn.execute(_SQL.finished_line, (op.run_id,)).fetchone() is not None:
                raise schema.finish_refused(op.run_id)
            count = conn.execute(_SQL.select_holder, (op.run_id,)).fetchone()[1]
            check_finish_size(op.run_id, count)
            conn.execute(_SQL.log_run, (op.run_id, count, op.log_root, now))

    def _put_checkpoint(self, conn: sqlite3.Connection, op: PutCheckpoint) -> None:
        with self._write(conn):
            held = conn.execute(_SQL.get_checkpoint, (op.run_id, op.size)).fetchone()
            if schema.check_checkpoint(op.run_id, op.size, held and held[0], op.note):
                conn.execute(
                    _SQL.put_checkpoint, (op.run_id, op.size, op.note, time.time_ns() // 1000)
                )

    def _refuse_append(self, conn: sqlite3.Connection, op: AppendEntries) -> None:
        """Raise why an append matched no run row (the checks MemoryStore makes, in its order)."""
        row = conn.execute(_SQL.select_holder, (op.run_id,)).fetchone()
        if row is None:
            raise self._not_found(op.run_id)
        schema.check_owner(op.run_id, row[0], op.owner)
        check_seqs(op.run_id, row[1], op.entries)
        raise RunConflictError(  # pragma: no cover - the checks above always find the reason
            f"run {op.run_id!r} changed while appending to it; retry"
        )

    def _read(self, conn: sqlite3.Connection, op: ReadEntries) -> list[bytes]:
        start, end = schema.read_bounds(op, lambda: self._get(conn, op.run_id).event_count)
        # unpacked as the cursor steps: no list of row tuples first (verify reads every entry)
        entries = codec.unpack(op.run_id, conn.execute(_SQL.read_events, (op.run_id, start, end)))
        if not entries:
            self._get(conn, op.run_id)  # raises RunNotFoundError for an unknown run
        return entries

    def _claim(self, conn: sqlite3.Connection, op: ClaimRun) -> RunInfo:
        with self._write(conn):
            info = self._get(conn, op.run_id)
            check_claim(info, op)
            conn.execute(_SQL.claim, (op.owner, op.now_us, op.lease_us, op.run_id))
        return claimed(info, op)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):  # the error that led here says more
            conn.execute("ROLLBACK")


def _checked_pragmas(pragmas: Mapping[str, int | str]) -> dict[str, int | str]:
    """Pragmas cannot be bound as parameters: accept only plain names and simple values."""
    checked: dict[str, int | str] = {}
    for name, value in pragmas.items():
        simple = isinstance(value, int) or (isinstance(value, str) and value.isalnum())
        if not (isinstance(name, str) and name.isidentifier() and simple):
            raise InvalidStoreURLError(
                f"SQLite pragma {name!r} = {value!r} is not a plain name and value; pass "
                "identifiers with integer or alphanumeric values, e.g. {'max_page_count': 10000}"
            )
        checked[name.lower()] = value
    return checked
