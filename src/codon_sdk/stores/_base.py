"""The ledger store interface: two abstract methods over typed operation records.

A backend implements :meth:`LedgerStore.execute` (and may override
:meth:`LedgerStore.aexecute`, which by default runs ``execute`` in a worker
thread). Every convenience method (``append``, ``read``, ``runs``, ``claim``...)
is concrete and built on those two, so a new backend is one ``match`` over the
operation types below.

Guarantees every backend gives (the conformance suite,
:class:`codon_sdk.testing.StoreConformance`, checks them on memory, SQLite and
PostgreSQL alike, and on any other backend that runs it):

* entry bytes are stored verbatim and read back byte for byte;
* a run's seqs are contiguous from 0; appending a seq that is not the next one,
  or appending to a run held by another owner, raises ``RunConflictError`` and
  writes nothing (each ``AppendEntries`` is atomic);
* events are append-only: where the database can enforce it (triggers), an
  UPDATE or DELETE of an event row fails;
* the runs index (:class:`RunInfo`) is updated in the same transaction as the
  events it describes;
* fencing: only the run's current owner may append or renew its lease; anyone
  else gets ``LeaseLostError`` (a ``RunConflictError``) and writes nothing;
* the log of runs: a run's first entry adds a start line ``(idx, run id, 1, leaf
  hash of seq 0)`` and its end a finish line ``(idx, run id, event count, Merkle
  root)``, each in the transaction of the entries it describes; ``idx`` runs
  0, 1, 2... in commit order, without a gap.
"""

from __future__ import annotations

import abc
import asyncio
import operator
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, TypeAlias, overload

from codon_sdk._clock import from_us, to_us
from codon_sdk.errors import LeaseLostError, RunConflictError, RunNotFoundError
from codon_sdk.ledger import RUN_STATUSES, TERMINAL_STATUSES
from codon_sdk.stores._approvers import ApproverOp
from codon_sdk.stores._blob_ops import BlobOp
from codon_sdk.stores._budgets import ChargeBudget, ReadBudget, TakeRateSlot
from codon_sdk.stores._cache_ops import CacheEntry, LookupCache, PutCache
from codon_sdk.stores._erase_ops import EraseOp

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "LIST_FILTERS",
    "list_runs",
    "EntryBatch",
    "check_claim",
    "check_finish_size",
    "claimed",
    "check_owner",
    "check_seqs",
    "entry_bytes",
    "lease_lost",
    "lease_seconds",
    "start_leaf",
    "RUN_STATUSES",
    "AppendEntries",
    "BeginRun",
    "CacheEntry",
    "ClaimRun",
    "Entry",
    "GetRun",
    "LedgerStore",
    "ListRuns",
    "LookupCache",
    "Op",
    "PutCache",
    "PutCheckpoint",
    "ReadCheckpoints",
    "ReadEntries",
    "ReadRunsLog",
    "RenewLease",
    "RunInfo",
    "hold",
    "lease_is_stale",
    "new_owner",
    "release",
]

Entry: TypeAlias = tuple[int, bytes, bytes]
"""``(seq, entry bytes, leaf hash)`` of one ledger event."""

