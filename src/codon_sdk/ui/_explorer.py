"""The explorer's reads over one ledger store: runs pages, run views, cached per run head.

A run is read (and verified) once per change of its index row (event count, head);
pages of events and activations are slices of the cached :class:`RunView`. A cached
verdict is re-checked every :data:`RECHECK_S` seconds even when the index row did not
change, so an edit made underneath the store (which the index does not show) turns a run
``tampered`` within seconds, never stays hidden behind the cache. The re-check runs in a
background thread (the page that found it due is answered from the cache), and so does
re-reading a run of 20,000 events or more that grew (its page lags a few seconds behind
it): no page waits for a periodic check or for a big run's re-verification.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from codon_sdk import LedgerStore, RunInfo, verify_run
from codon_sdk.errors import ExplorerError, RunNotFoundError, StoreError
from codon_sdk.ui._model import RunView

__all__ = ["RECHECK_S", "Explorer", "RunFilter", "page_bounds"]

RECHECK_S: Final = 10.0
LIST_TTL_S: Final = 5.0
_MERGE: Final = 200  # newest runs read to merge new ones into the cached listing
MAX_LIMIT: Final = 500
_CACHED_RUNS: Final = 256
_BIG_RUN: Final = 20_000  # events: kept only a few at a time, re-checked in the background
_CACHED_BIG: Final = 3

STATUS_FILTERS: Final = (
    "running",
    "completed",
    "stopped",
    "failed",
    "interrupted",
    "pending_approval",
    "stale",
)


def page_bounds(offset: Any, limit: Any, default: int = 50) -> tuple[int, int]:
    """``offset`` and ``limit`` query values checked: integers, offset >= 0, 1..500."""
    try:
        off = 0 if offset in (None, "") else int(offset)
        lim = default if limit in (None, "") else int(limit)
    except (TypeError, ValueError):
        raise ExplorerError(
            f"offset and limit must be integers, got offset={offset!r}, limit={limit!r}"
        ) from None
    if off < 0 or not 1 <= lim <= MAX_LIMIT:
        raise ExplorerError(
            f"offset must be >= 0 and limit between 1 and {MAX_LIMIT}, got offset={off}, "
            f"limit={lim}"
        )
    return off, lim


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """What the runs page filters by (every field optional)."""

    status: str | None = None
    workload: str | None = None
    deployment: str | None = None
    logic_id: str | None = None
    search: str | None = None
    since_us: int | None = None
    until_us: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUS_FILTERS:
            raise ExplorerError(
                f"status must be one of {', '.join(STATUS_FILTERS)}, got {self.status!r}"
            )

    def matches(self, info: RunInfo) -> bool:
        return (
            (self.deployment is None or info.deployment_id == self.deployment)
            and (self.logic_id is None or info.logic_id.startswith(self.logic_id))
            and (self.search is None or self.search.lower() in info.run_id.lower())
            and (self.since_us is None or info.started_us >= self.since_us)
            and (self.until_us is None or info.started_us <= self.until_us)
        )


@dataclass(slots=True)
class _Cached:
    key: tuple[int, str | None]
    view: RunView
    checked: float


class Explorer:
    """Reads for the explorer's API over ``store`` (thread-safe: the server's workers share it)."""

    def __init__(self, store: LedgerStore, *, recheck_s: float = RECHECK_S) -> None:
        self.store = store
        self.recheck_s = recheck_s
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._listing: tuple[Any, float, list[RunInfo]] | None = None
        self._due: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._listing_due = False
        self._worker: threading.Thread | None = None

    def forget(self, run_ids: Iterable[str] | None = None) -> None:
        """Drop cached runs: all of them and the runs listing, or only ``run_ids``. The
        next look at each reads and verifies it again."""
        with self._lock:
            if run_ids is None:
                self._cache.clear()
                self._listing = None
            else:
                for run_id in run_ids:
                    self._cache.pop(run_id, None)

    # ------------------------------------------------------------------ runs

    def info(self, run_id: str) -> RunInfo:
        try:
            return self.store.get_run(run_id)
        except RunNotFoundError:
            raise ExplorerError(
                f"no run {run_id!r} in this ledger; the runs page lists the runs it holds",
                status=404,
                code="run_not_found",
            ) from None

    def listing(self) -> list[RunInfo]:
        """Every run's index row, newest first (filters use it; each shown row is read fresh).

        New runs are merged in as they appear (the newest :data:`_MERGE` rows are read);
        the whole listing is read again aside every :data:`LIST_TTL_S` seconds, so its
        statuses lag by at most that much and no page waits for a store of many runs.
        """
        with self._lock:
            cached = self._listing
        if cached is None:
            return self._read_listing()
        newest = self.store.runs(limit=1)
        rows = cached[2]
        if newest and (not rows or newest[0].run_id != rows[0].run_id):
            recent = self.store.runs(limit=_MERGE)
            seen = {r.run_id for r in recent}
            if rows and rows[0].run_id not in seen:
                return self._read_listing()  # more new runs than one read brings
            rows = recent + [r for r in rows if r.run_id not in seen]
            with self._lock:
                self._listing = (cached[0], cached[1], rows)
        if time.monotonic() - cached[1] >= LIST_TTL_S:
            self._aside_listing()
        return rows

    def _read_listing(self) -> list[RunInfo]:
        rows = self.store.runs()
        with self._lock:
            self._listing = (None, time.monotonic(), rows)
        return rows

    def _aside_listing(self) -> None:
        with self._lock:
            if self._listing_due:
                return
            self._listing_due = True

        def reread() -> None:
            try:
                self._read_listing()
            finally:
                with self._lock:
                    self._listing_due = False

        self._aside(reread)

    def runs(self, flt: RunFilter, offset: int, limit: int) -> dict[str, Any]:
        """One page of runs, newest first, each with its summary and verdict."""
        listed = self.listing()
        now = time.time_ns() // 1000
        wanted = {"pending_approval": "interrupted", "stale": "running"}.get(
            flt.status or "", flt.status
        )
        matching = [
            r
            for r in listed
            if (wanted is None or r.status == wanted)
            and (flt.workload is None or r.workload_name == flt.workload)
            and flt.matches(r)
        ]
        if flt.status == "stale":
            matching = [r for r in matching if _stale(r, now)]
        if flt.status == "pending_approval":
            matching = [r for r in matching if self.view(r).pending_question() is not None]
        children: dict[str, list[str]] = {}
        for r in listed:
            if r.parent_run_id is not None:
                children.setdefault(r.parent_run_id, []).append(r.run_id)
        items = []
        for r in matching[offset : offset + limit]:
            try:
                fresh = self.store.get_run(r.run_id)
            except RunNotFoundError:
                continue
            items.append(self.summary(fresh, now=now, children=children.get(r.run_id, [])))
        return _page(items, offset, limit, len(matching))

    def summary(
        self, info: RunInfo, *, now: int | None = None, children: list[str] | None = None
    ) -> dict[str, Any]:
        """What the runs page shows of one run (and the run page's header)."""
        view = self.view(info)
        now = time.time_ns() // 1000 if now is None else now
        end = info.finished_us or (view.last_us if info.status != "running" else now)
        pending = view.pending_question()
        return {
            **info.to_dict(),
            "duration_ms": None if end is None else max(0, end - info.started_us) / 1000,
            "stale": info.status == "running" and _stale(info, now),
            "activations": len(view.activations),
            "llm_calls": view.llm_calls,
            "tokens": view.llm_tokens,
            "cost_usd": view.cost_usd,
            "cost_complete": view.cost_complete,
            "verification": _status(view),
            "tampered": _status(view) == "tampered",
            "pending_question": None if pending is None else pending["reason"],
            "children": children if children is not None else self._children(info.run_id),
        }

    def _children(self, run_id: str) -> list[str]:
        return [r.run_id for r in self.listing() if r.parent_run_id == run_id]

    # ------------------------------------------------------------------ run views

    def view(self, info: RunInfo | str) -> RunView:
        """The run's :class:`RunView`, rebuilt when its head moved or its data changed."""
        if isinstance(info, str):
            info = self.info(info)
        key = (info.event_count, info.head)
        with self._lock:
            cached = self._cache.get(info.run_id)
            if cached is not None:
                self._cache.move_to_end(info.run_id)
            gate = self._building.setdefault(info.run_id, threading.Lock())
        fresh = cached is not None and time.monotonic() - cached.checked < self.recheck_s
        if cached is not None and cached.key == key:
            if not fresh:  # re-verified aside: no page waits for a periodic check
                self._recheck_aside(info, key, gate)
            return cached.view
        if cached is not None and info.event_count >= _BIG_RUN:
            # a big run that grew is re-read aside too (its page lags a few seconds)
            self._recheck_aside(info, key, gate)
            return cached.view
        with gate:  # one reader builds a run; the others wait for it
            return self._refresh(info, key)

    def _refresh(self, info: RunInfo, key: tuple[int, str | None]) -> RunView:
        with self._lock:
            cached = self._cache.get(info.run_id)
        if cached is not None and cached.key == key:
            if time.monotonic() - cached.checked < self.recheck_s:
                return cached.view
            report = self._verify(info.run_id)
            before = cached.view.verification
            if before is not None and (report.root, report.status) == (before.root, before.status):
                cached.checked = time.monotonic()
                return cached.view
        view = self._build(info)
        with self._lock:
            self._cache[info.run_id] = _Cached(key, view, time.monotonic())
            self._evict()
        return view

    def _recheck_aside(
        self, info: RunInfo, key: tuple[int, str | None], gate: threading.Lock
    ) -> None:
        if not gate.acquire(blocking=False):
            return  # being built or re-checked already

        def recheck() -> None:
            try:
                self._refresh(info, key)
            except Exception:  # the next look at the run reports it
                with self._lock:
                    self._cache.pop(info.run_id, None)
                raise
            finally:
                gate.release()

        self._aside(recheck)

    def _aside(self, work: Callable[[], object]) -> None:
        """Run ``work`` in the explorer's background thread (started on first use)."""
        self._due.put(work)
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._aside_loop, name="codon-ui-recheck", daemon=True
                )
                self._worker.start()

    def _aside_loop(self) -> None:
        """One thread does the re-checks and re-reads that are due, one at a time, in order."""
        while True:
            work = self._due.get()
            with contextlib.suppress(Exception):  # a store error: the next look reports it
                work()

    def _verify(self, run_id: str) -> Any:
        try:
            return verify_run(self.store, run_id)
        except RunNotFoundError:
            raise ExplorerError(
                f"run {run_id!r} is no longer in this ledger", status=404, code="run_not_found"
            ) from None

    def _build(self, info: RunInfo) -> RunView:
        report = self._verify(info.run_id)  # notes first: a growing run is never "shorter"
        try:
            entries = self.store.read(info.run_id)
        except RunNotFoundError:
            raise ExplorerError(
                f"run {info.run_id!r} is no longer in this ledger", status=404, code="run_not_found"
            ) from None
        except StoreError as exc:
            raise ExplorerError(
                f"cannot read run {info.run_id!r}: {exc}", status=503, code="store_unavailable"
            ) from exc
        return RunView(info.run_id, entries, report)

    def _evict(self) -> None:
        big = [k for k, c in self._cache.items() if c.view.event_count >= _BIG_RUN]
        for run_id in big[: max(0, len(big) - _CACHED_BIG)]:
            del self._cache[run_id]
        while len(self._cache) > _CACHED_RUNS:
            self._cache.popitem(last=False)


def _page(items: list[Any], offset: int, limit: int, total: int) -> dict[str, Any]:
    after = offset + len(items)
    return {
        "items": items,
        "offset": offset,
        "limit": limit,
        "total": total,
        "next_offset": after if after < total else None,
    }


def _status(view: RunView) -> str:
    return "unverified" if view.verification is None else view.verification.status


def _stale(info: RunInfo, now_us: int) -> bool:
    """A running run whose holder stopped renewing its lease (or that nobody holds)."""
    if info.status != "running":
        return False
    if info.owner is None:
        return True
    lease = info.lease_us if type(info.lease_us) is int and info.lease_us > 0 else 60_000_000
    return now_us - (info.heartbeat_us or info.started_us) > lease


page = _page
