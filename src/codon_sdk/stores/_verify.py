"""``verify_run`` and ``verify_all``: read a run (or every run) from a store and verify it.

Thin wrappers: the checks themselves are pure functions in ``ledger/_verify.py``
(a run) and ``ledger/_runs_log.py`` (the log of runs). Everything read here is
hostile input: a read or a check that raises becomes a verdict (that run's
``tampered`` report with an ``unreadable`` finding), never a traceback, and never
keeps ``verify_all`` from reporting the other runs. Only the caller's own
mistakes raise: an unknown run id, a malformed verifier key, an unreachable store.

Signed approvals a run records are checked against the store's keyring of approvers
for the run's workload as it is now (``stores/_approvers.py``).

Checkpoints held outside the database come from ``checkpoints`` (notes, note
text or files) and from a checkpoint directory (where ``FileCheckpointSink``
exports them, ``CODON_CHECKPOINT_DIR`` in the CLI).
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, overload

from codon_sdk.errors import RunNotFoundError, StoreConnectionError, StoreError
from codon_sdk.ledger import (
    TERMINAL_STATUSES,
    ErasureLog,
    Finding,
    LoggedRun,
    LogVerification,
    VerificationReport,
    Verifier,
    chain_leaf,
    leaf_hash,
    verify_entries,
    verify_runs_log,
)
from codon_sdk.stores._base import LedgerStore, RunInfo, lease_is_stale, lease_seconds
from codon_sdk.stores._blobs import BLOB_NEEDLE, blob_findings, blob_store_for
from codon_sdk.stores._erase import erasure_log
from codon_sdk.stores._keyring import approver_keys
from codon_sdk.stores._notary import FileCheckpointSink
from codon_sdk.stores._open import open_store
from codon_sdk.stores._paged import PagedEntries

__all__ = ["StoreVerification", "verify_all", "verify_run"]

Checkpoints = Iterable[bytes | str | os.PathLike[str]]
Directory = str | os.PathLike[str]
_ENDED = frozenset(TERMINAL_STATUSES)


def _notes(checkpoints: Checkpoints | None) -> list[bytes]:
    """Checkpoint notes given as bytes, note text, or paths of note files."""
    out: list[bytes] = []
    for item in checkpoints or ():
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str) and "\n" in item:
            out.append(item.encode("utf-8"))
        else:
            out.append(pathlib.Path(item).read_bytes())
    return out


def _exported(checkpoint_dir: Directory | None, run_id: str) -> list[bytes]:
    """The notes a checkpoint directory holds for ``run_id`` (``""``: the log of runs)."""
    return [] if checkpoint_dir is None else FileCheckpointSink(checkpoint_dir).notes(run_id)


def _keys(vkeys: Iterable[str | Verifier] | None) -> list[Verifier] | None:
    """Verifier keys parsed once, up front: a malformed key is the caller's mistake
    (``CheckpointError``), not a finding about some run."""
    if vkeys is None:
        return None
    return [key if isinstance(key, Verifier) else Verifier.from_vkey(key) for key in vkeys]


def verify_run(
    store: str | LedgerStore,
    run_id: str,
    *,
    vkeys: Iterable[str | Verifier] | None = None,
    checkpoints: Checkpoints | None = None,
    checkpoint_dir: Directory | None = None,
) -> VerificationReport:
    """Verify one run: its chain, leaves, end, stored checkpoints and ``checkpoints`` you hold.

    ``vkeys`` are the verifier keys whose signatures are trusted (without them,
    signatures are not checked and nothing is "verified"); ``checkpoints`` are
    signed checkpoint notes (bytes, text or file paths) kept outside the database,
    and ``checkpoint_dir`` a directory a ``FileCheckpointSink`` exported them to.
    Raises ``RunNotFoundError`` for an unknown run; whatever the run's data holds,
    the answer is a report.
    """
    keys = _keys(vkeys)
    ledger = open_store(store)
    try:
        external = [*_notes(checkpoints), *_exported(checkpoint_dir, run_id)]
        return _verify_one(ledger, run_id, keys, external, _erasures(ledger)).report
    finally:
        if ledger is not store:
            ledger.close()


@dataclass(frozen=True, slots=True)
class _Read:
    """One run verified: its report, what the log of runs is checked against, and whether
    checkpoints are stored with it (the store signs)."""

    report: VerificationReport
    now: LoggedRun
    signed: bool = False


def _erasures(ledger: LedgerStore) -> ErasureLog | Exception:
    """The store's erasure log, checked; what reading it raised, as a verdict for later."""
    try:
        return erasure_log(ledger)
    except StoreConnectionError:
        raise
    except Exception as exc:  # hostile rows: each run's verdict says so
        return exc


