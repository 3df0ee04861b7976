"""The log of runs on real ledgers: every run is logged when it starts, so deleting any run
shows; paused runs do not alarm ``verify --all``; the checkpoint directory anchors.

Runs are recorded on SQLite and PostgreSQL stores with a notary exporting every
signed note to a directory; the attacker edits the database underneath
(``_tamper.Database``), the triggers out of the way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import codon_sdk.stores._verify as store_verify
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.stores._verify import verify_all, verify_run

from ._checks import codon
from ._tamper import rechain
from ._workloads import build_pausing
from .conftest import AuditLedger

RUN, PAUSED, OTHER = "run-a", "run-p", "run-c"


def pause(ledger: AuditLedger, run_id: str) -> None:
    report = build_pausing().execute(
        {"n": 2}, deployment_id="audit", store=ledger.store, run_id=run_id
    )
    assert report.status == "interrupted"


@pytest.fixture
def three(ledger: AuditLedger) -> AuditLedger:
    """``run-a`` finished (lines 0, 1), ``run-p`` paused (line 2), ``run-c`` finished (3, 4)."""
    ledger.record(RUN, limit=1)
    pause(ledger, PAUSED)
    ledger.record(OTHER, limit=1)
    assert [(r, s > 1) for _, r, s, _ in ledger.store.runs_log()] == [
        (RUN, False),
        (RUN, True),
        (PAUSED, False),
        (OTHER, False),
        (OTHER, True),
    ]
    return ledger


def codes(findings: Any) -> set[str]:
    return {f.code for f in findings if f.tamper}


def test_a_paused_run_does_not_make_verify_all_fail(three: AuditLedger) -> None:
    outcome = verify_all(three.store, vkeys=[three.vkey])
    assert outcome.ok, [str(f) for f in outcome.findings]
    statuses = {r.run_id: r.status for r in outcome.runs}
    assert statuses == {RUN: "unanchored", PAUSED: "incomplete", OTHER: "unanchored"}
    code, out, _ = codon("verify", "--all", "--ledger", three.url, "--vkey", three.vkey)
    assert code == 0, out
    assert "INCOMPLETE" in out
    assert "paused (interrupted)" in out
    assert "nothing was tampered with" in out


def test_deleting_a_paused_run_with_its_start_line_leaves_a_gap(three: AuditLedger) -> None:
    three.db.delete_run(PAUSED)
    outcome = verify_all(three.store, vkeys=[three.vkey])
    assert not outcome.ok
    assert all(r.status != "tampered" for r in outcome.runs)  # only the log tells
    assert {"runs_log_gap", "runs_log_root"} <= codes(outcome.findings)
    assert any("no line 2" in f.message for f in outcome.findings)
    code, out, _ = codon("verify", "--all", "--ledger", three.url, "--vkey", three.vkey)
    assert code == 1
    assert "TAMPER" in out


def test_deleting_a_paused_run_but_not_its_line_names_the_run(three: AuditLedger) -> None:
    for table in ("codon_events", "codon_runs", "codon_checkpoints"):
        three.db._sql(f"DELETE FROM {table} WHERE run_id = ?", (PAUSED,))
    outcome = verify_all(three.store, vkeys=[three.vkey])
    deleted = [f for f in outcome.findings if f.code == "run_deleted"]
    assert len(deleted) == 1
    assert f"run {PAUSED} " in deleted[0].message


def test_deleting_the_newest_paused_run_and_its_signatures_is_caught_by_the_directory(
    ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The careful attacker removes the run, its start line and every stored log checkpoint
    that counted it: the database is consistent again, the exported notes are not."""
    ledger.record(RUN, limit=1)
    pause(ledger, PAUSED)
    ledger.db.delete_run(PAUSED)
    ledger.db.delete_checkpoints("", [3])
    assert verify_all(ledger.store, vkeys=[ledger.vkey]).ok  # nothing in the database tells
    outcome = verify_all(ledger.store, vkeys=[ledger.vkey], checkpoint_dir=ledger.sink_dir)
    assert "runs_log_truncated" in codes(outcome.findings)
    args = ["verify", "--all", "--ledger", ledger.url, "--vkey", ledger.vkey]
    code, _, _ = codon(*args, "--checkpoint-dir", str(ledger.sink_dir))
    assert code == 1
    monkeypatch.setenv("CODON_CHECKPOINT_DIR", str(ledger.sink_dir))
    code, _, _ = codon(*args)
    assert code == 1


def test_a_planted_run_without_a_start_line_is_caught(three: AuditLedger) -> None:
    entries = rechain(three.db.entries(OTHER), run_id="planted")
    three.db._sql(
        "INSERT INTO codon_runs (run_id, workload_name, workload_version, logic_id, "
        "deployment_id, status, started_us, event_count, head) "
        "SELECT 'planted', workload_name, workload_version, logic_id, deployment_id, "
        "'interrupted', started_us + 1, ?, ? FROM codon_runs WHERE run_id = ?",
        (len(entries), leaf_hash(entries[-1]).hex(), OTHER),
    )
    for seq, entry in enumerate(entries):
        three.db.insert_event("planted", seq, entry)
    outcome = verify_all(three.store, vkeys=[three.vkey])
    assert "not_started" in codes(outcome.findings)
    assert any("run planted" in f.message for f in outcome.findings)


