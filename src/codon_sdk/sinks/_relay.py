"""The relay: takes a run's commits from its writer and delivers them to a sink, in order.

One relay (one daemon thread) per sink object serves every run of the process. The
writer's only cost is :meth:`AuditFeed.committed`: a lock and an append of the commit's
lists (no copy, no decoding). The relay keeps per run the seq the sink lacks first
(``next``) and the seq below which the store holds everything (``committed``):

* while the sink keeps up, entries come from the in-memory buffer;
* when the buffer (all runs together) would exceed the sink's ``max_buffer``, the run's
  buffered commits are dropped and the run is marked *behind*: the relay reads
  ``[next, committed)`` back from the ledger store, a batch at a time, until it has
  caught up; the store is the source of truth, so nothing is lost, and the run never
  waits;
* a failing delivery (or cursor lookup, or store read) is logged once per outage and
  retried with a backoff of 50 ms doubling to 2 s, from ``next`` again.

A resumed run (``new=False``) starts by asking the sink's cursor what it lacks.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from codon_sdk._text import printable
from codon_sdk.errors import RunNotFoundError
from codon_sdk.ledger import leaf_hash
from codon_sdk.sinks._entry import AuditEntry
from codon_sdk.stores import LedgerStore, reopen

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.sinks._base import AuditSink

__all__ = ["AuditFeed", "Relay"]

_log = logging.getLogger("codon_sdk.sinks")
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 2.0
_Part = tuple[int, list[bytes], list[bytes]]  # first seq, entries behind 0x00, leaf hashes


@dataclass(slots=True)
class _RunState:
    run_id: str
    store: LedgerStore
    next: int | None  # the first seq the sink lacks (None: ask its cursor)
    committed: int  # the store holds every entry below this seq
    parts: deque[_Part] = field(default_factory=deque)
    held: int = 0  # entries in ``parts``
    behind: bool = False  # commits were not held: read [next, committed) from the store
    feeds: int = 1  # writers feeding this run that have not closed
    reopened: LedgerStore | None = None  # the store reopened from its URL (it was closed)

    def pending(self) -> bool:
        return self.next is None or self.next < self.committed


class AuditFeed:
    """One run's door into a relay, held by the run's writer. Never raises."""

    __slots__ = ("_open", "_relay", "_state")

    def __init__(self, relay: Relay, state: _RunState) -> None:
        self._relay = relay
        self._state = state
        self._open = True

    def committed(self, first: int, prefixed: list[bytes], leaves: list[bytes]) -> None:
        """The store committed these consecutive entries (each behind its 0x00 byte)."""
        try:
            self._relay.offer(self._state, (first, prefixed, leaves))
        except Exception:  # a hook never breaks a run
            _log.exception("audit sink relay: cannot take run %s's entries", self._state.run_id)

    def close(self) -> None:
        """The run's writer is done: the relay forgets the run once it is delivered."""
        if self._open:
            self._open = False
            self._relay.release(self._state)


