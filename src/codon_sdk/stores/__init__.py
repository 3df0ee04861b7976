"""Ledger stores: where run ledgers live (memory, SQLite, PostgreSQL, or a plug-in).

``open_store(url)`` picks one from a URL, by its scheme, through the store
registry: :func:`register_store` adds a scheme in code, and an entry point in the
group ``codon_sdk.stores`` (:data:`ENTRY_POINT_GROUP`) adds one from another
distribution. A backend subclasses :class:`LedgerStore` and carries out the
operation records (:data:`Op`); the helpers below are the checks every backend
makes, and :class:`codon_sdk.testing.StoreConformance` is the suite it must pass.

Besides: :func:`shared_store` (the one store this process shares for a PostgreSQL URL),
the run-lease helpers (:func:`new_owner`, :func:`hold`, :func:`release`,
:func:`lease_is_stale`), the notary that signs Merkle checkpoints over finished runs
(:class:`Notary`, :class:`FileCheckpointSink`), store-level verification
(:func:`verify_run`, :func:`verify_all`), least-privilege PostgreSQL roles
(:func:`grant_sql`) and the keyring of approvers who may sign approvals per workload
(:func:`add_approver`, :func:`remove_approver`, :func:`approvers`, :class:`ApproverKey`)
and the content-addressed blob stores that hold payloads too large for the chain
(:func:`blob_store_for`, :class:`DirectoryBlobStore`, docs: guides/blobs.md), and
erasure and retention (:func:`erase_subject`, :func:`erase_run`, :func:`apply_retention`,
legal holds, :func:`erasure_log`; docs: guides/retention.md).

``PostgresStore`` and the PostgreSQL administration helpers need the ``postgres`` extra
and are imported on first use. The modules behind this face are private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon_sdk.stores._approvers import (
    AddApprover,
    ApproverKey,
    ListApprovers,
    RemoveApprover,
)
from codon_sdk.stores._base import (
    RUN_STATUSES,
    AppendEntries,
    BeginRun,
    CacheEntry,
    ClaimRun,
    Entry,
    EntryBatch,
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
    check_claim,
    check_finish_size,
    check_owner,
    check_seqs,
    claimed,
    entry_bytes,
    hold,
    lease_is_stale,
    lease_seconds,
    new_owner,
    release,
    start_leaf,
)
from codon_sdk.stores._blob_ops import GetBlob, PutBlob
from codon_sdk.stores._blobs import (
    BLOB_NEEDLE,
    BlobStore,
    DirectoryBlobStore,
    TableBlobStore,
    blob_findings,
    blob_ref,
    blob_refs,
    blob_store_for,
    inline_blobs,
    is_blob_ref,
)
from codon_sdk.stores._budgets import BudgetTotals, ChargeBudget, ReadBudget, TakeRateSlot
from codon_sdk.stores._erase import (
    Erasure,
    apply_retention,
    check_subject,
    erase_run,
    erase_subject,
    erasure_log,
    expired_runs,
    hold_run,
    legal_holds,
    release_run,
    retention_policies,
    set_retention,
    tag_subject,
)
from codon_sdk.stores._erase_ops import (
    Compact,
    EraseEvents,
    FindSubject,
    Hold,
    ListHolds,
    ListRetention,
    ReadErasures,
    SetHold,
    SetRetention,
    TagSubject,
)
from codon_sdk.stores._keyring import add_approver, approver_keys, approvers, remove_approver
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._notary import FileCheckpointSink, Notary, sign_runs_log
from codon_sdk.stores._open import (
    DEFAULT_LEDGER_URL,
    default_ledger_url,
    is_shared,
    open_store,
    reopen,
    shared_store,
)
from codon_sdk.stores._paged import PagedEntries
from codon_sdk.stores._registry import (
    ENTRY_POINT_GROUP,
    StoreFactory,
    register_store,
    unregister_store,
)
from codon_sdk.stores._roles import apply_statements, grant_sql
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.stores._url import mask_url
from codon_sdk.stores._verify import StoreVerification, verify_all, verify_run

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._postgres import PostgresStore, connect_admin, migrate_as_admin

__all__ = [
    "Compact",
    "EraseEvents",
    "Erasure",
    "FindSubject",
    "Hold",
    "ListHolds",
    "ListRetention",
    "ReadErasures",
    "SetHold",
    "SetRetention",
    "TagSubject",
    "apply_retention",
    "check_subject",
    "erase_run",
    "erase_subject",
    "erasure_log",
    "expired_runs",
    "hold_run",
    "legal_holds",
    "release_run",
    "retention_policies",
    "set_retention",
    "tag_subject",
    "AddApprover",
    "ApproverKey",
    "ListApprovers",
    "RemoveApprover",
    "add_approver",
    "approver_keys",
    "approvers",
    "remove_approver",
    "BLOB_NEEDLE",
    "GetBlob",
    "PutBlob",
    "BlobStore",
    "DirectoryBlobStore",
    "TableBlobStore",
    "blob_findings",
    "blob_ref",
    "blob_refs",
    "blob_store_for",
    "inline_blobs",
    "is_blob_ref",
    "DEFAULT_LEDGER_URL",
    "ENTRY_POINT_GROUP",
    "RUN_STATUSES",
    "AppendEntries",
    "BeginRun",
    "BudgetTotals",
    "CacheEntry",
    "ChargeBudget",
    "ClaimRun",
    "Entry",
    "EntryBatch",
    "FileCheckpointSink",
    "GetRun",
    "LedgerStore",
    "ListRuns",
    "LookupCache",
    "MemoryStore",
    "Notary",
    "Op",
    "PagedEntries",
    "PostgresStore",
    "PutCache",
    "PutCheckpoint",
    "ReadBudget",
    "ReadCheckpoints",
    "ReadEntries",
    "ReadRunsLog",
    "RenewLease",
    "RunInfo",
    "SQLiteStore",
    "StoreFactory",
    "StoreVerification",
    "TakeRateSlot",
    "apply_statements",
    "check_claim",
    "check_finish_size",
    "check_owner",
    "check_seqs",
    "claimed",
    "connect_admin",
    "default_ledger_url",
    "entry_bytes",
    "grant_sql",
    "hold",
    "is_shared",
    "lease_is_stale",
    "lease_seconds",
    "mask_url",
    "migrate_as_admin",
    "new_owner",
    "open_store",
    "reopen",
    "register_store",
    "release",
    "shared_store",
    "sign_runs_log",
    "start_leaf",
    "unregister_store",
    "verify_all",
    "verify_run",
]

_NEEDS_POSTGRES = {"PostgresStore", "connect_admin", "migrate_as_admin"}


def __getattr__(name: str) -> Any:
    """The PostgreSQL parts are imported on first use: they need the ``postgres`` extra."""
    if name not in _NEEDS_POSTGRES:
        raise AttributeError(f"module 'codon_sdk.stores' has no attribute {name!r}")
    return getattr(importlib.import_module("codon_sdk.stores._postgres"), name)