DEFAULT_LEASE_TTL_S: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """One row of the runs index."""

    run_id: str
    workload_name: str
    workload_version: str
    logic_id: str
    deployment_id: str
    status: str
    started_us: int
    finished_us: int | None = None
    event_count: int = 0
    head: str | None = None
    parent_run_id: str | None = None
    owner: str | None = None
    heartbeat_us: int | None = None
    #: The lease period the holder declared, in microseconds (None: ``DEFAULT_LEASE_TTL_S``).
    lease_us: int | None = None

    @property
    def started_at(self) -> datetime:
        return from_us(self.started_us)

    @property
    def finished_at(self) -> datetime | None:
        return None if self.finished_us is None else from_us(self.finished_us)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (the shape ``codon runs list --json`` prints)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "workload_name": self.workload_name,
            "workload_version": self.workload_version,
            "logic_id": self.logic_id,
            "deployment_id": self.deployment_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "event_count": self.event_count,
            "head": self.head,
            "parent_run_id": self.parent_run_id,
        }


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginRun:
    """Create a run's index row, held by ``info.owner``, with its first entries.

    When ``entries`` starts at seq 0 the run's start line goes into the log of
    runs in the same transaction (see :func:`start_leaf`). Raises
    ``RunConflictError`` if the run id exists. Returns None.

    ``then`` (only for a store whose ``begins_then`` is true): an append without
    entries by ``info.owner`` (the end of a run written whole: status, release,
    checkpoints, finish line) carried out in the same transaction, so that an
    ``exit``-durability run costs one commit; if it is refused nothing is written.
    """

    info: RunInfo
    entries: Sequence[Entry]
    then: AppendEntries | None = None

    def __post_init__(self) -> None:
        then = self.then
        if then is not None and (
            then.entries or then.run_id != self.info.run_id or then.owner != self.info.owner
        ):
            raise ValueError(
                f"BeginRun of {self.info.run_id!r}: `then` must be an append without entries "
                "to the same run by the same owner"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries:
    """Append entries to a run held by ``owner`` and update its index row atomically.

    ``status``/``finished_us`` update the index when given; ``release`` clears the
    owner (the run ended or paused). The first entry's seq must equal the run's
    event count. ``checkpoints`` (``(size, signed note)`` pairs covering these
    entries) are stored in the same transaction, and so is, when ``log_root`` is
    given, the run's line in the log of finished runs (its new event count and
    that Merkle root). Returns None.
    """

    run_id: str
    owner: str
    entries: Sequence[Entry]
    status: str | None = None
    finished_us: int | None = None
    release: bool = False
    checkpoints: Sequence[tuple[int, bytes]] = ()
    log_root: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadCheckpoints:
    """Signed checkpoint notes of a run as ``[(size, note bytes), ...]`` by size.

    ``run_id=""`` names the log of finished runs. Unknown runs give ``[]``.
    """

    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PutCheckpoint:
    """Store one signed checkpoint note (``run_id=""``: of the log of runs).

    Storing the very same note again is a no-op; a different note for the same
    size raises ``RunConflictError``. Returns None.
    """

    run_id: str
    size: int
    note: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRunsLog:
    """The log of runs, in log order: ``[(index, run_id, size, root bytes), ...]``.

    A line of size 1 is a run's start line (root: the leaf hash of its ``run_started``);
    a longer one its finish line (root: the Merkle root of its events).
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadEntries:
    """Entry bytes of a run for ``start <= seq < end`` (all when ``end`` is None), in order.

    Returns ``list[bytes]``; raises ``RunNotFoundError`` for an unknown run.
    """

    run_id: str
    start: int = 0
    end: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRun:
    """The run's :class:`RunInfo`; raises ``RunNotFoundError``."""

    run_id: str


#: The :class:`ListRuns` fields that filter on one runs-index column by equality.
LIST_FILTERS: Final = ("status", "workload_name", "logic_id", "deployment_id", "parent_run_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRuns:
    """Runs, newest first (``started_us``, then ``run_id``, descending), optionally filtered.
    Returns ``list[RunInfo]``.

    Each filter given must hold; ``started_from_us <= started_us < started_before_us``;
    ``after`` (a run id) keeps only the runs listed after that run in this order (keyset
    paging: pass the last run of a page to get the next; the run need not match the
    filters), and raises ``RunNotFoundError`` when no such run exists; a ``limit`` keeps
    the first ``limit`` (as a slice ``[:limit]`` does).
    """

    status: str | None = None
    workload_name: str | None = None
    limit: int | None = None
    logic_id: str | None = None
    deployment_id: str | None = None
    parent_run_id: str | None = None
    started_from_us: int | None = None
    started_before_us: int | None = None
    after: str | None = None

    def select(self, runs: Iterable[RunInfo]) -> list[RunInfo]:
        """This listing of ``runs`` (every run of a store that holds them in memory)."""
        every = list(runs)
        key: tuple[int, str] | None = None
        if self.after is not None:
            found = [r for r in every if r.run_id == self.after]
            if not found:
                raise RunNotFoundError(f"no run {self.after!r} to list after")
            key = (found[0].started_us, found[0].run_id)
        wanted = [(f, getattr(self, f)) for f in LIST_FILTERS if getattr(self, f) is not None]
        chosen = [
            r
            for r in every
            if all(getattr(r, f) == v for f, v in wanted)
            and (self.started_from_us is None or r.started_us >= self.started_from_us)
            and (self.started_before_us is None or r.started_us < self.started_before_us)
            and (key is None or (r.started_us, r.run_id) < key)
        ]
        chosen.sort(key=lambda r: (r.started_us, r.run_id), reverse=True)
        return chosen if self.limit is None else chosen[: self.limit]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRun:
    """Compare-and-set the owner of a run: succeeds only if the current owner is ``expected``
    (and, when ``event_count`` is given, the run still holds exactly that many events).

    Returns the updated :class:`RunInfo` (status ``running``), or raises
    ``RunConflictError`` when the owner is no longer ``expected`` or the run has grown.
    """

    run_id: str
    expected: str | None
    owner: str
    now_us: int
    event_count: int | None = None
    #: The new holder's lease period (recorded in the runs row; None: the default).
    lease_us: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewLease:
    """Refresh the heartbeat of a run ``owner`` holds (to ``now_us``), and nothing else.

    Raises ``LeaseLostError`` naming the current holder when ``owner`` no longer
    holds the run (it was taken over, or it ended or paused), ``RunNotFoundError``
    for an unknown run. Returns None.
    """

    run_id: str
    owner: str
    now_us: int


def check_claim(info: RunInfo, op: ClaimRun) -> None:
    """What every backend checks, inside its transaction, before it grants a claim."""
    if info.owner != op.expected:
        raise RunConflictError(f"run {op.run_id!r} was claimed by {info.owner!r} in the meantime")
    if op.event_count is not None and info.event_count != op.event_count:
        raise RunConflictError(
            f"run {op.run_id!r} holds {info.event_count} events, not the {op.event_count} read "
            "before claiming it: another process went on with it in the meantime; resume again"
        )


def list_runs(
    *, since: datetime | None = None, until: datetime | None = None, **filters: Any
) -> ListRuns:
    """The :class:`ListRuns` of ``LedgerStore.runs``' arguments (times as microseconds; a
    naive datetime is refused, as its meaning depends on the machine)."""
    for label, when in (("since", since), ("until", until)):
        if when is not None and (not isinstance(when, datetime) or when.tzinfo is None):
            raise ValueError(
                f"{label} must be a timezone-aware datetime (e.g. datetime.now(timezone.utc)), "
                f"got {when!r}"
            )
    return ListRuns(
        **filters,
        started_from_us=None if since is None else to_us(since),
        started_before_us=None if until is None else to_us(until),
    )


Op: TypeAlias = (
    BeginRun
    | AppendEntries
    | ReadEntries
    | GetRun
    | ListRuns
    | ClaimRun
    | ReadCheckpoints
    | PutCheckpoint
    | ReadRunsLog
    | RenewLease
    | LookupCache
    | PutCache
    | ApproverOp
    | ChargeBudget
    | ReadBudget
    | TakeRateSlot
    | BlobOp
    | EraseOp
)


def lease_lost(run_id: str, holder: str | None, owner: str) -> LeaseLostError:
    """The refusal an owner gets for a run it no longer holds (every backend's wording)."""
    now = (
        "nobody holds it now (it ended or paused)"
        if holder is None
        else f"{holder!r} holds it now: another process took it over after this process's "
        "lease expired"
    )
    return LeaseLostError(
        f"run {run_id!r} is held by {holder!r}, not {owner!r}; {now}. Nothing was written; "
        "stop working on this run here (resume it again once its holder is done or gone)"
    )


def check_owner(run_id: str, holder: str | None, owner: str) -> None:
    """Only the run's current holder may append to it or renew its lease (fencing)."""
    if holder != owner:
        raise lease_lost(run_id, holder, owner)


def start_leaf(entries: Sequence[Entry]) -> bytes | None:
    """The root of a run's start line, when ``entries`` begin the run: the leaf hash of seq 0
    (the RFC 6962 root of a one-leaf tree is that leaf's hash)."""
    if entries and entries[0][0] == 0:
        return bytes(entries[0][2])
    return None


def check_finish_size(run_id: str, size: int) -> None:
    """A finish line counts at least two events (``run_started``, ``run_finished``), so that a
    line of size 1 is always a start line."""
    if size < 2:
        raise RunConflictError(
            f"run {run_id!r} holds {size} event(s): a finished run holds at least run_started "
            "and run_finished, so it cannot go into the log of runs yet"
        )


# --------------------------------------------------------------------------- leases


_LIVE_OWNERS: set[str] = set()
"""Owners of this process whose runs are executing right now (see :func:`hold`)."""


def new_owner() -> str:
    """An owner id for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def hold(owner: str) -> None:
    """Mark ``owner`` as executing in this process (its lease is live)."""
    _LIVE_OWNERS.add(owner)


def release(owner: str) -> None:
    """Mark ``owner`` as no longer executing in this process."""
    _LIVE_OWNERS.discard(owner)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_seconds(info: RunInfo, default: float = DEFAULT_LEASE_TTL_S) -> float:
    """The lease period the run's holder declared (``default`` when none, or when the stored
    value is not a positive integer: the row is read back from a database)."""
    lease = info.lease_us
    if type(lease) is int and lease > 0:
        return lease / 1_000_000
    return default


def lease_is_stale(info: RunInfo, *, now_us: int, ttl_s: float = DEFAULT_LEASE_TTL_S) -> bool:
    """Whether the run's owner may be presumed gone.

    Free when nobody holds it; stale when the holder ran on this host and its
    process no longer exists, or when its last heartbeat is older than the lease
    the holder declared (``info.lease_us``; ``ttl_s`` when it declared none).
    A live holder renews its heartbeat every third of its lease (``runtime/_lease.py``).
    """
    if info.owner is None:
        return True
    host, _, rest = info.owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        if int(pid_text) == os.getpid():  # this process: live only while it executes the run
            return info.owner not in _LIVE_OWNERS
        if not _pid_alive(int(pid_text)):
            return True
    heartbeat = info.heartbeat_us or info.started_us
    return now_us - heartbeat > lease_seconds(info, ttl_s) * 1_000_000


# --------------------------------------------------------------------------- the interface


class LedgerStore(abc.ABC):
    """Where ledgers live. Subclasses implement :meth:`execute` over the :data:`Op` records."""

    #: URL with any password masked, for messages.
    url: str = ""
    #: Who signs this ledger's checkpoints, how often, where they go (None: no checkpoints).
    notary: Any = None
    #: Whether :class:`BeginRun` ``then`` is carried out (in the begin's transaction); a store
    #: that leaves it false gets the begin and the append as two operations.
    begins_then: bool = False

    @abc.abstractmethod
    def execute(self, op: Op) -> Any:
        """Carry out one operation (see each operation's docstring for its result)."""

    async def aexecute(self, op: Op) -> Any:
        """Async twin of :meth:`execute` (by default, ``execute`` in a worker thread)."""
        return await asyncio.to_thread(self.execute, op)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed store refuses every operation)."""
        return False

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ conveniences

    def begin_run(self, info: RunInfo, entries: Sequence[Entry]) -> None:
        self.execute(BeginRun(info=info, entries=entries))

    def append(
        self,
        run_id: str,
        owner: str,
        entries: Sequence[Entry],
        *,
        status: str | None = None,
        finished_us: int | None = None,
        release: bool = False,
        checkpoints: Sequence[tuple[int, bytes]] = (),
        log_root: bytes | None = None,
    ) -> None:
        self.execute(
            AppendEntries(
                run_id=run_id,
                owner=owner,
                entries=entries,
                status=status,
                finished_us=finished_us,
                release=release,
                checkpoints=checkpoints,
                log_root=log_root,
            )
        )

    def checkpoints(self, run_id: str) -> list[tuple[int, bytes]]:
        """Signed checkpoints stored for a run (``""``: for the log of runs), by size."""
        result: list[tuple[int, bytes]] = self.execute(ReadCheckpoints(run_id=run_id))
        return result

    def put_checkpoint(self, run_id: str, size: int, note: bytes) -> None:
        self.execute(PutCheckpoint(run_id=run_id, size=size, note=note))

    def runs_log(self) -> list[tuple[int, str, int, bytes]]:
        """The log of finished runs: ``(index, run_id, size, root)`` in log order."""
        result: list[tuple[int, str, int, bytes]] = self.execute(ReadRunsLog())
        return result

    def read(self, run_id: str, start: int = 0, end: int | None = None) -> list[bytes]:
        result: list[bytes] = self.execute(ReadEntries(run_id=run_id, start=start, end=end))
        return result

    def lookup_cache(self, key: str) -> CacheEntry | None:
        """The cache entry stored for ``key`` (None: none)."""
        result: CacheEntry | None = self.execute(LookupCache(key=key))
        return result

    def put_cache(self, entry: CacheEntry, *, replace: bool = False) -> bool:
        """Store a cache entry (the first for a key wins unless ``replace``)."""
        return bool(self.execute(PutCache(entry=entry, replace=replace)))

    def get_run(self, run_id: str) -> RunInfo:
        result: RunInfo = self.execute(GetRun(run_id=run_id))
        return result

    def has_run(self, run_id: str) -> bool:
        try:
            self.get_run(run_id)
        except RunNotFoundError:
            return False
        return True

    def runs(
        self,
        *,
        status: str | None = None,
        workload_name: str | None = None,
        limit: int | None = None,
        logic_id: str | None = None,
        deployment_id: str | None = None,
        parent_run_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first: those matching every filter given, started at or after
        ``since`` and before ``until``, listed after run ``after`` (the last of the previous
        page), at most ``limit`` of them. See :class:`ListRuns`."""
        result: list[RunInfo] = self.execute(
            list_runs(
                status=status,
                workload_name=workload_name,
                limit=limit,
                logic_id=logic_id,
                deployment_id=deployment_id,
                parent_run_id=parent_run_id,
                since=since,
                until=until,
                after=after,
            )
        )
        return result

    def claim(
        self,
        run_id: str,
        owner: str,
        *,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        event_count: int | None = None,
        lease_us: int | None = None,
    ) -> RunInfo:
        """Take over a run for ``owner`` (resume): refused while a live owner holds it, and,
        with ``event_count``, when the run no longer holds exactly the events read.

        The holder's lease is judged by the period it declared (``ttl_s`` when it
        declared none); ``lease_us`` is the period ``owner`` declares for itself,
        recorded in the runs row (None: the default).
        """
        info = self.get_run(run_id)
        now = time.time_ns() // 1000
        if info.status in TERMINAL_STATUSES:
            raise RunConflictError(
                f"run {run_id} has ended ({info.status}); an ended run is not executed again "
                "(fork it to continue from an earlier point)"
            )
        if info.owner == owner:
            return info
        if not lease_is_stale(info, now_us=now, ttl_s=ttl_s):
            raise RunConflictError(
                f"run {run_id} is being executed by {info.owner} (last heartbeat "
                f"{(now - (info.heartbeat_us or info.started_us)) / 1e6:.1f}s ago, lease "
                f"{lease_seconds(info, ttl_s):g}s); wait for it to finish, or resume after its "
                "lease expires"
            )
        claimed: RunInfo = self.execute(
            ClaimRun(
                run_id=run_id,
                expected=info.owner,
                owner=owner,
                now_us=now,
                event_count=event_count,
                lease_us=lease_us,
            )
        )
        return claimed

    def renew_lease(self, run_id: str, owner: str) -> None:
        """Refresh ``owner``'s heartbeat on ``run_id``; ``LeaseLostError`` if it lost the run."""
        self.execute(RenewLease(run_id=run_id, owner=owner, now_us=time.time_ns() // 1000))

    # async twins ------------------------------------------------------------------

    async def aread(self, run_id: str, start: int = 0, end: int | None = None) -> list[bytes]:
        result: list[bytes] = await self.aexecute(ReadEntries(run_id=run_id, start=start, end=end))
        return result

    async def aget_run(self, run_id: str) -> RunInfo:
        result: RunInfo = await self.aexecute(GetRun(run_id=run_id))
        return result

    async def aruns(
        self,
        *,
        status: str | None = None,
        workload_name: str | None = None,
        limit: int | None = None,
        logic_id: str | None = None,
        deployment_id: str | None = None,
        parent_run_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first: those matching every filter given, started at or after
        ``since`` and before ``until``, listed after run ``after`` (the last of the previous
        page), at most ``limit`` of them. See :class:`ListRuns`."""
        result: list[RunInfo] = await self.aexecute(
            list_runs(
                status=status,
                workload_name=workload_name,
                limit=limit,
                logic_id=logic_id,
                deployment_id=deployment_id,
                parent_run_id=parent_run_id,
                since=since,
                until=until,
                after=after,
            )
        )
        return result


class EntryBatch(Sequence[Entry]):
    """Consecutive entries the way the runtime hands them to a store, without copying them.

    Seqs run from ``first`` on; ``prefixed`` holds each entry still behind the 0x00
    byte its leaf hash was computed over, ``leaves`` the leaf hashes. It reads as
    the ``(seq, entry, leaf hash)`` triples of any other entries; a backend that
    can take the prefixed form as it is (SQLite's bulk insert) does.
    """

    __slots__ = ("first", "leaves", "prefixed")

    def __init__(self, first: int, prefixed: list[bytes], leaves: list[bytes]) -> None:
        if len(prefixed) != len(leaves):
            raise ValueError(f"{len(prefixed)} entries but {len(leaves)} leaf hashes")
        self.first = first
        self.prefixed = prefixed
        self.leaves = leaves

    def __len__(self) -> int:
        return len(self.prefixed)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            return [self[k] for k in range(len(self))[index]]
        k = range(len(self.prefixed))[index]  # IndexError as a list gives it
        return (self.first + k, self.prefixed[k][1:], self.leaves[k])

    def __iter__(self) -> Iterator[Entry]:
        return zip(
            range(self.first, self.first + len(self.prefixed)),
            map(_UNPREFIXED, self.prefixed),
            self.leaves,
            strict=True,
        )


_UNPREFIXED: Final = operator.itemgetter(slice(1, None))


def entry_bytes(entries: Sequence[Entry]) -> list[bytes]:
    """The entry bytes of ``entries``, in order (an :class:`EntryBatch` without a tuple each)."""
    if isinstance(entries, EntryBatch):
        return list(map(_UNPREFIXED, entries.prefixed))
    return [entry for _, entry, _ in entries]


def check_seqs(run_id: str, start: int, entries: Sequence[Entry]) -> None:
    """Entries must carry seqs ``start, start + 1, ...``; else ``RunConflictError`` naming the first
    that does not (every backend's check before it writes anything)."""
    if isinstance(entries, EntryBatch) and entries.first == start:
        return
    seqs = [entry[0] for entry in entries]
    if seqs == list(range(start, start + len(seqs))):
        return
    for offset, seq in enumerate(seqs):
        if seq != start + offset:
            raise RunConflictError(
                f"run {run_id!r}: expected seq {start + offset}, got {seq}; "
                "another writer appended to this run"
            )


def claimed(info: RunInfo, op: ClaimRun) -> RunInfo:
    """``info`` as a granted claim leaves it: held by ``op.owner``, running, as of ``op.now_us``."""
    return replace(
        info, owner=op.owner, heartbeat_us=op.now_us, status="running", lease_us=op.lease_us
    )
