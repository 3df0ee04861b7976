"""The tamper matrix: every kind of edit, with and without keys and exported checkpoints,
and the exact status word and findings ``verify --all`` gives for each.

A store holds a finished run (``run-a``, 38 events), a second finished run (``run-b``) and
a paused run (``paused``). Each case edits the database underneath the SDK as an attacker
with write access would; the auditor then verifies the whole store:

* ``signed``: the store has a notary (checkpoints every 5 events, at pauses and ends,
  exported to a directory); the auditor holds the verifier key and the export directory;
* ``plain``: no notary, no key, no export: only the chain and the log of runs can tell.

Each row says what must be reported: the status word of the run concerned and the set of
tamper finding codes on the run (findings of the log of runs about a run count against the
run too: a consistent rewrite still reads as tampered when the log remembers the run) and
on the log of runs. Where an edit cannot be detected in a mode it says so with no finding:
without signed checkpoints, deleting the newest run together with its lines in the log
leaves nothing behind (``plain``, ``delete-paused-run``), and an edited checkpoint is not
looked at when there is no notary to have made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.stores._open import open_store
from codon_sdk.stores._verify import verify_all

from ._tamper import Database, rechain
from ._workloads import build_pausing, build_v1
from .conftest import AuditLedger

RUN, OTHER, PAUSED = "run-a", "run-b", "paused"
MID = 13


def _edit_in_place(db: Database) -> None:
    entry = orjson.loads(db.entries(RUN)[MID])
    entry["payload"]["decision"] = "review"
    db.set_entry(RUN, MID, json_canonical(entry))


def _edit_rechained(db: Database) -> None:
    entries = [orjson.loads(e) for e in db.entries(RUN)]
    entries[MID]["payload"]["decision"] = "review"
    _replace(db, RUN, rechain([json_canonical(e) for e in entries]))


def _delete(db: Database) -> None:
    db.delete_events(RUN, [MID])


def _delete_rechained(db: Database) -> None:
    entries = db.entries(RUN)
    _replace(db, RUN, rechain(entries[:MID] + entries[MID + 1 :]))


def _insert(db: Database) -> None:
    entries = db.entries(RUN)
    _replace(db, RUN, [*entries[:MID], entries[MID], *entries[MID:]], rechained=False)


def _reorder(db: Database) -> None:
    entries = db.entries(RUN)
    entries[MID], entries[MID + 1] = entries[MID + 1], entries[MID]
    _replace(db, RUN, entries, rechained=False)


def _truncate(db: Database) -> None:
    """The tail cut off, the index edited to match (status and counts), no end event."""
    entries = db.entries(RUN)[:-5]
    db.delete_events(RUN, range(len(entries), len(entries) + 5))
    db.update_run(
        RUN,
        event_count=len(entries),
        head=leaf_hash(entries[-1]).hex(),
        status="running",
        finished_us=None,
    )


def _splice(db: Database) -> None:
    db.set_entry(RUN, MID, db.entries(OTHER)[MID])


def _delete_finished(db: Database) -> None:
    db.delete_run(RUN)


def _delete_paused(db: Database) -> None:
    db.delete_run(PAUSED)


def _delete_paused_rows(db: Database) -> None:
    """The paused run's rows gone, its lines in the log of runs left as they were."""
    db.delete_events(PAUSED, range(100))
    db._sql("DELETE FROM codon_runs WHERE run_id = ?", (PAUSED,))
    db.delete_checkpoints(PAUSED)


def _edit_checkpoint(db: Database) -> None:
    held = db.checkpoints(RUN)
    if not held:  # no notary made any: nothing to edit
        return
    size, note = held[-1]
    db.set_checkpoint(RUN, size, note.replace(b"\n38\n", b"\n37\n"))


def _rollback(db: Database) -> None:
    """Back to an earlier state: the last events and the checkpoints covering them gone, the
    index rewound to match, as restoring an old backup of the events would leave it."""
    keep = 30
    db.delete_events(RUN, range(keep, 38))
    db.delete_checkpoints(RUN, [35, 38])
    entries = db.entries(RUN)
    db.update_run(
        RUN,
        event_count=keep,
        head=leaf_hash(entries[-1]).hex(),
        status="running",
        finished_us=None,
    )


def _replace(db: Database, run_id: str, entries: list[bytes], *, rechained: bool = True) -> None:
    db.rewrite_run(run_id, entries)
    if rechained:
        db.update_run(run_id, event_count=len(entries), head=leaf_hash(entries[-1]).hex())


@dataclass(frozen=True)
class Case:
    name: str
    tamper: Callable[[Database], None] | None
    run_id: str
    #: mode -> (status of run_id, or "deleted"; tamper codes on the run; tamper codes on the log)
    expect: dict[str, tuple[str, frozenset[str], frozenset[str]]]


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