def _verify_one(
    ledger: LedgerStore,
    run_id: str,
    keys: list[Verifier] | None,
    external: list[bytes],
    erasures: ErasureLog | Exception,
) -> _Read:
    """One run's report (notes held outside are read before its entries, so a run going on
    meanwhile is never "shorter" than an exported checkpoint)."""
    try:
        if isinstance(erasures, Exception):
            raise erasures
        info = ledger.get_run(run_id)
        stored = [note for _, note in ledger.checkpoints(run_id)]
        count = info.event_count
        if type(count) is int and count >= 0:  # read once, in pages, trusting no count
            read = _verify_read(ledger, run_id, info, keys, external, stored, erasures, count)
            if read is not None:
                return read
        return _verify_read(ledger, run_id, info, keys, external, stored, erasures, None) or _Read(
            _unreadable(run_id, StoreError("the run could not be read")), _UNREAD
        )
    except (RunNotFoundError, StoreConnectionError):
        raise
    except Exception as exc:  # hostile data: a verdict, not a traceback
        return _Read(_unreadable(run_id, exc), _UNREAD)


_UNREAD: Final = LoggedRun(event_count=0, root=b"", readable=False)


def _verify_read(
    ledger: LedgerStore,
    run_id: str,
    info: RunInfo,
    keys: list[Verifier] | None,
    external: list[bytes],
    stored: list[bytes],
    erasures: ErasureLog,
    count: int | None,
) -> _Read | None:
    """The run's report from its entries read a page at a time: with ``count``, pages of
    seqs assumed full (one pass), None when the run turned out otherwise (damaged, or it
    grew: the caller reads it again counting); without, counted first (``scan``)."""
    if count is None:
        entries = PagedEntries.scan(ledger, run_id)
    else:
        entries = PagedEntries.expecting(ledger, run_id, count)
    needles: list[int] = []  # where the pages whose entries may refer to blobs begin
    entries.on_rows = lambda at, rows: _note_needle(needles, at, rows)
    try:
        first = _first_leaf(entries)  # page 0 first: the walk then starts on the page held
        ended = info.status in _ENDED
        report = verify_entries(
            run_id,
            entries,
            stored_checkpoints=stored,
            external_checkpoints=external,
            vkeys=keys,
            index_says_ended=ended,
            index_event_count=info.event_count,
            index_head=info.head,
            approvers=_Keyring(ledger, info.workload_name),
            erasures=erasures,
        )
        if not entries.confirm():
            return None
        if count is None:  # the scan's first page was read before ``on_rows`` was set
            needles = [at for at, rows in entries.pages() if BLOB_NEEDLE in b"".join(rows)]
        report = _with_blobs(report, entries, needles, ledger)
    except StoreError:
        if entries.diverged:  # a page held other rows than assumed: read the run counting
            return None
        raise
    finally:
        entries.on_rows = None
    now = LoggedRun(
        event_count=report.event_count,
        root=bytes.fromhex(report.root),
        first_leaf=first,
        ended=ended,
    )
    return _Read(_with_reason(report, info), now, bool(stored))


