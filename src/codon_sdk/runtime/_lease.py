"""Keeping the leases this process holds: one daemon thread renews them all.

A durable run's owner holds its run by a lease: the runs row names the owner,
its last heartbeat and the lease period it declared, and a second resumer may
take the run over once the heartbeat is older than that period. A node may run
far longer than any lease, and appends (which also refresh the heartbeat) stop
while it does; so every run this process executes registers its lease here and
:data:`HEARTBEAT`'s thread renews it every third of its period, with one
``RenewLease`` round trip, whatever the engine is doing. It adds nothing to the
engine's work per step: registration happens once per run, the thread sleeps
until the next renewal is due.

A renewal that finds the lease lost (another owner claimed the run: this
process was suspended, or stalled, past its lease) drops it and tells the
run's writer (``on_lost``), which fails the run at its next ledger write or
effect and writes nothing more. A renewal that fails otherwise (the database
unreachable for a moment) is logged once and tried again at the next due
time; fencing (a store refuses appends from anyone but the holder) keeps a
lapsed owner from writing in any case.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from codon_sdk.errors import LeaseLostError
from codon_sdk.redaction import get_logger
from codon_sdk.stores import LedgerStore

__all__ = ["HEARTBEAT", "Heartbeat"]

_log = get_logger("codon_sdk")


@dataclass(slots=True, eq=False)
class _Lease:
    store: LedgerStore
    run_id: str
    owner: str
    interval: float
    on_lost: Callable[[LeaseLostError], None]
    due: float = 0.0
    failing: bool = field(default=False)


class Heartbeat:
    """Renews every registered lease every third of its period, from one daemon thread
    (started on first use; after a fork the child starts with no leases and no thread)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._leases: dict[int, _Lease] = {}
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None

    def add(
        self,
        store: LedgerStore,
        run_id: str,
        owner: str,
        period_s: float,
        on_lost: Callable[[LeaseLostError], None],
    ) -> int:
        """Keep ``owner``'s lease on ``run_id`` (period ``period_s``) until :meth:`remove`;
        returns the token to remove it by."""
        interval = period_s / 3
        lease = _Lease(store, run_id, owner, interval, on_lost, time.monotonic() + interval)
        with self._cond:
            token = next(self._tokens)
            self._leases[token] = lease
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="codon-lease-heartbeat", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return token

    def remove(self, token: int) -> None:
        """Stop renewing a lease (the run ended, paused, or its writer closed)."""
        with self._cond:
            self._leases.pop(token, None)

    def held(self) -> int:
        """How many leases are being kept."""
        with self._cond:
            return len(self._leases)

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    now = time.monotonic()
                    due = [(t, lease) for t, lease in self._leases.items() if lease.due <= now]
                    if due:
                        break
                    wake = min((lease.due for lease in self._leases.values()), default=None)
                    cond.wait(None if wake is None else wake - now)
                for _, lease in due:
                    lease.due = now + lease.interval
            for token, lease in due:
                self._renew(token, lease)

    def _renew(self, token: int, lease: _Lease) -> None:
        try:
            lease.store.renew_lease(lease.run_id, lease.owner)
        except LeaseLostError as exc:
            self.remove(token)
            try:
                lease.on_lost(exc)
            except Exception:  # a hook: never let it end the heartbeat of other runs
                _log.exception("the lease-lost hook of run %s failed", lease.run_id)
            return
        except Exception as exc:
            if not lease.failing:
                lease.failing = True
                _log.warning(
                    "could not renew the lease of run %s in %s (%s: %s); retrying every %.1fs: "
                    "if this goes on past the lease, another process may take the run over",
                    lease.run_id,
                    lease.store.url,
                    type(exc).__name__,
                    exc,
                    lease.interval,
                )
            return
        lease.failing = False


HEARTBEAT = Heartbeat()
"""The process's heartbeat: every durable run's writer registers its lease here."""

if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=HEARTBEAT._reset)
