"""Riding out a lost PostgreSQL connection: which errors are retried, how long, and how a
retried write finds out whether its first try committed after all.

A backend terminated by ``pg_terminate_backend``, a server restart or a network cut loses
the operation in flight. :class:`PostgresStore <codon_sdk.stores.PostgresStore>` retries
that operation (the whole transaction: each store operation is one) on a fresh connection,
with exponential backoff and jitter, until the retry bound (``retry_timeout``, default
:data:`DEFAULT_RETRY_TIMEOUT_S`) has passed since the first failure; then it raises
``StoreConnectionError``, having lost nothing it committed.

A write whose connection broke after its ``COMMIT`` was sent may have committed without its
acknowledgement arriving. Before writing again, :func:`committed` reads the run back and says
whether the write is in: an append is in when the event at its last seq carries its leaf
hash (a hash over the entry, which names the run, the seq and the previous hash), a run's
beginning when the run's row holds its owner, start time, event count and head. Retrying is
therefore idempotent: no event is written twice or lost, and the hash chain stays whole.
Appends stay fenced by owner, so a retry after the run was taken over is refused
(``LeaseLostError``) as any write of a lapsed owner is.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Final

import psycopg
from psycopg_pool import PoolClosed

from codon_sdk.errors import InvalidStoreURLError
from codon_sdk.stores import _schema as schema
from codon_sdk.stores._base import AppendEntries, BeginRun, ClaimRun, Op, RunInfo, claimed

__all__ = [
    "DEFAULT_RETRY_TIMEOUT_S",
    "RETRY_OPTION",
    "Backoff",
    "committed",
    "connection_lost",
    "split_retry_option",
]

#: How long an operation that lost its connection keeps trying, from its first failure:
#: long enough for a server restart or a failover, well inside the default lease (60 s),
#: so that a run's lease does not lapse while its writes wait.
DEFAULT_RETRY_TIMEOUT_S: Final = 30.0
#: The store URL's query parameter that sets the bound (stripped before libpq sees the URL).
RETRY_OPTION: Final = "codon_retry_timeout"
_FIRST_DELAY_S: Final = 0.05  # the second retry waits about this long (the first goes at once)
_MAX_DELAY_S: Final = 2.0  # and no retry waits longer than this
#: SQLSTATEs of a server going away: admin shutdown (pg_terminate_backend, a fast shutdown),
#: crash shutdown, cannot connect now (starting up, shutting down); class 08: connection
#: exceptions.
_GONE: Final = frozenset({"57P01", "57P02", "57P03"})

_LEAF_AT: Final = f"SELECT leaf_hash FROM {schema.EVENTS_TABLE} WHERE run_id = %s AND seq = %s"
_FINISH_ROOT: Final = f"SELECT root FROM {schema.RUNS_LOG_TABLE} WHERE run_id = %s AND size > 1"


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection (not the statement) failed, so that the same
    operation may succeed on a new one: a server or network gone, a connection that could
    not be made, no connection from the pool in time. Not a closed store, not a refused
    statement, nor a bad password (SQLSTATE 28...)."""
    if not isinstance(exc, psycopg.OperationalError) or isinstance(exc, PoolClosed):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _GONE


