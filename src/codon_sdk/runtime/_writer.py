"""RunWriter: how a run's entries reach its ledger store, under each durability mode.

=============  ===================================================================
durability     what a crash (SIGKILL, power loss aside) can lose
=============  ===================================================================
``"sync"``     nothing that was recorded: every event is committed before the call
               that recorded it returns (slowest: one transaction per event).
``"batch"``    (default) only the steps completed in the last moments before the
               crash: at each step boundary the step's events are handed to a
               writer thread that, every 2 ms or as soon as it is done with the
               last group, commits everything handed over so far in one
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
from typing import Any, TypeAlias

from codon_sdk.errors import StoreError
from codon_sdk.ledger._checkpoint import run_leaf
from codon_sdk.ledger._merkle import MerkleAccumulator, leaf_hash
from codon_sdk.ledger._merkle import root as merkle_root
from codon_sdk.stores._base import Entry, EntryBatch, LedgerStore, RunInfo, hold, release
from codon_sdk.stores._notary import Notary

_log = logging.getLogger("codon_sdk")
_ENDS = frozenset({"completed", "stopped", "failed"})

__all__ = ["DEFAULT_MAX_PENDING", "RunWriter"]

DEFAULT_MAX_PENDING = 4096
_GROUP_WAIT_S = 0.002  # how often an idle writer thread looks for handed-over steps
_Part: TypeAlias = tuple[int, list[bytes], list[bytes], dict[str, Any]]


class RunWriter:
    """The recorder's sink for a durable run (see the module docstring).

    In ``batch`` mode the engine's side of the hand-over is lock-free: each step's
    lists go onto a deque (an atomic append) and two single-writer counters track
    what was handed over and what is committed. The writer thread polls the deque
    every ``_GROUP_WAIT_S`` and commits everything there in one transaction (a
    group); only barriers, back-pressure and closing take the condition.
    """

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
        self._held: list[_Part] = []  # "exit" mode keeps everything until the end
        self._queue: deque[_Part] = deque()
        self._handed = 0  # events handed over (written by the engine only)
        self._written = 0  # events committed (written by the writer thread only)
        self._error: BaseException | None = None
        self._closed = False
        self._cond = threading.Condition(threading.Lock())
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

    def write(
        self, first_seq: int, entries: list[bytes], leaves: list[bytes], index: dict[str, Any]
    ) -> None:
        """Take entries (whole steps; see ``EntrySink.write``) and runs-index updates."""
        part = (first_seq, entries, leaves, index)
        if self.durability == "batch":
            if self._error is not None:
                self._raise_error()
            self._queue.append(part)
            self._handed += len(entries)
            if index or self._handed - self._written >= self._max_pending:
                self._wait_below(self._max_pending)
        elif self.durability == "exit":
            self._held.append(part)
            if index.get("release"):
                held, self._held = self._held, []
                self._write_now(held)
        else:
            self._write_now([part])

    def flush(self) -> None:
        """Return once everything handed over is committed (a barrier); raise a store failure."""
        if self.durability == "batch":
            self._wait_below(1)

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

    def _wait_below(self, limit: int) -> None:
        """Wake the writer and wait until fewer than ``limit`` events are uncommitted."""
        with self._cond:
            self._cond.notify_all()  # the writer commits at once instead of at its next poll
            while self._handed - self._written >= limit and self._error is None:
                self._cond.wait()
        self._raise_error()

    def _loop(self) -> None:
        queue, cond = self._queue, self._cond
        while True:
            if not queue:
                with cond:
                    if not queue:  # checked under the lock barriers notify with
                        if self._closed:
                            return
                        cond.wait(_GROUP_WAIT_S)  # poll: the engine does not notify per step
                continue
            group: list[_Part] = []
            while queue:  # whole steps, each an atomic popleft
                group.append(queue.popleft())
            try:
                self._write_now(group)
            except BaseException as exc:  # surfaced to the engine on its next call
                with cond:
                    self._error = exc
                    cond.notify_all()
                return
            with cond:
                self._written += sum(len(part[1]) for part in group)
                cond.notify_all()

    def _write_now(self, parts: list[_Part]) -> None:
        """Commit ``parts`` (consecutive) in one transaction with their merged index updates."""
        first = parts[0][0]
        if len(parts) == 1:
            _, fulls, leaves, index = parts[0]
        else:
            fulls, leaves, index = [], [], {}
            for _, part_fulls, part_leaves, part_index in parts:
                fulls += part_fulls
                leaves += part_leaves
                if part_index:
                    index.update({k: v for k, v in part_index.items() if v is not None})
        status = index.get("status")
        checkpoints, log_root = self._audit(leaves, status)
        entries: Sequence[Entry] = EntryBatch(first, fulls, leaves)
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
        self, leaves: list[bytes], status: str | None
    ) -> tuple[list[tuple[int, bytes]], bytes | None]:
        """Feed the run's Merkle tree; the checkpoints and log root this commit carries."""
        tree, notary = self._tree, self._notary
        due: list[tuple[int, bytes]] = []
        every = notary.every if notary is not None else 0
        if not every:
            tree.extend(leaves)
        for leaf in leaves if every else ():
            tree.append(leaf)
            if tree.size % every == 0:
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
