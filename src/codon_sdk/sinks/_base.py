"""The audit sink seam: where a run's ledger entries go after they commit, besides the store.

A sink is one abstract method, :meth:`AuditSink.deliver`, and a cursor per run. The
relay (``_relay.py``) calls it from a thread of its own, never from the run: the
promise is at-least-once, in order per run, each entry carrying its leaf hash as the
key a consumer (or the sink's server) deduplicates on. The ledger store stays the
source of truth; a sink that falls behind or is down is fed again from the store.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from codon_sdk.sinks._entry import AuditEntry
from codon_sdk.sinks._relay import AuditFeed, Relay

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores import LedgerStore

__all__ = ["DEFAULT_MAX_BUFFER", "AuditSink"]

#: How many committed entries (over all runs) a sink's relay holds in memory before it
#: stops holding them and reads what it missed back from the ledger store.
DEFAULT_MAX_BUFFER = 10_000

_relay_lock = threading.Lock()


class AuditSink(abc.ABC):
    """Receives every ledger entry of the runs it is given to, after the entry commits.

    Implement :meth:`deliver` (and, for a sink that remembers across processes,
    :meth:`cursor`); pass the sink to ``execute``/``resume`` (``audit_sink=...``) or
    set it once on the workload (``workload.audit_sink = sink``). Guarantees, kept by
    the relay that drives the sink:

    * **after commit**: an entry is delivered only once its store commit returned;
    * **in order per run**, **at least once**: a failed delivery is retried from the
      first entry the sink has not acknowledged, so a sink may see an entry again;
      :attr:`AuditEntry.key` deduplicates;
    * **never in the run's way**: the run only hands entries to an in-memory buffer of
      at most ``max_buffer`` entries; past it (a sink that is slow or down) entries are
      not held and the relay reads them back from the ledger store when the sink
      returns. A sink's failure is logged (``codon_sdk.sinks``), never raised in a run.

    A run that ends while its sink is down is caught up by the relay while the process
    lives (:meth:`flush` waits for that); after the process is gone,
    :func:`~codon_sdk.sinks.catch_up` delivers from the store what the sink's
    :meth:`cursor` says it lacks.
    """

    #: Entries held in memory over all runs before the relay falls back to the store.
    max_buffer: int = DEFAULT_MAX_BUFFER
    #: The most entries one :meth:`deliver` call receives.
    batch_size: int = 256

    @abc.abstractmethod
    def deliver(self, entries: Sequence[AuditEntry]) -> None:
        """Deliver ``entries``: consecutive entries of one run, in seq order.

        Return only once they are safely received; raise on any failure (the relay logs
        it, waits, and delivers again from the first entry not acknowledged). Called
        from one thread at a time.
        """

    def cursor(self, run_id: str) -> int:
        """The seq of the first entry of ``run_id`` this sink lacks (0: it has none).

        The default remembers what was delivered through this object; a sink whose
        destination remembers (a stream, a table) reads it from there, so a new process
        catches up where the last one stopped. May raise when the sink cannot be reached.
        """
        with _relay_lock:
            return self.__dict__.setdefault("_codon_cursors", {}).get(run_id, 0)  # type: ignore[no-any-return]

    def acknowledged(self, run_id: str, next_seq: int) -> None:
        """(the relay) Everything of ``run_id`` below ``next_seq`` was delivered."""
        with _relay_lock:
            cursors: dict[str, int] = self.__dict__.setdefault("_codon_cursors", {})
            if next_seq > cursors.get(run_id, 0):
                cursors[run_id] = next_seq

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release the sink's own resources (connections); called once by :meth:`close`."""

    # ------------------------------------------------------------------ concrete

    def feed(self, store: LedgerStore, run_id: str, committed: int, *, new: bool) -> AuditFeed:
        """(the run's writer) The handle through which a run's commits reach this sink.

        ``committed`` is how many entries the store holds already; ``new`` says the run
        starts here (the sink lacks nothing), else the relay asks :meth:`cursor` first.
        """
        return self._relay().feed(store, run_id, committed, new=new)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry committed so far in this process has been delivered;
        return whether that happened within ``timeout`` seconds (None: no limit)."""
        relay = self.__dict__.get("_codon_relay")
        return True if relay is None else bool(relay.flush(timeout))

    def close(self, timeout: float | None = 5.0) -> None:
        """Deliver what is pending (waiting at most ``timeout`` seconds), stop the relay,
        then :meth:`shutdown`. What was not delivered stays in the ledger for
        :func:`~codon_sdk.sinks.catch_up`."""
        relay = self.__dict__.pop("_codon_relay", None)
        if relay is not None:
            relay.close(timeout)
        self.shutdown()

    def __enter__(self) -> AuditSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _relay(self) -> Relay:
        with _relay_lock:
            relay: Relay | None = self.__dict__.get("_codon_relay")
            if relay is None:
                relay = self.__dict__["_codon_relay"] = Relay(self)
            return relay