def test_the_checkpoint_directory_anchors_every_run_and_the_log(three: AuditLedger) -> None:
    outcome = verify_all(three.store, vkeys=[three.vkey], checkpoint_dir=three.sink_dir)
    assert outcome.ok
    assert {r.run_id: r.status for r in outcome.runs}[RUN] == "verified"
    assert outcome.log.anchors
    single = verify_run(three.store, RUN, vkeys=[three.vkey], checkpoint_dir=three.sink_dir)
    assert single.status == "verified"
    code, out, _ = codon(
        "verify",
        RUN,
        "--ledger",
        three.url,
        "--vkey",
        three.vkey,
        "--checkpoint-dir",
        str(three.sink_dir),
    )
    assert code == 0
    assert "VERIFIED" in out


def test_a_run_start_is_signed_and_exported_before_the_run_goes_on(ledger: AuditLedger) -> None:
    pause(ledger, PAUSED)
    stored = [size for size, _ in ledger.store.checkpoints("")]
    assert stored == [1]
    assert [p.name for p in ledger.exported("")] == ["1.note"]
    assert verify_all(ledger.store, vkeys=[ledger.vkey]).findings == []


def test_an_exit_durability_run_signs_the_log_once_for_both_lines(ledger: AuditLedger) -> None:
    ledger.record(RUN, limit=1, durability="exit")
    assert [size for size, _ in ledger.store.checkpoints("")] == [2]


def test_a_missing_checkpoint_directory_is_a_usage_error(
    three: AuditLedger, tmp_path: Path
) -> None:
    code, _, err = codon(
        "verify", "--all", "--ledger", three.url, "--checkpoint-dir", str(tmp_path / "no")
    )
    assert code == 2
    assert "not a directory" in err


# --------------------------------------------------------------------------- hostile data


def test_one_run_whose_verification_raises_is_reported_and_the_others_still_are(
    three: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store_verify.verify_entries

    def explode(run_id: str, *args: Any, **kwargs: Any) -> Any:
        if run_id == PAUSED:
            raise RecursionError("maximum recursion depth exceeded")
        return real(run_id, *args, **kwargs)

    monkeypatch.setattr(store_verify, "verify_entries", explode)
    outcome = verify_all(three.store, vkeys=[three.vkey])
    statuses = {r.run_id: r.status for r in outcome.runs}
    assert statuses == {RUN: "unanchored", PAUSED: "tampered", OTHER: "unanchored"}
    bad = next(r for r in outcome.runs if r.run_id == PAUSED)
    assert [f.code for f in bad.findings] == ["unreadable"]
    assert "RecursionError" in bad.findings[0].message
    assert outcome.log.ok
    assert not outcome.ok


def test_a_runs_row_with_a_hostile_type_is_a_verdict_not_a_traceback(
    sqlite_ledger: AuditLedger,
) -> None:
    sqlite_ledger.record(RUN, limit=1)
    pause(sqlite_ledger, PAUSED)
    sqlite_ledger.db.update_run(PAUSED, event_count="many")
    outcome = verify_all(sqlite_ledger.store, vkeys=[sqlite_ledger.vkey])
    assert {r.run_id: r.status for r in outcome.runs} == {RUN: "unanchored", PAUSED: "tampered"}
    code, out, err = codon("verify", "--all", "--ledger", sqlite_ledger.url)
    assert code == 1
    assert "Traceback" not in err
    assert "the runs index holds event_count 'many'" in out
    code, out, err = codon("verify", PAUSED, "--ledger", sqlite_ledger.url)
    assert code == 1
    assert "TAMPERED" in out


def test_ledger_strings_are_printed_escaped(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN, limit=1)
    evil = "evil\x1b[2J\nrun ok: VERIFIED"
    for table in ("codon_runs", "codon_events"):
        sqlite_ledger.db._sql(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (evil, RUN))
    code, out, _ = codon("verify", "--all", "--ledger", sqlite_ledger.url)
    assert code == 1
    assert "\x1b" not in out
    assert "evil\\x1b[2J\\nrun ok" in out
    assert not any(line.startswith("run ok") for line in out.splitlines())


def test_a_run_id_that_is_not_text_is_a_verdict_not_a_traceback(
    sqlite_ledger: AuditLedger,
) -> None:
    """SQLite keeps whatever type is written: a run id stored as a BLOB reads back as bytes."""
    sqlite_ledger.record(RUN, limit=1)
    sqlite_ledger.record(OTHER, limit=1)
    sqlite_ledger.db._sql(
        "UPDATE codon_runs SET run_id = CAST(run_id AS BLOB) WHERE run_id = ?", (OTHER,)
    )
    outcome = verify_all(
        sqlite_ledger.store, vkeys=[sqlite_ledger.vkey], checkpoint_dir=sqlite_ledger.sink_dir
    )
    assert not outcome.ok
    assert {str(r.run_id): r.status for r in outcome.runs}[RUN] == "verified"
    code, _, err = codon(
        "verify",
        "--all",
        "--ledger",
        sqlite_ledger.url,
        "--checkpoint-dir",
        str(sqlite_ledger.sink_dir),
    )
    assert code == 1
    assert "Traceback" not in err
