"""Erasure that keeps verification, on a real SQLite file and a real PostgreSQL schema.

After ``erase``, the secret is in no byte of the database (SQLite file, WAL, blob files; every
PostgreSQL table), ``verify`` passes with an ``erased`` finding for exactly the erased events,
proofs of the events left verify against checkpoints signed before the erasure, and resume,
replay and fork of the erased run are refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.audit._tamper import Database

from codon_sdk import CodonWorkload, open_store, verify_run
from codon_sdk.errors import (
    ConfigurationError,
    RunConflictError,
    RunErasedError,
    RunHeldError,
    UntrustedRunError,
    WorkloadRuntimeError,
)
from codon_sdk.ledger import Ed25519Signer, stand_in, verify_proof_file
from codon_sdk.stores import (
    FileCheckpointSink,
    Notary,
    erase_run,
    erase_subject,
    erasure_log,
    hold_run,
    release_run,
)

SECRET = "SECRET-alice-4711@example.com"
KEPT = "KEPT-bob-0815"


def _workload(name: str = "erasable") -> CodonWorkload:
    wl = CodonWorkload(name=name, version="1")

    def greet(message: Any, *, runtime: Any, context: Any) -> str:
        runtime.state["who"] = message
        runtime.record_event("greeted", metadata={"who": message})
        return f"hello {message}"

    wl.add_node(greet, name="greet", role="r")
    return wl


def _tagging_workload() -> CodonWorkload:
    """One custom event per run carries the secret and is tagged with its subject."""
    wl = CodonWorkload(name="tagging", version="1")

    def note(message: Any, *, runtime: Any, context: Any) -> str:
        runtime.record_event("contact", metadata={"email": SECRET}, subject="user-42")
        runtime.record_event("visit", metadata={"page": KEPT})
        return "noted"

    wl.add_node(note, name="note", role="r")
    return wl


def _codon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _database_bytes(url: str) -> bytes:
    """Every byte the ledger database holds: the SQLite file, its WAL and blob files, or the
    text of every row of every table in the PostgreSQL schema (bytea as its hex)."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        files = [p for p in db.parent.rglob("*") if p.is_file()]
        return b"".join(p.read_bytes() for p in files)
    import psycopg

    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        ]
        assert "codon_events" in tables
        assert "codon_erasures" in tables
        for table in tables:
            for (row,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                out.append(row.encode("utf-8"))
    return b"\n".join(out)


def _holds(data: bytes, text: str) -> bool:
    return text.encode() in data or text.encode().hex().encode() in data


def _erased_seqs(url: str, run_id: str) -> list[int]:
    report = verify_run(url, run_id)
    assert report.ok, report.summary()
    return [f.seq for f in report.findings if f.code == "erased" and f.seq is not None]


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


# --------------------------------------------------------------------------- the secret is gone


def test_after_erase_the_secret_is_in_no_byte_of_the_database(ledger_url: str) -> None:
    wl = _workload()
    wl.store_blobs_over(256)
    big = SECRET + "x" * 2000  # goes to a blob (the directory or the blob table)
    erased = wl.execute(big, deployment_id="d", store=ledger_url, subject="user-42").run_id
    kept = wl.execute(KEPT + "y" * 2000, deployment_id="d", store=ledger_url).run_id
    assert _holds(_database_bytes(ledger_url), SECRET)  # the check sees stored bytes
    with open_store(ledger_url) as store:
        done = erase_subject(store, "user-42", actor="dpo")
        assert [e.run_id for e in done] == [erased]
        assert done[0].blobs_deleted  # the blob only the erased run referred to
    data = _database_bytes(ledger_url)
    assert not _holds(data, SECRET)
    assert not _holds(data, "user-42")  # the subject id itself is not kept either
    assert _holds(data, KEPT)  # the other run is untouched
    assert _erased_seqs(ledger_url, kept) == []
    assert verify_run(ledger_url, kept).ok


def test_the_sqlite_wal_and_freed_pages_keep_no_copy(sqlite_url: str) -> None:
    wl = _workload()
    with open_store(sqlite_url) as store:  # held open: the WAL stays beside the file
        run_id = wl.execute(SECRET, deployment_id="d", store=store, subject="user-42").run_id
        erase_subject(store, "user-42", actor="dpo")
        db = Path(sqlite_url.removeprefix("sqlite:///"))
        wal = Path(str(db) + "-wal")
        assert SECRET.encode() not in db.read_bytes()
        assert not wal.exists() or SECRET.encode() not in wal.read_bytes()
        assert verify_run(store, run_id).ok


# --------------------------------------------------------------------------- verify


def test_verify_passes_with_erased_findings_for_exactly_the_erased_events(ledger_url: str) -> None:
    wl = _tagging_workload()
    report = wl.execute("go", deployment_id="d", store=ledger_url)
    events = [e.event_type for e in report.ledger]
    contact = events.index("contact")
    with open_store(ledger_url) as store:
        done = erase_subject(store, "user-42", actor="dpo")
    assert [e.seqs for e in done] == [(contact,)]  # one event tagged, one event erased
    verdict = verify_run(ledger_url, report.run_id)
    assert verdict.ok
    assert verdict.status == "unanchored"
    assert [f.seq for f in verdict.findings if f.code == "erased"] == [contact]
    assert not any(f.tamper for f in verdict.findings)
    cli = _codon("verify", report.run_id, "--ledger", ledger_url, "--json")
    assert cli.returncode == 0, cli.stderr
    found = json.loads(cli.stdout)["findings"]
    assert [(f["seq"], f["tamper"]) for f in found if f["code"] == "erased"] == [(contact, False)]
    assert "dpo" in next(f["message"] for f in found if f["code"] == "erased")
    every = _codon("verify", "--all", "--ledger", ledger_url)
    assert every.returncode == 0, every.stdout + every.stderr


def test_proofs_of_events_left_verify_against_checkpoints_signed_before_the_erasure(
    ledger_url: str, tmp_path: Path
) -> None:
    signer = Ed25519Signer.generate("erasure.test")
    notary = Notary(signer=signer, every=2, sinks=(FileCheckpointSink(tmp_path / "sink"),))
    with open_store(ledger_url, notary=notary) as store:
        report = _tagging_workload().execute("go", deployment_id="d", store=store)
        run_id = report.run_id
        notes_before = [note for _, note in store.checkpoints(run_id)]
        entries_before = store.read(run_id)
    contact = [e.event_type for e in report.ledger].index("contact")
    visit = contact + 1
    with open_store(ledger_url) as store:
        erase_subject(store, "user-42", actor="dpo")
        assert [n for _, n in store.checkpoints(run_id)] == notes_before  # not re-signed
        after = store.read(run_id)
    assert after[contact] != entries_before[contact]
    assert after[visit] == entries_before[visit]
    final = notes_before[-1]
    verdict = verify_run(ledger_url, run_id, vkeys=[signer.vkey], checkpoints=[final])
    assert verdict.status == "verified", verdict.summary()
    assert [f.seq for f in verdict.findings if f.code == "erased"] == [contact]
    proof = tmp_path / "visit.proof"
    made = _codon("prove", run_id, str(visit), "--ledger", ledger_url, "--out", str(proof))
    assert made.returncode == 0, made.stderr
    checked = verify_proof_file(proof.read_bytes(), [signer.vkey])
    assert checked.ok, checked
    refused = _codon("prove", run_id, str(contact), "--ledger", ledger_url)
    assert refused.returncode == 1
    assert "was erased" in refused.stderr


# --------------------------------------------------------------------------- readers


def test_resume_replay_and_fork_of_an_erased_run_are_refused(ledger_url: str) -> None:
    wl = CodonWorkload(name="paused", version="1")

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?", payload={"email": SECRET})

    wl.add_node(ask, name="ask", role="r")
    report = wl.execute("x", deployment_id="d", store=ledger_url, subject="user-42")
    with open_store(ledger_url) as store:
        assert store.get_run(report.run_id).status == "interrupted"
        erase_subject(store, "user-42", actor="dpo")
    with pytest.raises(RunErasedError, match="erased") as caught:
        wl.resume(report.run_id, store=ledger_url, input="yes")
    assert isinstance(caught.value, PermissionError)
    with pytest.raises(RunErasedError):
        wl.replay(report.run_id, store=ledger_url)
    with pytest.raises(RunErasedError):
        wl.fork(report.run_id, store=ledger_url, at_seq=1)
    shown = _codon("runs", "show", report.run_id, "--ledger", ledger_url)
    assert shown.returncode == 0, shown.stderr
    assert "codon.erased" in shown.stdout
    assert SECRET not in shown.stdout


# --------------------------------------------------------------------------- refusals


def test_a_running_run_is_not_erased(ledger_url: str) -> None:
    seen: list[BaseException] = []
    wl = CodonWorkload(name="busy", version="1")

    def work(message: Any, *, runtime: Any, context: Any) -> str:
        with open_store(ledger_url) as other:
            try:
                erase_run(other, context["run_id"], reason="test", actor="dpo")
            except RunConflictError as exc:
                seen.append(exc)
        return "done"

    wl.add_node(work, name="work", role="r")
    report = wl.execute(SECRET, deployment_id="d", store=ledger_url, durability="sync")
    assert len(seen) == 1
    assert "running" in str(seen[0])
    assert _erased_seqs(ledger_url, report.run_id) == []
    assert _holds(_database_bytes(ledger_url), SECRET)


def test_a_held_run_is_not_erased_until_released(ledger_url: str) -> None:
    run_id = _workload().execute(SECRET, deployment_id="d", store=ledger_url, subject="s1").run_id
    with open_store(ledger_url) as store:
        assert hold_run(store, run_id, reason="litigation 2026-17", actor="counsel")
        with pytest.raises(RunHeldError, match="litigation 2026-17"):
            erase_subject(store, "s1", actor="dpo")
        assert _erased_seqs(ledger_url, run_id) == []
        assert _holds(_database_bytes(ledger_url), SECRET)
        assert release_run(store, run_id)
        erase_subject(store, "s1", actor="dpo")
    assert len(_erased_seqs(ledger_url, run_id)) > 0
    held = _codon("retention", "hold", run_id, "--ledger", ledger_url)
    assert held.returncode == 0, held.stderr


def test_a_forged_stand_in_that_the_erasure_log_does_not_name_is_tampered(
    ledger_url: str,
) -> None:
    run_id = _workload().execute(SECRET, deployment_id="d", store=ledger_url).run_id
    db = Database(_kind(ledger_url), _target(ledger_url))
    try:
        entries = db.entries(run_id)
        from codon_sdk.stores import _codec  # the stored form, as the store writes it

        forged = stand_in(entries[1])
        db._sql(
            "UPDATE codon_events SET entry = ? WHERE run_id = ? AND seq = ?",
            (_codec.pack(run_id, 1, [forged])[0], run_id, 1),
        )
    finally:
        db.close()
    verdict = verify_run(ledger_url, run_id)
    assert verdict.status == "tampered"
    (chain,) = [f for f in verdict.findings if f.code == "chain"]
    assert chain.seq == 1
    assert "erasure log does not name" in chain.message
    assert not any(f.code == "erased" for f in verdict.findings)


def test_an_edited_erasure_log_line_is_caught(ledger_url: str) -> None:
    run_id = _workload().execute(SECRET, deployment_id="d", store=ledger_url, subject="s2").run_id
    with open_store(ledger_url) as store:
        erase_subject(store, "s2", actor="dpo")
        (line,) = store.execute(__import__("codon_sdk").stores.ReadErasures())
    db = Database(_kind(ledger_url), _target(ledger_url))
    try:
        if db.kind == "postgres":
            db._sql("ALTER TABLE codon_erasures DISABLE TRIGGER ALL")
        else:
            for name in ("codon_erasures_no_update", "codon_erasures_no_delete"):
                db._sql(f"DROP TRIGGER IF EXISTS {name}")
        body = line.body.replace(b'"actor":"dpo"', b'"actor":"eve"')
        db._sql("UPDATE codon_erasures SET body = ? WHERE idx = ?", (body, line.idx))
    finally:
        db.close()
    verdict = verify_run(ledger_url, run_id)
    assert verdict.status == "tampered"
    codes = {f.code for f in verdict.findings if f.tamper}
    assert "erasure_log" in codes
    assert "chain" in codes
    with open_store(ledger_url) as store:
        assert erasure_log(store).problems


def test_an_unknown_subject_is_a_clear_no_op(ledger_url: str) -> None:
    run_id = _workload().execute(SECRET, deployment_id="d", store=ledger_url, subject="s3").run_id
    done = _codon("erase", "--subject", "nobody", "--ledger", ledger_url)
    assert done.returncode == 0, done.stderr
    assert "nothing is recorded against subject 'nobody'" in done.stdout
    assert _erased_seqs(ledger_url, run_id) == []
    dry = _codon("erase", "--subject", "s3", "--ledger", ledger_url, "--dry-run")
    assert dry.returncode == 0
    assert "would erase" in dry.stdout
    assert _erased_seqs(ledger_url, run_id) == []
    real = _codon("erase", "--subject", "s3", "--ledger", ledger_url, "--actor", "dpo")
    assert real.returncode == 0, real.stderr
    assert "erased" in real.stdout
    assert len(_erased_seqs(ledger_url, run_id)) == len(verify_run(ledger_url, run_id).findings)


def test_a_tampered_run_is_not_erased(sqlite_url: str) -> None:
    run_id = _workload().execute(SECRET, deployment_id="d", store=sqlite_url, subject="s4").run_id
    db = Database("sqlite", _target(sqlite_url))
    try:
        db.set_entry(run_id, 2, db.entries(run_id)[2].replace(b"greet", b"gr33t"))
    finally:
        db.close()
    with open_store(sqlite_url) as store, pytest.raises(UntrustedRunError, match="not erased"):
        erase_subject(store, "s4", actor="dpo")


def test_bad_subjects_are_refused(sqlite_url: str) -> None:
    wl = _workload()
    with pytest.raises(ValueError, match="store"):
        wl.execute("x", deployment_id="d", subject="user-1")
    with pytest.raises(ConfigurationError, match="subject id"):
        wl.execute("x", deployment_id="d", store=sqlite_url, subject="")
    memory_only = CodonWorkload(name="m", version="1")

    def tag(message: Any, *, runtime: Any, context: Any) -> None:
        runtime.record_event("contact", subject="user-1")

    memory_only.add_node(tag, name="tag", role="r")
    with pytest.raises(WorkloadRuntimeError, match="durable store"):
        memory_only.execute("x", deployment_id="d")


def _target(url: str) -> Any:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else url