def _note_needle(needles: list[int], at: int, rows: list[bytes]) -> None:
    if at not in needles and BLOB_NEEDLE in b"".join(rows):
        needles.append(at)


class _Keyring(Sequence[Verifier]):
    """The approvers of a workload, read from the store the first time a recorded approval
    is checked: verifying a run that records none costs no query."""

    def __init__(self, ledger: LedgerStore, workload: str) -> None:
        self._ledger, self._workload = ledger, workload
        self._keys: list[Verifier] | None = None

    def _loaded(self) -> list[Verifier]:
        if self._keys is None:
            self._keys = approver_keys(self._ledger, self._workload)
        return self._keys

    def __len__(self) -> int:
        return len(self._loaded())

    @overload
    def __getitem__(self, index: int) -> Verifier: ...

    @overload
    def __getitem__(self, index: slice) -> list[Verifier]: ...

    def __getitem__(self, index: int | slice) -> Verifier | list[Verifier]:
        return self._loaded()[index]


def _verify_listed(
    ledger: LedgerStore,
    run_id: str,
    keys: list[Verifier] | None,
    directory: Directory | None,
    erasures: ErasureLog | Exception,
) -> _Read:
    """A run as ``verify_all`` lists it: even its id is read back from the store, so a hostile
    one (not a string, not a file name) is that run's verdict too."""
    try:
        external = _exported(directory, run_id)
    except OSError:
        raise  # the checkpoint directory itself is unreadable: the caller's to fix
    except Exception as exc:
        return _Read(_unreadable(run_id, exc), LoggedRun(event_count=0, root=b"", readable=False))
    try:
        return _verify_one(ledger, run_id, keys, external, erasures)
    except RunNotFoundError as exc:  # listed, then gone, or an id no lookup finds
        return _Read(_unreadable(run_id, exc), _UNREAD)


def _first_leaf(entries: Sequence[bytes]) -> bytes | None:
    if not entries:
        return None
    first = entries[0]
    # an entry that is not bytes was written by something else: it matches no logged leaf
    if type(first) is not bytes:
        return leaf_hash(b"\x00" + repr(first).encode())
    return chain_leaf(first)[0]  # an erased run_started: its original leaf, as logged


def _unreadable(run_id: str, exc: BaseException) -> VerificationReport:
    return VerificationReport(
        run_id=run_id,
        status="tampered",
        event_count=0,
        head=None,
        root="",
        findings=(
            Finding(
                None,
                "unreadable",
                f"the run could not be read or verified ({type(exc).__name__}: {exc}): its "
                "rows hold data no codon store writes",
            ),
        ),
    )


def _with_blobs(
    report: VerificationReport, entries: PagedEntries, needles: list[int], ledger: LedgerStore
) -> VerificationReport:
    """``report`` with a tamper finding for each missing or altered blob (``_blobs.py``) the
    entries of the pages that begin at ``needles`` refer to (the others refer to none)."""
    if not needles:
        return report
    blobs = blob_store_for(ledger)
    found: list[Finding] = []
    for at in sorted(needles):
        _, rows = entries._page_of(at)
        found += [
            replace(f, seq=None if f.seq is None else f.seq + at)
            for f in blob_findings(list(rows), blobs)
        ]
    checked = (*report.checked, "blobs the entries refer to: present, size and SHA-256")
    if not found:
        return replace(report, checked=checked)
    return replace(report, status="tampered", findings=(*report.findings, *found), checked=checked)


