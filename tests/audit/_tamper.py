"""An attacker with database access: edits a ledger underneath the SDK.

:class:`Database` talks to the backend through its own driver connection
(``sqlite3`` on the file, ``psycopg`` as the ``postgres`` superuser), first
dropping (SQLite) or disabling (PostgreSQL) the append-only triggers, exactly as
someone holding the database would. It never goes through a ``LedgerStore``.

:func:`rechain` is the careful attacker's tool: re-encode parsed entries with the
SDK's own canonical encoder, renumber them and recompute every ``prev`` link, so
the hash chain holds again and only signed checkpoints can tell.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.stores import _codec as codec

__all__ = ["Database", "edit", "rechain"]

EVENTS = "codon_events"
RUNS = "codon_runs"
CHECKPOINTS = "codon_checkpoints"
RUNS_LOG = "codon_runs_log"


def edit(entry: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """``entry`` parsed, changed in place by ``change``, re-encoded canonically (prev kept)."""
    obj = orjson.loads(entry)
    change(obj)
    return json_canonical(obj)


def rechain(entries: Sequence[bytes], start: int = 0, *, run_id: str | None = None) -> list[bytes]:
    """Entries from ``start`` on renumbered and re-linked so the chain holds again.

    ``run_id`` also moves every rewritten entry to that run. ``run_finished``
    gets its event count fixed too, so nothing but a checkpoint reveals the edit.
    """
    out = list(entries[:start])
    for entry in entries[start:]:
        obj = orjson.loads(entry)
        obj["seq"] = len(out)
        if run_id is not None:
            obj["run_id"] = run_id
        if out:
            obj["prev"] = leaf_hash(out[-1]).hex()
        else:
            obj.pop("prev", None)
        if obj["type"] == "run_finished":
            obj["metadata"]["events"] = len(out)
        out.append(json_canonical(obj))
    return out


class Database:
    """Direct access to a ledger database, append-only triggers out of the way."""

    def __init__(self, kind: str, target: str | Path) -> None:
        self.kind = kind
        self.target = target
        self._conn: Any = None

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        if self.kind == "sqlite":
            conn = sqlite3.connect(str(self.target), isolation_level=None, timeout=30)
            triggers = [
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
            ]
            for name in triggers:
                conn.execute(f'DROP TRIGGER "{name}"')
        else:
            import psycopg

            conn = psycopg.connect(str(self.target), autocommit=True)
            for table in (EVENTS, CHECKPOINTS, RUNS_LOG, RUNS):
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        self._conn = conn
        return conn

    def _sql(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        if self.kind == "postgres":
            sql = sql.replace("?", "%s")
        cursor = conn.execute(sql, tuple(params))
        rows = cursor.fetchall() if cursor.description is not None else []
        return [tuple(row) for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ events

    def entries(self, run_id: str) -> list[bytes]:
        """The run's entries as readers see them (the stored forms unpacked, see _codec)."""
        rows = self._sql(
            f"SELECT seq, entry FROM {EVENTS} WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return codec.unpack(run_id, rows)

    def set_entry(self, run_id: str, seq: int, entry: bytes) -> None:
        """Overwrite one stored entry (and its leaf hash column, as a careful attacker would)."""
        self._sql(
            f"UPDATE {EVENTS} SET entry = ?, leaf_hash = ? WHERE run_id = ? AND seq = ?",
            (entry, leaf_hash(entry), run_id, seq),
        )

    def delete_events(self, run_id: str, seqs: Iterable[int]) -> None:
        for seq in seqs:
            self._sql(f"DELETE FROM {EVENTS} WHERE run_id = ? AND seq = ?", (run_id, seq))

    def insert_event(self, run_id: str, seq: int, entry: bytes) -> None:
        self._sql(
            f"INSERT INTO {EVENTS} (run_id, seq, entry, leaf_hash) VALUES (?, ?, ?, ?)",
            (run_id, seq, entry, leaf_hash(entry)),
        )

    def rewrite_run(self, run_id: str, entries: Sequence[bytes]) -> None:
        """Replace every event row of ``run_id`` by ``entries`` (seq = position)."""
        self._sql(f"DELETE FROM {EVENTS} WHERE run_id = ?", (run_id,))
        for seq, entry in enumerate(entries):
            self.insert_event(run_id, seq, entry)

    # ------------------------------------------------------------------ index, checkpoints, log

    def update_run(self, run_id: str, **columns: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in columns)
        self._sql(f"UPDATE {RUNS} SET {names} WHERE run_id = ?", (*columns.values(), run_id))

    def checkpoints(self, run_id: str) -> list[tuple[int, bytes]]:
        rows = self._sql(
            f"SELECT size, note FROM {CHECKPOINTS} WHERE run_id = ? ORDER BY size", (run_id,)
        )
        return [(int(size), bytes(note)) for size, note in rows]

    def delete_checkpoints(self, run_id: str, sizes: Iterable[int] | None = None) -> None:
        if sizes is None:
            self._sql(f"DELETE FROM {CHECKPOINTS} WHERE run_id = ?", (run_id,))
            return
        for size in sizes:
            self._sql(f"DELETE FROM {CHECKPOINTS} WHERE run_id = ? AND size = ?", (run_id, size))

    def set_checkpoint(self, run_id: str, size: int, note: bytes) -> None:
        self._sql(
            f"UPDATE {CHECKPOINTS} SET note = ? WHERE run_id = ? AND size = ?",
            (note, run_id, size),
        )

    def runs_log(self) -> list[tuple[int, str, int, bytes]]:
        rows = self._sql(f"SELECT idx, run_id, size, root FROM {RUNS_LOG} ORDER BY idx")
        return [(int(i), str(r), int(s), bytes(root)) for i, r, s, root in rows]

    def delete_run(self, run_id: str) -> None:
        """A whole run gone: its events, index row, checkpoints and line in the log of runs."""
        for table in (EVENTS, RUNS, CHECKPOINTS, RUNS_LOG):
            self._sql(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
