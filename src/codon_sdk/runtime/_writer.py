"""RunWriter: how a run's entries reach its ledger store, under each durability mode.

=============  ===================================================================
durability     what a crash (SIGKILL, power loss aside) can lose
=============  ===================================================================
``"sync"``     nothing that was recorded: every event is committed before the call
               that recorded it returns (slowest: one transaction per event).
``"batch"``    (default) only the steps completed in the last moments before the
               crash: at each step boundary the step's events are handed to a
               writer thread that commits everything handed over so far in one
               transaction (group commit), while the engine goes on. A commit
               always holds whole steps, never part of an activation. Recorded
               effects, pauses (interrupts), failures and the end of the run are
               barriers: they wait until everything before them is committed. At
               most ``max_pending`` events (default 4096) are ever uncommitted; a
               crash loses those, and ``resume`` runs their activations again.
``"exit"``     the whole run: it is written once, when it ends, fails or pauses
               (cheapest; for short runs that are simply re-run after a crash).
=============  ===================================================================

A store failure is never swallowed: the next call into the writer raises it, the
run fails loudly, and whatever was committed before stays intact.

The writer also keeps the run's Merkle tree (an O(log n) accumulator fed with the
leaf hashes the recorder computed): when the store has a notary it signs a
checkpoint every ``every`` events and when the run ends or pauses, committed in
the same transaction as the events it covers, then shipped to the notary's
sinks; when the run ends, its size and root go into the log of runs.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from codon_sdk.errors import StoreError
from codon_sdk.ledger._checkpoint import run_leaf
from codon_sdk.ledger._merkle import MerkleAccumulator, leaf_hash
from codon_sdk.ledger._merkle import root as merkle_root
from codon_sdk.stores._base import Entry, LedgerStore, RunInfo, hold, release
from codon_sdk.stores._notary import Notary

_log = logging.getLogger("codon_sdk")
_ENDS = frozenset({"completed", "stopped", "failed"})

__all__ = ["DEFAULT_MAX_PENDING", "RunWriter"]

DEFAULT_MAX_PENDING = 4096
_GROUP_EVENTS = 512  # a group commits once it holds this many events...
_GROUP_WAIT_S = 0.002  # ...or once its first step has waited this long


class RunWriter:
    """The recorder's sink for a durable run (see the module docstring)."""

    def __init__(
        self,
        store: LedgerStore,
        info: RunInfo,
        *,
        durability: str = "batch",
        begun: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        leaves: Sequence[bytes] = (),
    ) -> None:
        self.store = store
        self.run_id = info.run_id
        self.owner = info.owner or ""
        self.durability = durability
        self._info = info
        self._begun = begun
        self._max_pending = max_pending
        self._held: list[Entry] = []  # "exit" mode keeps everything until the end
        self._queue: deque[tuple[list[Entry], dict[str, Any]]] = deque()
        self._queued_events = 0
        self._busy = False
        self._urgent = 0
        self._error: BaseException | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._tree = MerkleAccumulator(leaves)
        self._notary: Notary | None = store.notary
        hold(self.owner)
        if durability == "batch":
            self._thread = threading.Thread(
                target=self._loop, name=f"codon-writer-{self.run_id[:12]}", daemon=True
            )
            self._thread.start()

    # ------------------------------------------------------------------ the sink API

    def write(self, entries: list[Entry], **index: Any) -> None:
        """Take entries (whole steps) and optional index updates (status, finished_us, release)."""
        if self.durability == "batch":
            self._enqueue(entries, index)
        elif self.durability == "exit":
            self._held.extend(entries)
            if index.get("release"):
                self._write_now(self._held, index)
                self._held = []
        else:
            self._write_now(entries, index)

    def flush(self) -> None:
        """Return once everything handed over is committed (a barrier); raise a store failure."""
        if self.durability == "exit":
            return
        with self._cond:
            self._urgent += 1  # no group forming while someone waits for durability
            self._cond.notify_all()
            try:
                while (self._queue or self._busy) and self._error is None:
                    self._cond.wait()
            finally:
                self._urgent -= 1
            self._raise_error()

    def close(self) -> None:
        """Stop the writer thread after committing what it holds; give up the lease."""
        release(self.owner)
        if self._thread is not None and not self._closed:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join()

    # ------------------------------------------------------------------ internals

    def _raise_error(self) -> None:
        if self._error is not None:
            raise StoreError(
                f"writing run {self.run_id} to {self.store.url} failed: {self._error}"
            ) from self._error

    def _enqueue(self, entries: list[Entry], index: dict[str, Any]) -> None:
        with self._cond:
            self._raise_error()
            while self._queued_events >= self._max_pending and self._error is None:
                self._cond.wait()
            self._raise_error()
            was_empty = not self._queue
            self._queue.append((entries, index))
            self._queued_events += len(entries)
            if was_empty or self._queued_events >= _GROUP_EVENTS:
                self._cond.notify_all()  # otherwise the writer is busy or already forming a group

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                if not self._closed and not self._urgent and self._queued_events < _GROUP_EVENTS:
                    # group commit: let the next steps join this transaction (bounded wait)
                    self._cond.wait(_GROUP_WAIT_S)
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            entries: list[Entry] = []
            index: dict[str, Any] = {}
            for part, part_index in batch:
                entries.extend(part)
                index.update({k: v for k, v in part_index.items() if v is not None})
            try:
                self._write_now(entries, index)
            except BaseException as exc:  # surfaced to the engine on its next call
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._busy = False
                self._queued_events -= len(entries)
                self._cond.notify_all()

    def _write_now(self, entries: list[Entry], index: dict[str, Any]) -> None:
        status = index.get("status")
        checkpoints, log_root = self._audit(entries, status)
        if not self._begun:
            # the run's first write (an "exit" run's only one): create it, still held
            self.store.begin_run(self._info, entries)
            self._begun = True
            entries = []
        if entries or index or checkpoints or log_root is not None:
            self.store.append(
                self.run_id,
                self.owner,
                entries,
                status=status,
                finished_us=index.get("finished_us"),
                release=bool(index.get("release")),
                checkpoints=checkpoints,
                log_root=log_root,
            )
        self._after_commit(checkpoints, log_root)

    def _audit(
        self, entries: list[Entry], status: str | None
    ) -> tuple[list[tuple[int, bytes]], bytes | None]:
        """Feed the run's Merkle tree; the checkpoints and log root this commit carries."""
        tree, notary = self._tree, self._notary
        due: list[tuple[int, bytes]] = []
        every = notary.every if notary is not None else 0
        for _seq, _entry, leaf in entries:
            tree.append(leaf)
            if every and tree.size % every == 0:
                due.append((tree.size, tree.root()))
        pausing = status in _ENDS or status == "interrupted"
        if pausing and notary is not None and tree.size and (not due or due[-1][0] != tree.size):
            due.append((tree.size, tree.root()))
        checkpoints = notary.checkpoints(self.run_id, due) if notary is not None else []
        return checkpoints, (tree.root() if status in _ENDS else None)

    def _after_commit(self, checkpoints: list[tuple[int, bytes]], log_root: bytes | None) -> None:
        """Ship committed checkpoints; sign the log of runs after a run ended (best effort)."""
        notary = self._notary
        if notary is None:
            return
        origin = notary.origin(self.run_id)
        for size, note in checkpoints:
            notary.ship(self.run_id, origin, size, note)
        if log_root is None:
            return
        try:
            logged = self.store.runs_log()
            leaves = [leaf_hash(run_leaf(run_id, size, root)) for _, run_id, size, root in logged]
            note = notary.sign(notary.runs_origin, len(leaves), merkle_root(leaves))
            self.store.put_checkpoint("", len(leaves), note)
            notary.ship("", notary.runs_origin, len(leaves), note)
        except Exception as exc:  # the run itself is safely recorded; the next run signs again
            _log.warning("could not sign the log of runs after run %s: %s", self.run_id, exc)
