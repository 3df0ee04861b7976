"""Erasure and retention over a store: erase a run, a subject, or every expired run.

The operations are in ``_erase_ops.py``; this module decides what to erase and checks it
first. A run is erased only when its chain holds (erasure never launders a tampered
history into a clean one), it is not running, and it is not under a legal hold. Each
erased event becomes a stand-in (``ledger/_erasure.py``), the erasure log gains a line,
the blobs only the erased events referred to are deleted (files beside a SQLite ledger
too), and the database is compacted (SQLite ``VACUUM`` and a truncated WAL; PostgreSQL
``VACUUM FULL`` of the tables that held the bytes), so the erased bytes are gone from
the database files, not just from its rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from codon_sdk._clock import now_us
from codon_sdk.errors import ConfigurationError, RunConflictError, RunHeldError, UntrustedRunError
from codon_sdk.ledger import (
    TERMINAL_STATUSES,
    ErasureLog,
    check_chain,
    check_erasure_log,
    leaf_hash,
    stand_in,
    subject_reason,
)
from codon_sdk.stores._base import LedgerStore, RunInfo, lease_is_stale
from codon_sdk.stores._blobs import BLOB_NEEDLE, DirectoryBlobStore, blob_refs, blob_store_for
from codon_sdk.stores._erase_ops import (
    WHOLE_RUN,
    Compact,
    EraseEvents,
    FindSubject,
    Hold,
    ListHolds,
    ListRetention,
    ReadErasures,
    SetHold,
    SetRetention,
    TagSubject,
)
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._sql import SQLStore

__all__ = [
    "Erasure",
    "apply_retention",
    "erase_run",
    "erase_subject",
    "erasure_log",
    "hold_run",
    "legal_holds",
    "release_run",
    "retention_policies",
    "set_retention",
    "tag_subject",
]

Progress = Callable[[int, int, str], None]
_DAY_US: Final = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure did (or, with ``dry_run``, would do) to one run."""

    run_id: str
    seqs: tuple[int, ...]
    reason: str
    dry_run: bool = False
    line: int | None = None
    blobs_deleted: tuple[str, ...] = ()


def erasure_log(store: LedgerStore) -> ErasureLog:
    """The store's erasure log, checked (``verify`` reads it the same way). A plug-in store
    that does not carry the erasure operations (it refuses them with ``TypeError`` or
    ``NotImplementedError``) has erased nothing: its log is empty."""
    try:
        lines = store.execute(ReadErasures())
    except (TypeError, NotImplementedError):
        if isinstance(store, (MemoryStore, SQLStore)):
            raise
        return ErasureLog()
    return check_erasure_log(lines)


def tag_subject(store: LedgerStore, subject: str, run_id: str, seq: int = WHOLE_RUN) -> None:
    """Record ``subject`` against run ``run_id`` (``seq``: one event of it)."""
    store.execute(TagSubject(check_subject(subject), run_id, seq))


def check_subject(subject: object) -> str:
    """``subject`` if it is a usable subject id (a non-empty string of at most 500 chars)."""
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 500:
        raise ConfigurationError(
            f"a subject id must be a non-empty string of at most 500 characters, got {subject!r}"
        )
    return subject


def erase_run(
    store: LedgerStore,
    run_id: str,
    *,
    reason: str,
    actor: str,
    seqs: Sequence[int] | None = None,
    dry_run: bool = False,
    compact: bool = True,
) -> Erasure:
    """Erase events of ``run_id`` (``seqs``; None: every event) for ``reason``, as ``actor``.

    Refused (nothing erased): a running run (``RunConflictError``), a held one
    (``RunHeldError``), one whose chain does not hold (``UntrustedRunError``).
    """
    info = store.get_run(run_id)
    _check_erasable(store, info)
    entries = store.read(run_id)
    permits = erasure_log(store).of(run_id)
    chain = check_chain(entries, run_id=run_id, permits=permits)
    if not chain.ok:
        raise UntrustedRunError(
            f"run {run_id} does not verify ({chain}), so it is not erased: erasing it would "
            "hide the tampering; run `codon verify` and investigate",
            findings=(str(chain),),
        )
    wanted = range(len(entries)) if seqs is None else sorted(set(seqs))
    chosen = [s for s in wanted if 0 <= s < len(entries) and s not in permits]
    if not chosen or dry_run:
        return Erasure(run_id, tuple(chosen), reason, dry_run=True)
    digests = sorted({d for s in chosen for d in _digests(entries[s])})
    line, gone = store.execute(
        EraseEvents(
            run_id=run_id,
            seen=(info.owner, info.heartbeat_us, info.event_count),
            rows=tuple((s, stand_in(entries[s])) for s in chosen),
            leaves=tuple(leaf_hash(entries[s]) for s in chosen),
            reason=reason,
            actor=actor,
            erased_us=now_us(),
            blobs=tuple(digests),
            whole=seqs is None,
        )
    )
    _delete_files(store, gone)
    if compact:
        store.execute(Compact())
    return Erasure(run_id, tuple(chosen), reason, line=line.idx, blobs_deleted=tuple(gone))


def _check_erasable(store: LedgerStore, info: RunInfo) -> None:
    if info.status == "running" and not lease_is_stale(info, now_us=now_us()):
        raise RunConflictError(
            f"run {info.run_id!r} is running (held by {info.owner!r}): it is not erased while "
            "it runs; erase it once it has ended"
        )
    holds = {h.run_id: h for h in store.execute(ListHolds())}
    if info.run_id in holds:
        hold = holds[info.run_id]
        raise RunHeldError(
            f"run {info.run_id!r} is under a legal hold ({hold.reason!r}, by {hold.actor!r}) "
            f"and is not erased; release it first (codon retention release {info.run_id}) "
            "when the hold has ended"
        )


