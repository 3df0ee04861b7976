"""The keyring of approvers, as calls on a store: add, remove and list approver keys.

The operations themselves are in ``_approvers.py``. A key read back from the table is
hostile input like every other row: it is parsed before it is trusted, and a row that
holds no verifier key trusts nothing.
"""

from __future__ import annotations

from codon_sdk._clock import now_us
from codon_sdk.errors import ApprovalError, CheckpointError
from codon_sdk.ledger import Verifier
from codon_sdk.stores._approvers import AddApprover, ApproverKey, ListApprovers, RemoveApprover
from codon_sdk.stores._base import LedgerStore

__all__ = ["add_approver", "approver_keys", "approvers", "remove_approver"]


def _workload(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ApprovalError(
            f"an approver is trusted for a workload name (a non-empty printable string), got "
            f"{name!r}"
        )
    return name


def _vkey(vkey: object) -> str:
    try:
        return Verifier.from_vkey(vkey if isinstance(vkey, str) else repr(vkey)).vkey
    except CheckpointError as exc:
        raise ApprovalError(
            f"an approver key is a verifier key '<name>+<key id>+<base64 key>' (the .vkey file "
            f"`codon keygen` writes): {exc}"
        ) from exc


def add_approver(store: LedgerStore, workload: str, vkey: str) -> ApproverKey:
    """Trust the verifier key ``vkey`` to approve runs of the workload named ``workload``."""
    key = ApproverKey(workload_name=_workload(workload), vkey=_vkey(vkey), added_us=now_us())
    store.execute(AddApprover(key=key))
    return key


def remove_approver(store: LedgerStore, workload: str, vkey: str) -> bool:
    """Stop trusting ``vkey`` for ``workload``; False when it was not trusted."""
    return bool(store.execute(RemoveApprover(workload_name=_workload(workload), vkey=_vkey(vkey))))


def approvers(store: LedgerStore, workload: str | None = None) -> list[ApproverKey]:
    """The keyring: the approvers of ``workload`` (None: of every workload)."""
    name = None if workload is None else _workload(workload)
    result: list[ApproverKey] = store.execute(ListApprovers(workload_name=name))
    return result


def approver_keys(store: LedgerStore, workload: str) -> list[Verifier]:
    """The verifier keys trusted for ``workload``, parsed: a row that holds no verifier key
    (hostile data) trusts nothing and is left out."""
    out: list[Verifier] = []
    for row in approvers(store, workload):
        try:
            out.append(Verifier.from_vkey(row.vkey))
        except CheckpointError:
            continue
    return out
