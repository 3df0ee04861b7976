"""A ledger store written the way another distribution would write one: outside the package,
on the public names of ``codon_sdk.stores`` only, plugged in by URL scheme.

``JsonFileStore`` keeps every ledger of the store in one JSON file (entries and hashes as
hex), rewritten whole, atomically (a temporary file, then ``os.replace``), after each
write: a small backend, but a real one, that survives the process and shares nothing
with the built-in backends' code. Each write works on a copy of the state and only
becomes the state once the file holds it, so a refused or failed write changes nothing.
One process at a time (a lock serves its threads).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from codon_sdk.errors import InvalidStoreURLError, RunConflictError, RunNotFoundError, StoreError
from codon_sdk.stores import (
    AddApprover,
    AppendEntries,
    ApproverKey,
    BeginRun,
    CacheEntry,
    ClaimRun,
    Entry,
    GetRun,
    LedgerStore,
    ListApprovers,
    ListRuns,
    LookupCache,
    Op,
    PutCache,
    PutCheckpoint,
    ReadCheckpoints,
    ReadEntries,
    ReadRunsLog,
    RemoveApprover,
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

SCHEME = "jsonfile"

State = dict[str, Any]


def _empty() -> State:
    return {"runs": {}, "events": {}, "checkpoints": {}, "log": [], "cache": {}}


class JsonFileStore(LedgerStore):
    """Every ledger in one JSON file at ``path`` (created on first write)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.url = f"{SCHEME}://{self.path}"
        self._lock = threading.Lock()
        self._closed = False
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._state = _empty()
        else:
            self._state = json.loads(text)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def _save(self, state: State) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.path)
        self._state = state

    def _run(self, state: State, run_id: str) -> RunInfo:
        row = state["runs"].get(run_id)
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in {self.url}")
        return RunInfo(**row)

    def execute(self, op: Op) -> Any:
        with self._lock:
            if self._closed:
                raise StoreError(f"the ledger store {self.url} is closed; open a new one")
            if isinstance(
                op,
                (
                    ReadEntries,
                    GetRun,
                    ListRuns,
                    ReadCheckpoints,
                    ReadRunsLog,
                    LookupCache,
                    ListApprovers,
                ),
            ):
                return self._query(self._state, op)
            state = copy.deepcopy(self._state)
            result = self._write(state, op)
            self._save(state)
            return result

    # ------------------------------------------------------------------ reads

    def _query(self, state: State, op: Op) -> Any:
        if isinstance(op, ReadEntries):
            self._run(state, op.run_id)
            return [bytes.fromhex(e) for e in state["events"][op.run_id][op.start : op.end]]
        if isinstance(op, GetRun):
            return self._run(state, op.run_id)
        if isinstance(op, ListRuns):
            return op.select(RunInfo(**row) for row in state["runs"].values())
        if isinstance(op, ReadCheckpoints):
            held = state["checkpoints"].get(op.run_id, {})
            return sorted((int(size), bytes.fromhex(note)) for size, note in held.items())
        if isinstance(op, ReadRunsLog):
            return [
                (i, run_id, size, bytes.fromhex(root)) for i, run_id, size, root in state["log"]
            ]
        if isinstance(op, LookupCache):
            held = state.get("cache", {}).get(op.key)
            return None if held is None else CacheEntry(**held)
        if isinstance(op, ListApprovers):
            rows = [ApproverKey(**row) for row in state.get("approvers", [])]
            return sorted(
                (r for r in rows if op.workload_name in (None, r.workload_name)),
                key=lambda r: (r.workload_name, r.vkey),
            )
        raise TypeError(f"{type(op).__name__} is not a read")  # pragma: no cover

    # ------------------------------------------------------------------ writes

    def _write(self, state: State, op: Op) -> Any:
        if isinstance(op, BeginRun):
            return self._begin(state, op)
        if isinstance(op, AppendEntries):
            return self._append(state, op)
        if isinstance(op, ClaimRun):
            info = self._run(state, op.run_id)
            check_claim(info, op)
            granted = claimed(info, op)
            state["runs"][op.run_id] = asdict(granted)
            return granted
        if isinstance(op, PutCheckpoint):
            return _put_checkpoint(state, op.run_id, op.size, op.note)
        if isinstance(op, RenewLease):
            info = self._run(state, op.run_id)
            check_owner(op.run_id, info.owner, op.owner)
            state["runs"][op.run_id] = asdict(replace(info, heartbeat_us=op.now_us))
            return None
        if isinstance(op, PutCache):
            cache = state.setdefault("cache", {})
            if op.replace or op.entry.key not in cache:
                cache[op.entry.key] = asdict(op.entry)
            return cache[op.entry.key] == asdict(op.entry)
        if isinstance(op, (AddApprover, RemoveApprover)):
            return _keyring(state, op)
        raise TypeError(f"{type(op).__name__} is not an operation of this store")

    def _begin(self, state: State, op: BeginRun) -> None:
        run_id = op.info.run_id
        if run_id in state["runs"]:
            raise RunConflictError(f"run {run_id!r} already exists in {self.url}")
        check_seqs(run_id, 0, op.entries)
        state["events"][run_id] = [e.hex() for e in entry_bytes(op.entries)]
        head = op.entries[-1][2].hex() if op.entries else None
        state["runs"][run_id] = asdict(replace(op.info, event_count=len(op.entries), head=head))
        _log_start(state, run_id, op.entries)

    def _append(self, state: State, op: AppendEntries) -> None:
        info = self._run(state, op.run_id)
        check_owner(op.run_id, info.owner, op.owner)
        events = state["events"][op.run_id]
        check_seqs(op.run_id, len(events), op.entries)
        events.extend(e.hex() for e in entry_bytes(op.entries))
        for size, note in op.checkpoints:
            _put_checkpoint(state, op.run_id, size, note)
        _log_start(state, op.run_id, op.entries)
        if op.log_root is not None:
            check_finish_size(op.run_id, len(events))
            if any(r == op.run_id and n > 1 for _, r, n, _ in state["log"]):
                raise RunConflictError(f"run {op.run_id!r} already has a finish line")
            state["log"].append([len(state["log"]), op.run_id, len(events), op.log_root.hex()])
        last = op.entries[-1] if op.entries else None
        state["runs"][op.run_id] = asdict(
            replace(
                info,
                event_count=len(events),
                head=last[2].hex() if last else info.head,
                status=op.status or info.status,
                finished_us=info.finished_us if op.finished_us is None else op.finished_us,
                owner=None if op.release else info.owner,
                heartbeat_us=time.time_ns() // 1000,
            )
        )