def _with_reason(report: VerificationReport, info: RunInfo) -> VerificationReport:
    """An incomplete run's report with why, from its runs index: paused, running, or left."""
    if report.status != "incomplete":
        return report
    now = time.time_ns() // 1000
    if info.status == "interrupted":
        reason = "paused (interrupted): it waits to be resumed"
    elif info.status != "running":
        return report
    elif info.owner is not None and not lease_is_stale(info, now_us=now):
        ago = (now - (info.heartbeat_us or info.started_us)) / 1e6
        reason = f"running: held by {info.owner}, last heartbeat {ago:.0f}s ago"
    else:
        reason = (
            f"not running: its holder stopped without ending it (crashed, or its lease of "
            f"{lease_seconds(info):g}s expired); resume it to finish it"
        )
    note = Finding(None, "run_status", f"the runs index says the run is {reason}", False)
    return replace(report, findings=(*report.findings, note))


@dataclass(frozen=True, slots=True)
class StoreVerification:
    """Every run of a store verified, plus the log of runs.

    ``ok`` means nothing was tampered with: runs still running or paused (verdict
    ``incomplete``) do not count against it, so ``verify --all`` can be an alarm.
    """

    runs: list[VerificationReport]
    log: LogVerification
    missing_from_log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.tampered and self.log.ok

    @property
    def tampered(self) -> list[VerificationReport]:
        """The runs whose verdict is ``tampered``."""
        return [r for r in self.runs if r.status == "tampered"]

    @property
    def findings(self) -> list[Finding]:
        """What the log of runs showed (its notes included)."""
        return list(self.log.findings)


def verify_all(
    store: str | LedgerStore,
    *,
    vkeys: Iterable[str | Verifier] | None = None,
    log_checkpoints: Checkpoints | None = None,
    progress: Callable[[int, int, VerificationReport], None] | None = None,
    checkpoint_dir: Directory | None = None,
) -> StoreVerification:
    """Verify every run of a store and the log of runs (so a deleted run shows).

    ``log_checkpoints`` are signed checkpoints of the log of runs kept outside the
    database; stored ones are checked too. ``checkpoint_dir`` (where a
    ``FileCheckpointSink`` exported notes) supplies each run's exported notes and
    the log's. ``progress(done, total, report)`` is called after each run.
    """
    keys = _keys(vkeys)
    ledger = open_store(store)
    try:
        # The log is read before the runs and again after them: every run listed has its
        # start line in the second read, and every line of the first names a listed run,
        # so runs begun or ended meanwhile are not mistaken for planted or deleted ones.
        before = ledger.runs_log()
        infos = ledger.runs()
        reports: list[VerificationReport] = []
        now: dict[str, LoggedRun] = {}
        signed = False
        erasures = _erasures(ledger)
        for n, info in enumerate(infos, 1):
            read = _verify_listed(ledger, info.run_id, keys, checkpoint_dir, erasures)
            reports.append(read.report)
            now[info.run_id] = read.now
            signed = signed or read.signed
            if progress is not None:
                progress(n, len(infos), read.report)
        stored = [note for _, note in ledger.checkpoints("")]
        external = [*_notes(log_checkpoints), *_exported(checkpoint_dir, "")]
        logged = ledger.runs_log()
    finally:
        if ledger is not store:
            ledger.close()
    log = verify_runs_log(
        logged,
        now,
        stored_checkpoints=stored,
        external_checkpoints=external,
        vkeys=keys,
        settled=len(before),
        has_checkpoints=signed or bool(stored),
    )
    finished = {line[1] for line in logged if len(line) == 4 and line[2] != 1}
    missing = sorted((r for r, run in now.items() if run.ended and r not in finished), key=str)
    reports = [_with_log_findings(report, log) for report in reports]
    return StoreVerification(runs=reports, log=log, missing_from_log=missing)


def _with_log_findings(report: VerificationReport, log: LogVerification) -> VerificationReport:
    """A run's report with what the log of runs found against it: a run whose ledger was
    rewritten consistently still reads as tampered when the log remembers it otherwise
    (the strongest word the evidence supports)."""
    against = tuple(f for f in log.findings if f.tamper and f.run_id == report.run_id)
    if not against:
        return report
    return replace(report, status="tampered", findings=(*report.findings, *against))
