"""``verify_run`` and ``verify_all``: read a run (or every run) from a store and verify it.

Thin wrappers: the checks themselves are pure functions in ``ledger/_verify.py``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from codon_sdk.ledger._note import Verifier
from codon_sdk.ledger._verify import (
    Finding,
    LogVerification,
    VerificationReport,
    verify_entries,
    verify_runs_log,
)
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._open import open_store

__all__ = ["StoreVerification", "verify_all", "verify_run"]

Checkpoints = Iterable[bytes | str | os.PathLike[str]]
_ENDED = frozenset({"completed", "stopped", "failed"})


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


def verify_run(
    store: str | LedgerStore,
    run_id: str,
    *,
    vkeys: Iterable[str | Verifier] | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerificationReport:
    """Verify one run: its chain, leaves, end, stored checkpoints and ``checkpoints`` you hold.

    ``vkeys`` are the verifier keys whose signatures are trusted (without them,
    signatures are not checked and nothing is "verified"); ``checkpoints`` are
    signed checkpoint notes (bytes, text or file paths) kept outside the database.
    Raises ``RunNotFoundError`` for an unknown run.
    """
    ledger = open_store(store)
    try:
        info = ledger.get_run(run_id)
        entries = ledger.read(run_id)
        stored = [note for _, note in ledger.checkpoints(run_id)]
    finally:
        if ledger is not store:
            ledger.close()
    report = verify_entries(
        run_id,
        entries,
        stored_checkpoints=stored,
        external_checkpoints=_notes(checkpoints),
        vkeys=list(vkeys) if vkeys is not None else None,
        index_says_ended=info.status in _ENDED,
        index_event_count=info.event_count,
        index_head=info.head,
    )
    return report


@dataclass(frozen=True, slots=True)
class StoreVerification:
    """Every run of a store verified, plus the log of finished runs."""

    runs: list[VerificationReport]
    log: LogVerification
    missing_from_log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs) and self.log.ok and not self.missing_from_log

    @property
    def findings(self) -> list[Finding]:
        extra = [
            Finding(None, "not_logged", f"run {run_id} ended but is not in the log of runs")
            for run_id in self.missing_from_log
        ]
        return [*self.log.findings, *extra]


def verify_all(
    store: str | LedgerStore,
    *,
    vkeys: Iterable[str | Verifier] | None = None,
    log_checkpoints: Checkpoints | None = None,
    progress: Callable[[int, int, VerificationReport], None] | None = None,
) -> StoreVerification:
    """Verify every run of a store and the log of runs (so a deleted run shows).

    ``log_checkpoints`` are signed checkpoints of the log of runs kept outside the
    database; stored ones are checked too. ``progress(done, total, report)`` is
    called after each run.
    """
    ledger = open_store(store)
    keys = list(vkeys) if vkeys is not None else None
    try:
        infos = ledger.runs()
        reports: list[VerificationReport] = []
        for n, info in enumerate(infos, 1):
            report = verify_run(ledger, info.run_id, vkeys=keys)
            reports.append(report)
            if progress is not None:
                progress(n, len(infos), report)
        logged = ledger.runs_log()
        stored = [note for _, note in ledger.checkpoints("")]
    finally:
        if ledger is not store:
            ledger.close()
    now = {r.run_id: (r.event_count, bytes.fromhex(r.root)) for r in reports}
    log = verify_runs_log(
        [(run_id, size, root) for _, run_id, size, root in logged],
        now,
        checkpoints=[*stored, *_notes(log_checkpoints)],
        vkeys=keys,
    )
    in_log = {run_id for _, run_id, _, _ in logged}
    ended = [info.run_id for info in infos if info.status in _ENDED]
    return StoreVerification(
        runs=reports, log=log, missing_from_log=[rid for rid in ended if rid not in in_log]
    )
