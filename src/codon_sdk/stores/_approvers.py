"""The keyring of approvers: which Ed25519 keys may sign approvals for which workload.

One row per (workload name, verifier key) in ``codon_approvers`` (schema version 6). The
operations are :class:`AddApprover`, :class:`RemoveApprover` and :class:`ListApprovers`
(members of the store :data:`~codon_sdk.stores.Op` union, so every backend, a plug-in's
too, carries them through ``execute``); ``_keyring.py`` holds the conveniences over them
(``add_approver``, ``remove_approver``, ``approvers``). Resume checks an approval against
the keyring when it is given; ``verify_run`` checks every recorded approval against the
keyring as it is at verify time, so removing a key makes the approvals it signed
``tampered`` (a key outside the keyring vouches for nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from typing_extensions import assert_never

__all__ = [
    "APPROVERS_TABLE",
    "AddApprover",
    "ApproverKey",
    "ApproverOp",
    "ListApprovers",
    "RemoveApprover",
    "approvers_migration",
    "memory_approvers",
    "sql_approvers",
]

APPROVERS_TABLE: Final = "codon_approvers"


def approvers_migration(int_type: str) -> tuple[str, ...]:
    """The migration that creates the keyring (``int_type``: the dialect's 64-bit integer)."""
    return (
        f"""CREATE TABLE {APPROVERS_TABLE} (
            workload_name TEXT NOT NULL,
            vkey TEXT NOT NULL,
            added_us {int_type} NOT NULL,
            PRIMARY KEY (workload_name, vkey)
        )""",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproverKey:
    """One approver: the verifier key (``<name>+<key id>+<key>``) trusted for a workload."""

    workload_name: str
    vkey: str
    added_us: int

    @property
    def name(self) -> str:
        """The key's name (what its signature lines say)."""
        return self.vkey.split("+", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload_name, "vkey": self.vkey, "added_us": self.added_us}


@dataclass(frozen=True, slots=True, kw_only=True)
class AddApprover:
    """Trust ``key`` for its workload. Returns True when added, False when already there."""

    key: ApproverKey


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveApprover:
    """Stop trusting ``vkey`` for ``workload_name``. Returns True when a key was removed."""

    workload_name: str
    vkey: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListApprovers:
    """The approvers of ``workload_name`` (None: of every workload), by workload then key.
    Returns ``list[ApproverKey]``."""

    workload_name: str | None = None


ApproverOp: TypeAlias = AddApprover | RemoveApprover | ListApprovers


def sql_approvers(conn: Any, p: str, op: ApproverOp) -> Any:
    """Carry out ``op`` on a SQL connection whose paramstyle is ``p`` (autocommit)."""
    if isinstance(op, AddApprover):
        k = op.key
        sql = (
            f"INSERT INTO {APPROVERS_TABLE} (workload_name, vkey, added_us) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (workload_name, vkey) DO NOTHING"
        )
        return conn.execute(sql, (k.workload_name, k.vkey, k.added_us)).rowcount == 1
    if isinstance(op, RemoveApprover):
        sql = f"DELETE FROM {APPROVERS_TABLE} WHERE workload_name = {p} AND vkey = {p}"
        return conn.execute(sql, (op.workload_name, op.vkey)).rowcount == 1
    if isinstance(op, ListApprovers):
        select = f"SELECT workload_name, vkey, added_us FROM {APPROVERS_TABLE}"
        params: tuple[str, ...] = ()
        if op.workload_name is not None:
            select += f" WHERE workload_name = {p}"
            params = (op.workload_name,)
        rows = conn.execute(select + " ORDER BY workload_name, vkey", params).fetchall()
        return [_row(row) for row in rows]
    assert_never(op)


def memory_approvers(held: dict[tuple[str, str], ApproverKey], op: ApproverOp) -> Any:
    """Carry out ``op`` on an in-memory keyring (the caller holds its lock)."""
    if isinstance(op, AddApprover):
        k = (op.key.workload_name, op.key.vkey)
        if k in held:
            return False
        held[k] = op.key
        return True
    if isinstance(op, RemoveApprover):
        return held.pop((op.workload_name, op.vkey), None) is not None
    if isinstance(op, ListApprovers):
        rows = [v for (w, _), v in held.items() if op.workload_name in (None, w)]
        return sorted(rows, key=lambda r: (r.workload_name, r.vkey))
    assert_never(op)


def _row(row: Sequence[Any]) -> ApproverKey:
    workload, vkey, added = row
    return ApproverKey(workload_name=str(workload), vkey=str(vkey), added_us=int(added))
