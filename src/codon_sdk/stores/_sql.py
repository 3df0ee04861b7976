"""What the two SQL backends share at run time: routing an operation to its handler,
and the operations whose SQL differs only by paramstyle (checkpoints, the log of runs)."""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_never

from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.stores._base import (
    AppendEntries,
    BeginRun,
    ClaimRun,
    GetRun,
    LedgerStore,
    ListRuns,
    Op,
    PutCheckpoint,
    ReadCheckpoints,
    ReadEntries,
    ReadRunsLog,
    RenewLease,
    RunInfo,
    check_owner,
)

__all__ = ["SQLStore"]


class SQLStore(LedgerStore):
    """Base of SQLiteStore and PostgresStore: each supplies a connection per operation and
    the handlers below; :meth:`_dispatch` routes every operation type exactly once."""

    #: The audit statements in the backend's paramstyle (``schema.audit_sql``).
    _audit: dict[str, str]
    #: The lease statements in the backend's paramstyle (``schema.renew_sql``).
    _renew_sql: tuple[str, str]

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
            rows = conn.execute(self._audit["read_checkpoints"], (op.run_id,))
            return [(size, bytes(note)) for size, note in rows]
        if isinstance(op, PutCheckpoint):
            return self._put_checkpoint(conn, op)
        if isinstance(op, ReadRunsLog):
            rows = conn.execute(self._audit["read_log"])
            return [(idx, run_id, size, bytes(root)) for idx, run_id, size, root in rows]
        if isinstance(op, RenewLease):
            return self._renew(conn, op)
        assert_never(op)

    def _renew(self, conn: Any, op: RenewLease) -> None:
        """One fenced UPDATE (its own transaction: both backends' connections autocommit)."""
        update, holder = self._renew_sql
        if conn.execute(update, (op.now_us, op.run_id, op.owner)).rowcount == 1:
            return
        row = conn.execute(holder, (op.run_id,)).fetchone()
        if row is None:
            raise self._not_found(op.run_id)
        check_owner(op.run_id, row[0], op.owner)
        raise RunConflictError(  # pragma: no cover - the holder changed back in between
            f"run {op.run_id!r} changed hands while renewing the lease of {op.owner!r}; retry"
        )

    def _not_found(self, run_id: str) -> RunNotFoundError:
        return RunNotFoundError(f"no run {run_id!r} in {self.url}")

    # the handlers each backend writes in its own dialect
    def _append(self, conn: Any, op: AppendEntries) -> None:
        raise NotImplementedError

    def _read(self, conn: Any, op: ReadEntries) -> list[bytes]:
        raise NotImplementedError

    def _begin(self, conn: Any, op: BeginRun) -> None:
        raise NotImplementedError

    def _get(self, conn: Any, run_id: str) -> RunInfo:
        raise NotImplementedError

    def _list(self, conn: Any, op: ListRuns) -> list[RunInfo]:
        raise NotImplementedError

    def _claim(self, conn: Any, op: ClaimRun) -> RunInfo:
        raise NotImplementedError

    def _put_checkpoint(self, conn: Any, op: PutCheckpoint) -> None:
        raise NotImplementedError
