"""RunWriter: how a run's entries reach its ledger store, under each durability mode.

=============  ===================================================================
durability     what a crash (SIGKILL, power loss aside) can lose
=============  ===================================================================
``"sync"``     no completed activation: at each step boundary everything the
               activation produced is committed in one transaction before the
               next activation starts (the killed activation runs again on
               resume); effects, pauses and the end are barriers as in batch.
``"batch"``    (default) only the steps completed in the last moments before the
               crash: at each step boundary the step's events are handed to a
               writer thread that, every 2 ms or as soon as it is done with the
               last group, commits everything handed over so far in one
               transaction (group commit), while the engine goes on; after 50 ms
               without a step it sleeps until the next one wakes it. A commit
               holds whole steps (with ``max_concurrency`` > 1, possibly the start
               of an activation still running). Recorded
               effects, pauses (interrupts), failures and the end of the run are
               barriers: they wait until everything before them is committed. At
               most ``max_pending`` events (default 4096) are ever uncommitted; a
               crash loses those, and ``resume`` runs their activations again.
``"exit"``     the whole run: it is written once, when it ends, fails or pauses, in
               one transaction with its end where the store can (``begins_then``)
               (cheapest; for short runs that are simply re-run after a crash).
=============  ===================================================================

A store failure is never swallowed: the next call into the writer raises it, the
run fails loudly, and whatever was committed before stays intact.

While the run is held in its store, the writer keeps its lease through the
process's heartbeat (``runtime/_lease.py``). When the lease turns out lost
(another owner took the run over), the writer takes nothing more to the store:
the next write, barrier or effect raises ``LeaseLostError``. Before a recorded
effect calls out for real, :meth:`RunWriter.confirm_lease` asks the store
(one round trip) whether this process still holds the run.

The writer also keeps the run's Merkle tree (an O(log n) accumulator fed with the
leaf hashes the recorder computed): when the store has a notary it signs a
checkpoint every ``every`` events and when the run ends or pauses, committed in
the same transaction as the events it covers, then shipped to the notary's
sinks; when the run ends, its size and root go into the log of runs (its start line
goes in with its first entries, see ``stores/_base.py``), and after either commit
the log of runs gets a signed checkpoint too (``stores/_notary.sign_runs_log``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TypeAlias

from codon_sdk.errors import LeaseLostError, StoreConnectionError, StoreError
from codon_sdk.ledger import TERMINAL_STATUSES, MerkleAccumulator
from codon_sdk.runtime._lease import HEARTBEAT
from codon_sdk.sinks import AuditFeed
from codon_sdk.stores import (
    AppendEntries,
    BeginRun,
    Entry,
    EntryBatch,
    LedgerStore,
    Notary,
    RunInfo,
    hold,
    lease_seconds,
    release,
    sign_runs_log,
)

__all__ = ["DEFAULT_MAX_PENDING", "RunWriter"]

DEFAULT_MAX_PENDING = 4096
_GROUP_WAIT_S = 0.002  # how often a writer thread looks for handed-over steps...
_IDLE_AFTER_POLLS = 25  # ...until it found none for this many looks (50 ms): then it
_IDLE_WAIT_S = 1.0  # sleeps until the engine hands a step over (this is a safety net)
_Part: TypeAlias = tuple[int, list[bytes], list[bytes]]  # first seq, entries, leaf hashes


class RunWriter:
    """The recorder's sink for a durable run (see the module docstring).

    The recorder appends every sealed entry and its leaf hash to :attr:`entries`
    and :attr:`leaves` (the outbox) and, at each step boundary, calls :meth:`step`
    with the seq up to which the outbox holds whole steps. In ``batch`` mode that
    is all the engine does per step (an integer store): the writer thread polls
    every ``_GROUP_WAIT_S``, takes everything below that seq off the front of the
    outbox and commits it in one transaction. Only barriers, back-pressure and
    closing take the condition. Each list operation is atomic under the GIL, and
    the engine only appends while the writer only removes from the front.
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
        audit: AuditFeed | None = None,
    ) -> None:
        self.store = store
        self._feed = audit  # the audit sink's door: told of each commit once it returned
        self.run_id = info.run_id
        self.owner = info.owner or ""
        self.durability = durability
        self._info = info
        self._begun = begun
        self._max_pending = max_pending
        #: The outbox: entries (each behind its 0x00 leaf prefix) and leaf hashes, appended
        #: by the recorder; ``_base`` is the seq of the first one still in it.
        self.entries: list[bytes] = []
        self.leaves: list[bytes] = []
        self._base = info.event_count
        self._ready = info.event_count  # below this seq the outbox holds whole steps
        self._committed = info.event_count  # below this seq everything is committed
        self._index: dict[str, Any] | None = None  # runs-index updates of a waiting barrier
        self._error: BaseException | None = None
        self._closed = False
        self._idle = False  # the writer thread sleeps until notified (see _loop)
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._tree = MerkleAccumulator(leaves)
        self._notary: Notary | None = store.notary
        self._lease: int | None = None  # the heartbeat's token while the lease is kept
        self._released = False  # the run was released (ended or paused): no lease to keep
        hold(self.owner)
        if begun:  # a resumed run: claimed already
            self._keep_lease()
        if durability == "batch":
            self._thread = threading.Thread(
                target=self._loop, name=f"codon-writer-{self.run_id[:12]}", daemon=True
            )
            self._thread.start()

    # ------------------------------------------------------------------ the sink API

    def step(self, seq: int) -> None:
        """The outbox holds whole steps below ``seq``: commit them now (``sync``), soon
        (``batch``: the writer thread's next poll) or when the run ends (``exit``)."""
        if self.durability == "batch":
            if seq > self._ready:  # a barrier may have moved the mark on already
                self._ready = seq
            if self._idle:
                with self._cond:
                    self._cond.notify_all()
            if self._error is not None or seq - self._committed >= self._max_pending:
                self._wait_until(seq - self._max_pending + 1, None)
        elif self.durability == "sync":
            self._write_now(self._take(seq), {})

    def barrier(self, seq: int, index: dict[str, Any]) -> None:
        """Commit everything below ``seq`` with ``index`` (``status``, ``finished_us``,
        ``release``) and return once it is durable; raise a store failure. In ``exit``
        durability only the barrier that releases the run writes (everything)."""
        if self.durability == "batch":
            self._wait_until(seq, index)
        elif self.durability == "sync" or index.get("release"):
            self._write_now(self._take(seq), index)

    def confirm_lease(self) -> None:
        """Confirm with the store that this process still holds the run (one round trip),
        before a recorded effect calls out for real: an owner that was suspended past its
        lease and woke up never runs the effect. Raises ``LeaseLostError`` (and the writer
        writes nothing more), or the failure that already stopped the writer."""
        self._raise_error()
        if not self._begun or self._released:
            return  # not in the store yet ("exit" durability): nobody else can hold it
        try:
            self.store.renew_lease(self.run_id, self.owner)
        except LeaseLostError as exc:
            self._lost(exc)
            raise

    def close(self) -> None:
        """Stop the writer thread after committing what it holds; give up the lease."""
        self._drop_lease()
        release(self.owner)
        if self._thread is not None and not self._closed:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join()
        if self._feed is not None:
            self._feed.close()

    # ------------------------------------------------------------------ internals

    def _keep_lease(self) -> None:
        if self._lease is None and not self._released:
            period = lease_seconds(self._info)
            self._lease = HEARTBEAT.add(self.store, self.run_id, self.owner, period, self._lost)

    def _drop_lease(self) -> None:
        token, self._lease = self._lease, None
        if token is not None:
            HEARTBEAT.remove(token)

    def _lost(self, exc: LeaseLostError) -> None:
        """(heartbeat thread, or an effect's check) Another owner holds the run now: fail the
        run's next write, and write nothing more."""
        with self._cond:
            if self._released or self._error is not None:
                return
            self._error = exc
            self._cond.notify_all()

    def _raise_error(self) -> None:
        if isinstance(self._error, LeaseLostError):
            raise LeaseLostError(str(self._error)) from self._error
        if self._error is not None:
            # keep the kind: a connection that did not come back is a StoreConnectionError
            kind = (
                StoreConnectionError
                if isinstance(self._error, StoreConnectionError)
                else StoreError
            )
            raise kind(
                f"writing run {self.run_id} to {self.store.url} failed: {self._error}"
            ) from self._error

    def _wait_until(self, seq: int, index: dict[str, Any] | None) -> None:
        """(batch) Wake the writer and wait until everything below ``seq`` is committed,
        with ``index`` when given (a barrier: ``seq`` is then the new ready mark)."""
        with self._cond:
            if index is not None:
                self._ready = max(self._ready, seq)
                if index:
                    self._index = {**(self._index or {}), **index}
            self._cond.notify_all()  # the writer commits at once instead of at its next poll
            while (self._committed < seq or self._index is not None) and self._error is None:
                self._cond.wait()
        self._raise_error()

    def _take(self, upto: int) -> _Part | None:
        """Remove the entries below seq ``upto`` from the front of the outbox."""
        n = upto - self._base
        if n <= 0:
            return None
        entries, leaves = self.entries[:n], self.leaves[:n]
        del self.entries[:n], self.leaves[:n]
        first, self._base = self._base, upto
        return first, entries, leaves

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:  # poll: the engine does not notify per step
                empty_polls = 0
                while self._ready <= self._base and self._index is None and not self._closed:
                    if empty_polls < _IDLE_AFTER_POLLS:
                        empty_polls += 1
                        cond.wait(_GROUP_WAIT_S)
                        continue
                    # the run is idle (a long node, a paused caller): sleep until step()
                    # wakes us. ``_idle`` is set before the last look at ``_ready``, and
                    # step() stores ``_ready`` before reading ``_idle``: no step is missed.
                    self._idle = True
                    if self._ready <= self._base and self._index is None and not self._closed:
                        cond.wait(_IDLE_WAIT_S)
                    self._idle = False
                if self._error is not None:
                    return  # the lease was lost: nothing more goes to the store
                if self._ready <= self._base and self._index is None:
                    return  # closed, nothing left
                upto, index = self._ready, self._index or {}
                self._index = None
            try:
                self._write_now(self._take(upto), index)
            except BaseException as exc:  # surfaced to the engine on its next call
                with cond:
                    self._error = exc
                    cond.notify_all()
                return
            with cond:
                self._committed = upto
                cond.notify_all()

    def _write_now(self, part: _Part | None, index: dict[str, Any]) -> None:
        """Commit ``part`` (consecutive entries) in one transaction with ``index``."""
        if part is None and not index:
            return
        self._raise_error()  # a lost lease: write nothing more
        if index.get("release"):  # the run ends or pauses: stop renewing before letting go
            self._released = True
            self._drop_lease()
        first, fulls, leaves = part if part is not None else (self._base, [], [])
        status = index.get("status")
        checkpoints, log_root = self._audit(leaves, status)
        entries: Sequence[Entry] = EntryBatch(first, fulls, leaves) if fulls else []
        started = not self._begun
        try:
            self._commit(started, entries, index, status, checkpoints, log_root)
        except LeaseLostError as exc:  # fenced: the store holds another owner now
            with self._cond:
                self._error = exc
            raise
        if self._feed is not None and fulls:
            self._feed.committed(first, fulls, leaves)  # never raises, never waits
        self._after_commit(checkpoints, started or log_root is not None)

    def _commit(
        self,
        started: bool,
        entries: Sequence[Entry],
        index: dict[str, Any],
        status: str | None,
        checkpoints: list[tuple[int, bytes]],
        log_root: bytes | None,
    ) -> None:
        rest = bool(index or checkpoints or log_root is not None)
        append = AppendEntries(
            run_id=self.run_id,
            owner=self.owner,
            entries=[] if started else entries,
            status=status,
            finished_us=index.get("finished_us"),
            release=bool(index.get("release")),
            checkpoints=checkpoints,
            log_root=log_root,
        )
        if started:
            # the run's first write (an "exit" run's only one): create it, still held; with
            # its end in the same transaction when the store can (one commit for the run)
            then = append if rest and entries and self.store.begins_then else None
            self.store.execute(BeginRun(info=self._info, entries=entries, then=then))
            self._begun = True
            self._keep_lease()
            if then is not None:
                return
        if append.entries or rest:
            self.store.execute(append)

    def _audit(
        self, leaves: list[bytes], status: str | None
    ) -> tuple[list[tuple[int, bytes]], bytes | None]:
        """Feed the run's Merkle tree; the checkpoints and log root this commit carries."""
        tree, notary = self._tree, self._notary
        due: list[tuple[int, bytes]] = []
        every = notary.every if notary is not None else 0
        if not every:
            tree.extend(leaves)
        else:
            for leaf in leaves:
                tree.append(leaf)
                if tree.size % every == 0:
                    due.append((tree.size, tree.root()))
        pausing = status in TERMINAL_STATUSES or status == "interrupted"
        if pausing and notary is not None and tree.size and (not due or due[-1][0] != tree.size):
            due.append((tree.size, tree.root()))
        checkpoints = notary.checkpoints(self.run_id, due) if notary is not None else []
        return checkpoints, (tree.root() if status in TERMINAL_STATUSES else None)

    def _after_commit(self, checkpoints: list[tuple[int, bytes]], logged: bool) -> None:
        """Ship committed checkpoints; sign the log of runs after the commit added a line to
        it (the run's start, its end, or both at once in ``exit`` durability)."""
        notary = self._notary
        if notary is None:
            return
        origin = notary.origin(self.run_id)
        for size, note in checkpoints:
            notary.ship(self.run_id, origin, size, note)
        if logged:
            sign_runs_log(self.store, notary, run_id=self.run_id)