def _put_checkpoint(state: State, run_id: str, size: int, note: bytes) -> None:
    held = state["checkpoints"].setdefault(run_id, {})
    if held.get(str(size), note.hex()) != note.hex():
        raise RunConflictError(f"run {run_id!r} already has a different checkpoint for {size}")
    held[str(size)] = note.hex()


def _log_start(state: State, run_id: str, entries: Sequence[Entry]) -> None:
    leaf = start_leaf(entries)
    if leaf is not None:
        state["log"].append([len(state["log"]), run_id, 1, leaf.hex()])


def open_json_store(url: str, **options: Any) -> JsonFileStore:
    """The factory registered for ``jsonfile:///path/to/ledger.json``."""
    path = url.partition("://")[2]
    if not path.startswith("/") or len(path) < 2:
        raise InvalidStoreURLError(
            f"{url!r} names no file; use {SCHEME}:///relative.json or {SCHEME}:////abs/path.json"
        )
    if options:
        raise InvalidStoreURLError(f"{SCHEME} stores take no options, got {sorted(options)}")
    return JsonFileStore(path[1:])


NOT_A_FACTORY = "a string where a store factory should be"


def open_not_a_store(url: str, **options: Any) -> object:
    """A broken plug-in's factory: what it returns is no ledger store."""
    return {"url": url}


def _keyring(state: State, op: AddApprover | RemoveApprover) -> bool:
    rows: list[dict[str, Any]] = state.setdefault("approvers", [])
    if isinstance(op, AddApprover):
        key = asdict(op.key)
        if any(
            (r["workload_name"], r["vkey"]) == (key["workload_name"], key["vkey"]) for r in rows
        ):
            return False
        rows.append(key)
        return True
    kept = [r for r in rows if (r["workload_name"], r["vkey"]) != (op.workload_name, op.vkey)]
    state["approvers"] = kept
    return len(kept) < len(rows)