class Backoff:
    """The delays between retries: the first at once (whatever the bound), then exponential
    (doubling from :data:`_FIRST_DELAY_S` up to :data:`_MAX_DELAY_S`) with jitter (each drawn
    between half and all of it), never past ``timeout`` seconds from now."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.attempts = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def next_delay(self) -> float | None:
        """How long to sleep before the next retry, or None when the bound has passed."""
        n, left = self.attempts, self.remaining()
        if n and left <= 0:
            return None
        self.attempts += 1
        if n == 0:  # the first retry goes at once, even with no time left
            return 0.0
        ceiling = min(_MAX_DELAY_S, _FIRST_DELAY_S * 2 ** (n - 1))
        return min(left, random.uniform(ceiling / 2, ceiling))  # jitter, not secrets


def split_retry_option(url: str, given: float | None, masked: str) -> tuple[str, float]:
    """The URL without :data:`RETRY_OPTION`, and the retry bound: ``given`` if not None, else
    the URL's, else the default. InvalidStoreURLError for a value that is not a number >= 0."""
    base, mark, query = url.partition("?")
    found: str | None = None
    kept: list[str] = []
    for pair in query.split("&") if mark else ():
        name, _, text = pair.partition("=")
        if name == RETRY_OPTION:
            found = text
        else:
            kept.append(pair)
    stripped = base + ("?" + "&".join(kept) if kept else "")
    value: object = found if given is None else given
    where = (
        f"{RETRY_OPTION}={found!r} in {masked!r}" if given is None else f"retry_timeout={given!r}"
    )
    if value is None:
        return stripped, DEFAULT_RETRY_TIMEOUT_S
    seconds = _seconds(value)
    if seconds is None:
        raise InvalidStoreURLError(
            f"PostgresStore {where} is not a number of seconds >= 0; give how long an "
            "operation that lost its connection keeps retrying (0: not at all; default "
            f"{DEFAULT_RETRY_TIMEOUT_S:g})"
        )
    return stripped, seconds


def _seconds(value: object) -> float | None:
    """``value`` as a finite number of seconds >= 0, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_NOT_IN: Final = (False, None)


def committed(conn: psycopg.Connection[Any], op: Op, select_run: str) -> tuple[bool, Any]:
    """``(True, result)`` when ``op`` (a write whose connection broke) committed after all,
    so that it must not be written again; ``(False, None)`` when it is to be carried out
    (again: every other operation is idempotent, or refused as a whole if it conflicts).

    ``select_run`` is the backend's statement reading a run's row (``Statements.select_run``).
    """
    if isinstance(op, AppendEntries):
        return _append_committed(conn, op, select_run)
    if isinstance(op, BeginRun):
        info = _run(conn, op.info.run_id, select_run)
        entries, then = op.entries, op.then
        head = entries[-1][2].hex() if entries else op.info.head
        owner = None if then is not None and then.release else op.info.owner
        mine = (owner, op.info.started_us, len(entries), head)
        if info is None or (info.owner, info.started_us, info.event_count, info.head) != mine:
            return _NOT_IN
        if then is not None and then.log_root is not None:  # and its finish line is in
            row = conn.execute(_FINISH_ROOT, (op.info.run_id,)).fetchone()
            return (row is not None and bytes(row[0]) == bytes(then.log_root)), None
        return True, None
    if isinstance(op, ClaimRun):
        info = _run(conn, op.run_id, select_run)
        if info is not None and op.owner and info.owner == op.owner:
            return True, claimed(info, op)
    return _NOT_IN


def _append_committed(
    conn: psycopg.Connection[Any], op: AppendEntries, select_run: str
) -> tuple[bool, Any]:
    if op.entries:
        last = op.entries[-1]
        row = conn.execute(_LEAF_AT, (op.run_id, last[0])).fetchone()
        return (row is not None and bytes(row[0]) == bytes(last[2])), None
    # No events (an index update, checkpoints, a finish line): a finish line is written once
    # per run, so finding ours proves the commit; a release leaves the run without an owner
    # (only its owner, or one that took it over after its lease expired, could have cleared
    # it). Anything else is idempotent: status and times are set again, checkpoints are kept
    # once.
    if op.log_root is not None:
        row = conn.execute(_FINISH_ROOT, (op.run_id,)).fetchone()
        return (row is not None and bytes(row[0]) == bytes(op.log_root)), None
    if op.release:
        info = _run(conn, op.run_id, select_run)
        done = info is not None and info.owner is None and op.status in (None, info.status)
        return done, None
    return _NOT_IN


def _run(conn: psycopg.Connection[Any], run_id: str, select_run: str) -> RunInfo | None:
    row = conn.execute(select_run, (run_id,)).fetchone()
    return None if row is None else schema.info_from_row(row)
