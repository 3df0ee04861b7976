"""Erasure and retention in a store: migration 9 and its operations.

Tables (schema version 9):

* ``codon_subjects(subject, run_id, seq)``: what each subject id was recorded against, a
  whole run (``seq`` -1, ``execute(..., subject=)``) or one event (``record_event(...,
  subject=)``); rows go when what they name is erased;
* ``codon_erasures(idx, run_id, body, hash, erased_us)``: the erasure log, one hash-chained
  line per erasure (``ledger/_erasure.py``), append-only by triggers like the events;
* ``codon_holds(run_id, reason, actor, held_us)``: legal holds (a held run is not erased);
* ``codon_retention(workload_name, days, set_us)``: how long each workload's runs are kept.

:class:`EraseEvents` is the one write that erases: in one transaction it checks that the
run is as the caller read it (not running meanwhile) and not held, lifts the events
table's append-only trigger for its own statements only (SQLite: drops and recreates it;
PostgreSQL: ``DISABLE``/``ENABLE TRIGGER``, which only the role that owns the tables may
do), puts the stand-ins in place of the entries, appends the erasure log's next line,
drops the cache and subject rows of what it erased, and deletes the blobs no entry refers
to any more. :class:`Compact` then rewrites the database so freed pages keep no copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from typing_extensions import assert_never

from codon_sdk.errors import RunConflictError, RunHeldError
from codon_sdk.ledger import ErasureLine, make_line

__all__ = [
    "ERASE_OPS",
    "ERASURES_TABLE",
    "HOLDS_TABLE",
    "RETENTION_TABLE",
    "SUBJECTS_TABLE",
    "WHOLE_RUN",
    "Compact",
    "EraseEvents",
    "EraseOp",
    "FindSubject",
    "Hold",
    "ListHolds",
    "ListRetention",
    "ReadErasures",
    "SetHold",
    "SetRetention",
    "TagSubject",
    "describe_erase",
    "erase_migration",
    "MemoryErasure",
    "memory_erase",
    "sql_erase",
]

SUBJECTS_TABLE: Final = "codon_subjects"
ERASURES_TABLE: Final = "codon_erasures"
HOLDS_TABLE: Final = "codon_holds"
RETENTION_TABLE: Final = "codon_retention"
EVENTS: Final = "codon_events"
BLOBS: Final = "codon_blobs"
CACHE: Final = "codon_cache"
RUNS: Final = "codon_runs"
#: The ``seq`` of a subject row that names a whole run.
WHOLE_RUN: Final = -1


def erase_migration(dialect: str) -> tuple[str, ...]:
    """Migration 9 in ``dialect`` (``sqlite`` or ``postgres``)."""
    pg = dialect == "postgres"
    integer, binary = ("BIGINT", "BYTEA") if pg else ("INTEGER", "BLOB")
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    tables = (
        f"""CREATE TABLE {SUBJECTS_TABLE} (
            subject TEXT NOT NULL,
            run_id {text} NOT NULL,
            seq {integer} NOT NULL,
            PRIMARY KEY (subject, run_id, seq)
        )""",
        f"CREATE INDEX codon_subjects_run ON {SUBJECTS_TABLE} (run_id)",
        f"""CREATE TABLE {ERASURES_TABLE} (
            idx {integer} PRIMARY KEY,
            run_id {text} NOT NULL,
            body {binary} NOT NULL,
            hash TEXT NOT NULL,
            erased_us {integer} NOT NULL
        )""",
        f"""CREATE TABLE {HOLDS_TABLE} (
            run_id {text} PRIMARY KEY,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            held_us {integer} NOT NULL
        )""",
        f"""CREATE TABLE {RETENTION_TABLE} (
            workload_name TEXT PRIMARY KEY,
            days {integer} NOT NULL,
            set_us {integer} NOT NULL
        )""",
    )
    if pg:
        guards: tuple[str, ...] = (
            f"""CREATE TRIGGER {ERASURES_TABLE}_append_only BEFORE UPDATE OR DELETE
            ON {ERASURES_TABLE} FOR EACH ROW EXECUTE FUNCTION codon_events_append_only()""",
            f"""CREATE TRIGGER {ERASURES_TABLE}_no_truncate BEFORE TRUNCATE ON {ERASURES_TABLE}
            FOR EACH STATEMENT EXECUTE FUNCTION codon_events_append_only()""",
        )
    else:
        guards = tuple(
            f"""CREATE TRIGGER {ERASURES_TABLE}_no_{op.lower()} BEFORE {op} ON {ERASURES_TABLE}
            BEGIN SELECT RAISE(ABORT, '{ERASURES_TABLE} is append-only'); END"""
            for op in ("UPDATE", "DELETE")
        )
    return (*tables, *guards)


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class TagSubject:
    """Record that ``subject`` is recorded against run ``run_id`` (``seq`` -1: all of it)."""

    subject: str
    run_id: str
    seq: int = WHOLE_RUN


@dataclass(frozen=True, slots=True)
class FindSubject:
    """``[(run_id, seq), ...]`` that ``subject`` was recorded against (seq -1: a whole run)."""

    subject: str


@dataclass(frozen=True, slots=True)
class ReadErasures:
    """Every line of the erasure log, in order (:class:`~codon_sdk.ledger.ErasureLine`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EraseEvents:
    """Replace events of ``run_id`` by their stand-ins and log it (see the module docstring).

    ``seen`` is the run's ``(owner, heartbeat_us, event_count)`` as the caller read it: if
    the run changed since, nothing is erased (``RunConflictError``). ``rows`` are ``(seq,
    stand-in entry)``, ``leaves`` the original leaves in the same order; ``blobs`` the
    digests the erased entries referred to; ``whole``: every event of the run is erased.
    Returns ``(the new log line, the digests of the blobs deleted)``.
    """

    run_id: str
    seen: tuple[str | None, int | None, int]
    rows: tuple[tuple[int, bytes], ...]
    leaves: tuple[bytes, ...]
    reason: str
    actor: str
    erased_us: int
    blobs: tuple[str, ...] = ()
    whole: bool = False


@dataclass(frozen=True, slots=True)
class Compact:
    """Rewrite the database so that no freed page keeps erased bytes (VACUUM)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A legal hold on a run: it is not erased while held."""

    run_id: str
    reason: str
    actor: str
    held_us: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetHold:
    """Put ``hold`` on its run, or (``hold`` None) release the hold on ``run_id``; returns
    whether anything changed."""

    run_id: str
    hold: Hold | None


@dataclass(frozen=True, slots=True)
class ListHolds:
    """Every legal hold, by run id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRetention:
    """Keep the runs of ``workload_name`` for ``days`` days (None: remove the policy)."""

    workload_name: str
    days: int | None
    set_us: int = 0


@dataclass(frozen=True, slots=True)
class ListRetention:
    """``[(workload_name, days), ...]``: every retention policy, by workload."""


EraseOp: TypeAlias = (
    TagSubject
    | FindSubject
    | ReadErasures
    | EraseEvents
    | Compact
    | SetHold
    | ListHolds
    | SetRetention
    | ListRetention
)


#: Every erasure operation type, for dispatch (``isinstance(op, ERASE_OPS)``).
ERASE_OPS: Final = (
    TagSubject,
    FindSubject,
    ReadErasures,
    EraseEvents,
    Compact,
    SetHold,
    ListHolds,
    SetRetention,
    ListRetention,
)


def describe_erase(op: EraseOp) -> str:
    """What ``op`` was doing, for error messages."""
    if isinstance(op, TagSubject):
        return f"record a subject against run {op.run_id!r}"
    if isinstance(op, FindSubject):
        return "find what a subject was recorded against"
    if isinstance(op, ReadErasures):
        return "read the erasure log"
    if isinstance(op, EraseEvents):
        return (
            f"erase {len(op.rows)} event(s) of run {op.run_id!r} (erasure needs the role that "
            "owns the ledger tables on PostgreSQL: see the retention guide)"
        )
    if isinstance(op, Compact):
        return "compact the database after an erasure (VACUUM)"
    if isinstance(op, SetHold):
        return f"{'hold' if op.hold else 'release'} run {op.run_id!r}"
    if isinstance(op, ListHolds):
        return "list legal holds"
    if isinstance(op, SetRetention):
        return f"set the retention of workload {op.workload_name!r}"
    if isinstance(op, ListRetention):
        return "list retention policies"
    assert_never(op)


def _held(run_id: str, hold: Hold) -> RunHeldError:
    return RunHeldError(
        f"run {run_id!r} is under a legal hold ({hold.reason!r}, by {hold.actor!r}) and is not "
        f"erased; release it first (codon retention release {run_id}) if the hold has ended"
    )


def _changed(run_id: str) -> RunConflictError:
    return RunConflictError(
        f"run {run_id!r} changed while it was being erased (it is running, or was resumed): "
        "nothing was erased; erase it once it has ended"
    )


# --------------------------------------------------------------------------- SQL


def sql_erase(conn: Any, p: str, op: EraseOp, atomic: Any, dialect: str, pack: Any) -> Any:
    """Carry out ``op`` on a SQL connection (paramstyle ``p``; ``atomic(conn)`` opens one
    write transaction; ``dialect``: ``sqlite`` or ``postgres``; ``pack``: the stored form
    of entries, ``_codec.pack``)."""
    if isinstance(op, TagSubject):
        conn.execute(
            f"INSERT INTO {SUBJECTS_TABLE} (subject, run_id, seq) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT DO NOTHING",
            (op.subject, op.run_id, op.seq),
        )
        return None
    if isinstance(op, FindSubject):
        rows = conn.execute(
            f"SELECT run_id, seq FROM {SUBJECTS_TABLE} WHERE subject = {p} ORDER BY run_id, seq",
            (op.subject,),
        )
        return [(run_id, seq) for run_id, seq in rows]
    if isinstance(op, ReadErasures):
        rows = conn.execute(f"SELECT idx, run_id, body, hash FROM {ERASURES_TABLE} ORDER BY idx")
        return [_line(row) for row in rows]
    if isinstance(op, EraseEvents):
        with atomic(conn):
            return _sql_erase(conn, p, op, dialect, pack)
    if isinstance(op, Compact):
        if dialect == "postgres":
            tables = (EVENTS, BLOBS, CACHE, SUBJECTS_TABLE)
            conn.execute(f"VACUUM FULL {', '.join(tables)}")
        else:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return None
    if isinstance(op, SetHold):
        if op.hold is None:
            sql = f"DELETE FROM {HOLDS_TABLE} WHERE run_id = {p}"
            return conn.execute(sql, (op.run_id,)).rowcount == 1
        h = op.hold
        return (
            conn.execute(
                f"INSERT INTO {HOLDS_TABLE} (run_id, reason, actor, held_us) "
                f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (run_id) DO NOTHING",
                (h.run_id, h.reason, h.actor, h.held_us),
            ).rowcount
            == 1
        )
    if isinstance(op, ListHolds):
        rows = conn.execute(
            f"SELECT run_id, reason, actor, held_us FROM {HOLDS_TABLE} ORDER BY run_id"
        )
        return [Hold(run_id=r, reason=why, actor=a, held_us=us) for r, why, a, us in rows]
    if isinstance(op, SetRetention):
        if op.days is None:
            sql = f"DELETE FROM {RETENTION_TABLE} WHERE workload_name = {p}"
            conn.execute(sql, (op.workload_name,))
            return None
        conn.execute(
            f"INSERT INTO {RETENTION_TABLE} (workload_name, days, set_us) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (workload_name) DO UPDATE SET days = excluded.days, "
            "set_us = excluded.set_us",
            (op.workload_name, op.days, op.set_us),
        )
        return None
    if isinstance(op, ListRetention):
        rows = conn.execute(
            f"SELECT workload_name, days FROM {RETENTION_TABLE} ORDER BY workload_name"
        )
        return [(name, days) for name, days in rows]
    assert_never(op)


def _line(row: Sequence[Any]) -> ErasureLine:
    idx, run_id, body, digest = row
    return ErasureLine(idx=idx, run_id=run_id, body=bytes(body), hash=digest)


def _sql_erase(
    conn: Any, p: str, op: EraseEvents, dialect: str, pack: Any
) -> tuple[ErasureLine, list[str]]:
    if dialect == "postgres":
        conn.execute(f"LOCK TABLE {ERASURES_TABLE} IN EXCLUSIVE MODE")
    row = conn.execute(
        f"SELECT owner, heartbeat_us, event_count FROM {RUNS} WHERE run_id = {p}",
        (op.run_id,),
    ).fetchone()
    if row is None or tuple(row) != op.seen:
        raise _changed(op.run_id)
    held = conn.execute(
        f"SELECT run_id, reason, actor, held_us FROM {HOLDS_TABLE} WHERE run_id = {p}",
        (op.run_id,),
    ).fetchone()
    if held is not None:
        raise _held(op.run_id, Hold(run_id=held[0], reason=held[1], actor=held[2], held_us=held[3]))
    update = f"UPDATE {EVENTS} SET entry = {p} WHERE run_id = {p} AND seq = {p}"
    params = [(pack(op.run_id, seq, [entry])[0], op.run_id, seq) for seq, entry in op.rows]
    if dialect == "postgres":
        conn.execute(f"ALTER TABLE {EVENTS} DISABLE TRIGGER codon_events_no_update_delete")
        conn.cursor().executemany(update, params)
        conn.execute(f"ALTER TABLE {EVENTS} ENABLE TRIGGER codon_events_no_update_delete")
    else:
        trigger = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
            ("codon_events_no_update",),
        ).fetchone()
        conn.execute("DROP TRIGGER IF EXISTS codon_events_no_update")
        conn.executemany(update, params)
        if trigger is not None:
            conn.execute(trigger[0])
    last = conn.execute(
        f"SELECT idx, run_id, body, hash FROM {ERASURES_TABLE} ORDER BY idx DESC LIMIT 1"
    ).fetchone()
    line = make_line(
        None if last is None else _line(last),
        run_id=op.run_id,
        seqs=[seq for seq, _ in op.rows],
        leaves=op.leaves,
        reason=op.reason,
        actor=op.actor,
        erased_us=op.erased_us,
    )
    conn.execute(
        f"INSERT INTO {ERASURES_TABLE} (idx, run_id, body, hash, erased_us) "
        f"VALUES ({p}, {p}, {p}, {p}, {p})",
        (line.idx, line.run_id, line.body, line.hash, op.erased_us),
    )
    conn.execute(f"DELETE FROM {CACHE} WHERE run_id = {p}", (op.run_id,))
    if op.whole:
        conn.execute(f"DELETE FROM {SUBJECTS_TABLE} WHERE run_id = {p}", (op.run_id,))
    else:
        conn.cursor().executemany(
            f"DELETE FROM {SUBJECTS_TABLE} WHERE run_id = {p} AND seq = {p}",
            [(op.run_id, seq) for seq, _ in op.rows],
        )
    where = "position(%s::bytea in entry) > 0" if dialect == "postgres" else "instr(entry, ?) > 0"
    gone: list[str] = []
    for digest in op.blobs:
        needle = digest.encode("ascii")
        used = conn.execute(f"SELECT 1 FROM {EVENTS} WHERE {where} LIMIT 1", (needle,)).fetchone()
        if used is None:
            conn.execute(f"DELETE FROM {BLOBS} WHERE sha256 = {p}", (digest,))
            gone.append(digest)
    return line, gone


# --------------------------------------------------------------------------- memory


@dataclass(slots=True)
class MemoryErasure:
    """What a :class:`~codon_sdk.stores.MemoryStore` keeps for erasure and retention."""

    subjects: set[tuple[str, str, int]]
    lines: list[ErasureLine]
    holds: dict[str, Hold]
    retention: dict[str, int]


def memory_erase(store: Any, held: MemoryErasure, op: EraseOp) -> Any:
    """Carry out ``op`` on a MemoryStore (the caller holds its lock)."""
    if isinstance(op, TagSubject):
        held.subjects.add((op.subject, op.run_id, op.seq))
        return None
    if isinstance(op, FindSubject):
        return sorted((r, s) for subject, r, s in held.subjects if subject == op.subject)
    if isinstance(op, ReadErasures):
        return list(held.lines)
    if isinstance(op, EraseEvents):
        return _memory_erase(store, held, op)
    if isinstance(op, Compact):
        return None
    if isinstance(op, SetHold):
        if op.hold is None:
            return held.holds.pop(op.run_id, None) is not None
        return held.holds.setdefault(op.run_id, op.hold) is op.hold
    if isinstance(op, ListHolds):
        return [held.holds[r] for r in sorted(held.holds)]
    if isinstance(op, SetRetention):
        if op.days is None:
            held.retention.pop(op.workload_name, None)
        else:
            held.retention[op.workload_name] = op.days
        return None
    if isinstance(op, ListRetention):
        return sorted(held.retention.items())
    assert_never(op)


def _memory_erase(
    store: Any, held: MemoryErasure, op: EraseEvents
) -> tuple[ErasureLine, list[str]]:
    info = store._info(op.run_id)
    if (info.owner, info.heartbeat_us, info.event_count) != op.seen:
        raise _changed(op.run_id)
    if op.run_id in held.holds:
        raise _held(op.run_id, held.holds[op.run_id])
    events = store._events[op.run_id]
    for seq, entry in op.rows:
        events[seq] = entry
    line = make_line(
        held.lines[-1] if held.lines else None,
        run_id=op.run_id,
        seqs=[seq for seq, _ in op.rows],
        leaves=op.leaves,
        reason=op.reason,
        actor=op.actor,
        erased_us=op.erased_us,
    )
    held.lines.append(line)
    store._cache = {k: e for k, e in store._cache.items() if e.run_id != op.run_id}
    seqs = {seq for seq, _ in op.rows}
    held.subjects = {
        t for t in held.subjects if not (t[1] == op.run_id and (op.whole or t[2] in seqs))
    }
    gone = []
    for digest in op.blobs:
        needle = digest.encode("ascii")
        if not any(needle in e for run in store._events.values() for e in run):
            store._blobs.pop(digest, None)
            gone.append(digest)
    return line, gone