class Relay:
    """Delivers every run's committed entries to one sink (see the module docstring)."""

    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink
        self._cond = threading.Condition(threading.Lock())
        self._runs: dict[str, _RunState] = {}
        self._held = 0
        self._closed = False
        self._failing = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the writer's side

    def feed(self, store: LedgerStore, run_id: str, committed: int, *, new: bool) -> AuditFeed:
        with self._cond:
            state = self._runs.get(run_id)
            if state is None:
                state = _RunState(run_id, store, 0 if new else None, committed)
                self._runs[run_id] = state
            else:  # the run resumed in this process before the relay finished it
                state.store, state.feeds = store, state.feeds + 1
                state.committed = max(state.committed, committed)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._loop, name="codon-audit-relay", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return AuditFeed(self, state)

    def offer(self, state: _RunState, part: _Part) -> None:
        n = len(part[1])
        with self._cond:
            state.committed = max(state.committed, part[0] + n)
            if state.behind or self._held + n > self.sink.max_buffer:
                if not state.behind:
                    _log.debug("audit sink: run %s falls back to the store", state.run_id)
                self._held -= state.held
                state.parts.clear()
                state.held, state.behind = 0, True
            else:
                state.parts.append(part)
                state.held += n
                self._held += n
            self._cond.notify_all()

    def release(self, state: _RunState) -> None:
        with self._cond:
            state.feeds -= 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ waiting, closing

    def flush(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or not any(s.pending() for s in self._runs.values()),
                timeout,
            ) and not any(s.pending() for s in self._runs.values())

    def close(self, timeout: float | None) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ the relay thread

    def _loop(self) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            with self._cond:
                state = self._next_work()
                while state is None:
                    if self._closed:
                        return
                    self._cond.wait()
                    state = self._next_work()
                if self._closed:
                    return
            try:
                self._serve(state)
            except RunNotFoundError as exc:
                _log.warning("audit sink: run %s cannot be caught up: %s", state.run_id, exc)
                self._forget(state)
            except Exception as exc:
                if not self._failing:
                    self._failing = True
                    _log.warning(
                        "audit sink %s failed (%s: %s); retrying, the runs go on and the "
                        "sink catches up from the ledger",
                        type(self.sink).__name__,
                        type(exc).__name__,
                        printable(str(exc))[:300],
                    )
                with self._cond:
                    if not self._closed:
                        self._cond.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            if self._failing:
                self._failing = False
                _log.info("audit sink %s delivers again", type(self.sink).__name__)
            backoff = _BACKOFF_MIN_S

    def _next_work(self) -> _RunState | None:
        """(under the lock) A run with entries to deliver; forget the finished ones."""
        for run_id, state in list(self._runs.items()):
            if state.pending():
                self._runs[run_id] = self._runs.pop(run_id)  # round robin over the runs
                return state
            if state.feeds <= 0:
                del self._runs[run_id]
                self._close_reopened(state)
        self._cond.notify_all()  # flush() waiters
        return None

    def _serve(self, state: _RunState) -> None:
        if state.next is None:
            start = self.sink.cursor(state.run_id)
            with self._cond:
                state.next = max(0, min(int(start), state.committed))
        batch = self._from_buffer(state) or self._from_store(state)
        if not batch:
            return
        self.sink.deliver(batch)
        upto = batch[-1].seq + 1
        self.sink.acknowledged(state.run_id, upto)
        with self._cond:
            state.next = upto
            while state.parts and state.parts[0][0] + len(state.parts[0][1]) <= upto:
                dropped = state.parts.popleft()
                state.held -= len(dropped[1])
                self._held -= len(dropped[1])
            if state.behind and upto >= state.committed:
                state.behind = False
            self._cond.notify_all()

    def _from_buffer(self, state: _RunState) -> list[AuditEntry]:
        """The next batch from the held commits, if they hold ``state.next``."""
        with self._cond:
            start = state.next
            assert start is not None
            parts = list(state.parts)
        batch: list[AuditEntry] = []
        for first, prefixed, leaves in parts:
            if first + len(prefixed) <= start:
                continue
            if first > start + len(batch):
                break  # a gap: the rest comes from the store
            k = start + len(batch) - first
            for fullbytes, leaf in zip(prefixed[k:], leaves[k:], strict=True):
                batch.append(AuditEntry(run_id=state.run_id, seq=first + k, entry=fullbytes[1:],
                                        leaf=leaf))  # fmt: skip
                k += 1
                if len(batch) >= self.sink.batch_size:
                    return batch
        return batch

    def _from_store(self, state: _RunState) -> list[AuditEntry]:
        """The next batch read back from the ledger store (the run fell behind)."""
        start = state.next
        assert start is not None
        end = min(state.committed, start + self.sink.batch_size)
        if end <= start:
            return []
        store = state.store
        if store.closed:  # opened from a URL by the run, closed when it ended
            if state.reopened is None:
                state.reopened = reopen(store, why=f"run {state.run_id!r} was being delivered")
            store = state.reopened
        entries = store.read(state.run_id, start, end)
        return [
            AuditEntry(run_id=state.run_id, seq=start + k, entry=e, leaf=leaf_hash(e))
            for k, e in enumerate(entries)
        ]

    def _forget(self, state: _RunState) -> None:
        with self._cond:
            self._runs.pop(state.run_id, None)
            self._held -= state.held
            self._cond.notify_all()
        self._close_reopened(state)

    @staticmethod
    def _close_reopened(state: _RunState) -> None:
        if state.reopened is not None:
            state.reopened.close()
            state.reopened = None