NONE = _codes()
CASES = [
    Case(
        "untouched",
        None,
        RUN,
        {
            "signed": ("verified", NONE, NONE),
            "plain": ("unanchored", NONE, NONE),
        },
    ),
    Case(
        "edit",
        _edit_in_place,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("chain", "checkpoint_root", "run_changed"),
                _codes("run_changed"),
            ),
            "plain": ("tampered", _codes("chain", "run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "edit-rechained",
        _edit_rechained,
        RUN,
        {
            "signed": ("tampered", _codes("checkpoint_root", "run_changed"), _codes("run_changed")),
            "plain": ("tampered", _codes("run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "delete",
        _delete,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("chain", "checkpoint_root", "index_count", "run_changed", "truncated"),
                _codes("run_changed"),
            ),
            "plain": (
                "tampered",
                _codes("chain", "index_count", "run_changed"),
                _codes("run_changed"),
            ),
        },
    ),
    Case(
        "delete-rechained",
        _delete_rechained,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("checkpoint_missing", "checkpoint_root", "run_changed", "truncated"),
                _codes("run_changed"),
            ),
            "plain": ("tampered", _codes("run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "insert",
        _insert,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("chain", "checkpoint_root", "run_changed"),
                _codes("run_changed"),
            ),
            "plain": ("tampered", _codes("chain", "run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "reorder",
        _reorder,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("chain", "checkpoint_root", "run_changed"),
                _codes("run_changed"),
            ),
            "plain": ("tampered", _codes("chain", "run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "truncate",
        _truncate,
        RUN,
        {
            "signed": ("tampered", _codes("run_changed", "truncated"), _codes("run_changed")),
            "plain": ("tampered", _codes("run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "splice",
        _splice,
        RUN,
        {
            "signed": (
                "tampered",
                _codes("chain", "checkpoint_root", "run_changed"),
                _codes("run_changed"),
            ),
            "plain": ("tampered", _codes("chain", "run_changed"), _codes("run_changed")),
        },
    ),
    Case(
        "delete-finished-run",
        _delete_finished,
        RUN,
        {
            "signed": (
                "deleted",
                NONE,
                _codes("runs_log_gap", "runs_log_root", "runs_log_truncated"),
            ),
            "plain": ("deleted", NONE, _codes("runs_log_gap")),
        },
    ),
    Case(
        "delete-paused-run",
        _delete_paused,
        PAUSED,
        {
            "signed": ("deleted", NONE, _codes("runs_log_truncated")),
            "plain": ("deleted", NONE, NONE),
        },
    ),
    Case(
        "delete-paused-run-rows-only",
        _delete_paused_rows,
        PAUSED,
        {
            "signed": ("deleted", NONE, _codes("run_deleted")),
            "plain": ("deleted", NONE, _codes("run_deleted")),
        },
    ),
    Case(
        "edit-checkpoint",
        _edit_checkpoint,
        RUN,
        {
            "signed": ("tampered", _codes("checkpoint_missing", "checkpoint_signature"), NONE),
            "plain": ("unanchored", NONE, NONE),
        },
    ),
    Case(
        "rollback",
        _rollback,
        RUN,
        {
            "signed": ("tampered", _codes("run_changed", "truncated"), _codes("run_changed")),
            "plain": ("tampered", _codes("run_changed"), _codes("run_changed")),
        },
    ),
]


@pytest.fixture(params=["signed", "plain"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_tamper_matrix(ledger: AuditLedger, mode: str, case: Case) -> None:
    """Each edit gives the exact status word and tamper findings the matrix states."""
    store = ledger.store if mode == "signed" else open_store(ledger.url, notary=None)
    try:
        wl = build_v1()
        for run_id in (RUN, OTHER):
            wl.execute(
                {"topic": run_id, "limit": 4},
                deployment_id="audit",
                store=store,
                run_id=run_id,
                quote_url=ledger.service.url,
            )
        build_pausing().execute({"n": 2}, deployment_id="audit", store=store, run_id=PAUSED)
        if case.tamper is not None:
            case.tamper(ledger.db)
        outcome = verify_all(
            store,
            vkeys=[ledger.vkey] if mode == "signed" else None,
            checkpoint_dir=ledger.sink_dir if mode == "signed" else None,
        )
    finally:
        if store is not ledger.store:
            store.close()
    status, run_codes, log_codes = case.expect[mode]
    reports = {r.run_id: r for r in outcome.runs}
    found_log = frozenset(f.code for f in outcome.findings if f.tamper)
    if status == "deleted":
        assert case.run_id not in reports
    else:
        report = reports[case.run_id]
        found = frozenset(f.code for f in report.findings if f.tamper)
        assert (report.status, found) == (status, run_codes), report.summary()
    assert found_log == log_codes, [str(f) for f in outcome.findings]
    untouched = {r.status for rid, r in reports.items() if rid not in (case.run_id,)}
    assert untouched <= {"verified", "unanchored", "incomplete"}
    clean = status in ("verified", "unanchored", "incomplete", "deleted") and not run_codes
    assert outcome.ok == (clean and not log_codes)
