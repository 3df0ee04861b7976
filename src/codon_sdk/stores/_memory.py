"""MemoryStore: the reference backend, in process memory (lost when the process exits)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from typing_extensions import assert_never

from codon_sdk._clock import now_us
from codon_sdk.errors import RunConflictError, RunNotFoundError
from codon_sdk.stores._approvers import (
    AddApprover,
    ApproverKey,
    ListApprovers,
    RemoveApprover,
    memory_approvers,
)
from codon_sdk.stores._base import (
    AppendEntries,
    BeginRun,
    CacheEntry,
    ClaimRun,
    Entry,
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
    start_leaf,
)
from codon_sdk.stores._blob_ops import GetBlob, PutBlob, memory_blobs
from codon_sdk.stores._budgets import (
    BudgetTotals,
    ChargeBudget,
    ReadBudget,
    TakeRateSlot,
    charge_memory,
    take_rate_memory,
)
from codon_sdk.stores._erase_ops import ERASE_OPS, MemoryErasure, memory_erase

__all__ = ["MemoryStore"]


class MemoryStore(LedgerStore):
    """A ledger store in a dict; thread-safe. ``open_store("memory://")`` makes one."""

    begins_then = True

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.Lock()
        self._runs: dict[str, RunInfo] = {}
        self._events: dict[str, list[bytes]] = {}
        self._checkpoints: dict[str, dict[int, bytes]] = {}
        self._log: list[tuple[int, str, int, bytes]] = []
        self._cache: dict[str, CacheEntry] = {}
        self._approvers: dict[tuple[str, str], ApproverKey] = {}
        self._budgets: dict[tuple[str, str], BudgetTotals] = {}
        self._blobs: dict[str, bytes] = {}
        self._rates: dict[str, list[tuple[int, int]]] = {}
        self._erasure = MemoryErasure(set(), [], {}, {})

    def execute(self, op: Op) -> Any:
        with self._lock:
            if isinstance(op, BeginRun):
                return self._begin(op)
            if isinstance(op, AppendEntries):
                return self._append(op)
            if isinstance(op, ReadEntries):
                events = self._events_of(op.run_id)
                return list(events[op.start : op.end])
            if isinstance(op, GetRun):
                return self._info(op.run_id)
            if isinstance(op, ListRuns):
                return self._list(op)
            if isinstance(op, ClaimRun):
                return self._claim(op)
            if isinstance(op, ReadCheckpoints):
                return sorted(self._checkpoints.get(op.run_id, {}).items())
            if isinstance(op, PutCheckpoint):
                return self._put_checkpoint(op.run_id, op.size, op.note)
            if isinstance(op, ReadRunsLog):
                return list(self._log)
            if isinstance(op, RenewLease):
                return self._renew(op)
            if isinstance(op, LookupCache):
                return self._cache.get(op.key)
            if isinstance(op, PutCache):
                if op.replace or op.entry.key not in self._cache:
                    self._cache[op.entry.key] = op.entry
                return self._cache[op.entry.key] == op.entry
            if isinstance(op, (AddApprover, RemoveApprover, ListApprovers)):
                return memory_approvers(self._approvers, op)
            if isinstance(op, ChargeBudget):
                return charge_memory(self._budgets, op)
            if isinstance(op, ReadBudget):
                return self._budgets.get((op.deployment_id, op.budget), BudgetTotals())
            if isinstance(op, TakeRateSlot):
                return take_rate_memory(self._rates, op)
            if isinstance(op, (PutBlob, GetBlob)):
                return memory_blobs(self._blobs, op)
            if isinstance(op, ERASE_OPS):
                return memory_erase(self, self._erasure, op)
            assert_never(op)

    def _put_checkpoint(self, run_id: str, size: int, note: bytes) -> None:
        held = self._checkpoints.setdefault(run_id, {})
        if held.get(size, note) != note:
            raise RunConflictError(
                f"run {run_id!r} already has a different checkpoint for size {size}"
            )
        held[size] = note

    def _info(self, run_id: str) -> RunInfo:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFoundError(f"no run {run_id!r} in {self.url}") from None

    def _events_of(self, run_id: str) -> list[bytes]:
        self._info(run_id)
        return self._events[run_id]

    def _begin(self, op: BeginRun) -> None:
        run_id = op.info.run_id
        if run_id in self._runs:
            raise RunConflictError(f"run {run_id!r} already exists in {self.url}")
        check_seqs(run_id, 0, op.entries)
        self._events[run_id] = entry_bytes(op.entries)
        self._runs[run_id] = replace(
            op.info,
            event_count=len(op.entries),
            head=op.entries[-1][2].hex() if op.entries else None,
        )
        log, checkpoints = len(self._log), dict(self._checkpoints.get(run_id, {}))
        self._log_start(run_id, op.entries)
        if op.then is not None:
            try:
                self._append(op.then)
            except BaseException:  # refused: nothing of the begin either
                del self._runs[run_id], self._events[run_id], self._log[log:]
                self._checkpoints[run_id] = checkpoints
                raise

    def _log_start(self, run_id: str, entries: Sequence[Entry]) -> None:
        leaf = start_leaf(entries)
        if leaf is not None:
            self._log.append((len(self._log), run_id, 1, leaf))

    def _append(self, op: AppendEntries) -> None:
        info = self._info(op.run_id)
        check_owner(op.run_id, info.owner, op.owner)
        events = self._events[op.run_id]
        check_seqs(op.run_id, len(events), op.entries)
        held = self._checkpoints.get(op.run_id, {})
        for size, note in op.checkpoints:
            if held.get(size, note) != note:
                raise RunConflictError(
                    f"run {op.run_id!r} already has a different checkpoint for size {size}"
                )
        if op.log_root is not None:
            check_finish_size(op.run_id, len(events) + len(op.entries))
            if any(r == op.run_id and n > 1 for _, r, n, _ in self._log):
                raise RunConflictError(
                    f"run {op.run_id!r} already has a finish line in the log of runs"
                )
        events += entry_bytes(op.entries)
        for size, note in op.checkpoints:
            self._put_checkpoint(op.run_id, size, note)
        self._log_start(op.run_id, op.entries)
        if op.log_root is not None:
            self._log.append((len(self._log), op.run_id, len(events), op.log_root))
        last = op.entries[-1] if op.entries else None
        self._runs[op.run_id] = replace(
            info,
            event_count=len(events),
            head=last[2].hex() if last else info.head,
            status=op.status or info.status,
            finished_us=op.finished_us if op.finished_us is not None else info.finished_us,
            owner=None if op.release else info.owner,
            heartbeat_us=now_us(),
        )

    def _list(self, op: ListRuns) -> list[RunInfo]:
        return op.select(self._runs.values())

    def _claim(self, op: ClaimRun) -> RunInfo:
        info = self._info(op.run_id)
        check_claim(info, op)
        granted = claimed(info, op)
        self._runs[op.run_id] = granted
        return granted

    def _renew(self, op: RenewLease) -> None:
        info = self._info(op.run_id)
        check_owner(op.run_id, info.owner, op.owner)
        self._runs[op.run_id] = replace(info, heartbeat_us=op.now_us)