def _digests(entry: bytes) -> list[str]:
    if BLOB_NEEDLE not in entry:
        return []
    return [str(ref["sha256"]) for ref in blob_refs(orjson.loads(entry))]


def _delete_files(store: LedgerStore, digests: Sequence[str]) -> None:
    blobs = blob_store_for(store)
    if not isinstance(blobs, DirectoryBlobStore):
        return  # kept in the database: the erasing transaction deleted them
    for digest in digests:
        with contextlib.suppress(FileNotFoundError):
            blobs.file(digest).unlink()


def erase_subject(
    store: LedgerStore,
    subject: str,
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[Erasure]:
    """Erase everything ``subject`` was recorded against: whole runs (``execute(...,
    subject=)``) and single events (``record_event(..., subject=)``). An unknown subject
    erases nothing and returns an empty list. Checks every run before erasing any."""
    tags = store.execute(FindSubject(check_subject(subject)))
    whole = {run_id for run_id, seq in tags if seq == WHOLE_RUN}
    by_run: dict[str, list[int] | None] = dict.fromkeys(whole)
    for run_id, seq in tags:
        if run_id not in whole:
            events = by_run.setdefault(run_id, [])
            if events is not None:
                events.append(seq)
    runs = [store.get_run(r) for r in sorted(by_run) if store.has_run(r)]
    for info in runs:
        _check_erasable(store, info)
    return _erase_each(
        store,
        [(info.run_id, by_run[info.run_id]) for info in runs],
        reason=subject_reason(subject),
        actor=actor,
        dry_run=dry_run,
        progress=progress,
    )


def _erase_each(
    store: LedgerStore,
    plan: Sequence[tuple[str, list[int] | None]],
    *,
    reason: str,
    actor: str,
    dry_run: bool,
    progress: Progress | None,
) -> list[Erasure]:
    done: list[Erasure] = []
    for n, (run_id, seqs) in enumerate(plan, 1):
        erased = erase_run(
            store, run_id, reason=reason, actor=actor, seqs=seqs, dry_run=dry_run, compact=False
        )
        done.append(erased)
        if progress is not None:
            progress(n, len(plan), run_id)
    if not dry_run and any(e.seqs for e in done):
        store.execute(Compact())
    return done


def expired_runs(
    store: LedgerStore, *, older_than_s: float | None, now: int | None = None
) -> list[RunInfo]:
    """Ended, unheld runs past their retention: ``older_than_s`` for every run, else each
    workload's policy (``set_retention``); runs of workloads with no policy are kept."""
    now = now_us() if now is None else now
    policies = dict(store.execute(ListRetention()))
    held = {h.run_id for h in store.execute(ListHolds())}
    out = []
    for info in store.runs():
        if info.status not in TERMINAL_STATUSES or info.run_id in held:
            continue
        end = info.finished_us or info.started_us
        if older_than_s is not None:
            limit = int(older_than_s * 1_000_000)
        elif info.workload_name in policies:
            limit = int(policies[info.workload_name]) * _DAY_US
        else:
            continue
        if now - end > limit:
            out.append(info)
    return out


def apply_retention(
    store: LedgerStore,
    *,
    older_than_s: float | None = None,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: int | None = None,
) -> list[Erasure]:
    """Erase every event of each expired run (:func:`expired_runs`, as of ``now``, in
    microseconds since the epoch: default the present); runs already erased whole are
    skipped."""
    if older_than_s is not None and (older_than_s != older_than_s or older_than_s < 0):
        raise ConfigurationError(f"older_than must be a positive duration, got {older_than_s!r}")
    log = erasure_log(store)
    plan: list[tuple[str, list[int] | None]] = [
        (info.run_id, None)
        for info in expired_runs(store, older_than_s=older_than_s, now=now)
        if len(log.of(info.run_id)) < info.event_count
    ]
    reason = (
        f"retention:older-than-{older_than_s:g}s"
        if older_than_s is not None
        else "retention:workload-policy"
    )
    return _erase_each(store, plan, reason=reason, actor=actor, dry_run=dry_run, progress=progress)


def hold_run(store: LedgerStore, run_id: str, *, reason: str, actor: str) -> bool:
    """Put a legal hold on ``run_id`` (it is not erased until released); False if held."""
    store.get_run(run_id)  # an unknown run: RunNotFoundError
    hold = Hold(run_id=run_id, reason=reason, actor=actor, held_us=now_us())
    return bool(store.execute(SetHold(run_id=run_id, hold=hold)))


def release_run(store: LedgerStore, run_id: str) -> bool:
    """Release the legal hold on ``run_id``; False if it had none."""
    return bool(store.execute(SetHold(run_id=run_id, hold=None)))


def legal_holds(store: LedgerStore) -> list[Hold]:
    """Every legal hold, by run id."""
    return list(store.execute(ListHolds()))


def set_retention(store: LedgerStore, workload_name: str, days: int | None) -> None:
    """Keep the runs of ``workload_name`` for ``days`` days (None: no policy)."""
    if days is not None and (type(days) is not int or days < 1):
        raise ConfigurationError(
            f"retention days must be a whole number of days, at least 1, got {days!r}"
        )
    store.execute(SetRetention(workload_name=workload_name, days=days, set_us=now_us()))


def retention_policies(store: LedgerStore) -> list[tuple[str, int]]:
    """``[(workload_name, days), ...]``."""
    return list(store.execute(ListRetention()))
