"""``verify_run`` / ``verify_all``: the four verdicts, findings, keys and bad checkpoints.

Verdict rules (``codon_sdk.ledger._verify``): ``verified`` needs a checkpoint held
outside the database whose signature a trusted key verified; ``unanchored`` is
consistent and ended but anchored by nothing outside; ``incomplete`` has not
ended; ``tampered`` failed a check. Malformed checkpoints and untrusted keys are
verdicts, never crashes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import codon_sdk
from codon_sdk import CodonWorkload
from codon_sdk.errors import RunNotFoundError
from codon_sdk.ledger._checkpoint import Checkpoint, sign_checkpoint
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.ledger._merkle import root as merkle_root
from codon_sdk.ledger._note import Ed25519Signer, Note, sign_note
from codon_sdk.stores._open import open_store
from codon_sdk.stores._verify import verify_all, verify_run

from ._checks import assert_tampered, codon
from ._tamper import edit
from ._workloads import build_pausing
from .conftest import LEDGER_NAME, AuditLedger

RUN = "run-a"


def _genuine_note(ledger: AuditLedger, run_id: str = RUN) -> bytes:
    return ledger.final_note(run_id).read_bytes()


def _body(ledger: AuditLedger, run_id: str = RUN) -> str:
    return Note.parse(_genuine_note(ledger, run_id)).text


# --------------------------------------------------------------------------- public surface


def test_verify_run_is_exported_as_codon_sdk_verify_run() -> None:
    """API.md Part 2: ``codon_sdk.verify_run(store, run_id, ...) -> VerificationReport``."""
    assert codon_sdk.verify_run is verify_run


def test_open_store_is_exported_as_codon_sdk_open_store() -> None:
    """API.md Part 2: ``codon_sdk.open_store(url)``."""
    assert codon_sdk.open_store is open_store


# --------------------------------------------------------------------------- verdicts


def test_anchored_run_is_verified_with_what_was_checked(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN)
    report = sqlite_ledger.verify(RUN)
    assert report.status == "verified"
    assert report.ok
    assert bool(report)
    assert report.head == leaf_hash(sqlite_ledger.db.entries(RUN)[-1]).hex()
    entries = sqlite_ledger.db.entries(RUN)
    assert report.root == merkle_root([leaf_hash(e) for e in entries]).hex()
    assert any("external checkpoint" in a and LEDGER_NAME in a for a in report.anchors)
    assert "VERIFIED" in report.summary()


def test_run_checked_only_against_its_own_database_is_unanchored(
    sqlite_ledger: AuditLedger,
) -> None:
    sqlite_ledger.record(RUN)
    report = sqlite_ledger.verify(RUN, anchored=False)
    assert report.status == "unanchored"
    assert report.ok  # nothing wrong was found ...
    assert report.anchors == ()  # ... but nothing outside the database vouches for it
    assert "--checkpoint" in report.summary()


def test_without_verifier_keys_nothing_is_verified(sqlite_ledger: AuditLedger) -> None:
    """verify_run's docstring: without vkeys "signatures are not checked and nothing is
    'verified'": an exported checkpoint whose signature nobody checked anchors nothing."""
    sqlite_ledger.record(RUN)
    report = verify_run(sqlite_ledger.store, RUN, checkpoints=[sqlite_ledger.final_note(RUN)])
    assert report.status != "verified", report.summary()
    assert report.status == "unanchored", report.summary()


def test_forged_external_checkpoint_without_verifier_keys_is_not_verified(
    sqlite_ledger: AuditLedger,
) -> None:
    """An attacker who rewrote the database hands over a checkpoint signed with their own key:
    with no trusted keys given, it must not turn the verdict into "verified"."""
    sqlite_ledger.record(RUN)
    attacker = Ed25519Signer.generate(LEDGER_NAME)
    entries = sqlite_ledger.db.entries(RUN)
    forged = sign_checkpoint(
        Checkpoint(
            origin=f"{LEDGER_NAME}/run/{RUN}",
            size=len(entries),
            root=merkle_root([leaf_hash(e) for e in entries]),
        ),
        [attacker],
    )
    report = verify_run(sqlite_ledger.store, RUN, checkpoints=[forged])
    assert report.status != "verified", report.summary()


def test_checkpoint_signed_by_an_unknown_key_never_anchors_a_run(
    sqlite_ledger: AuditLedger,
) -> None:
    sqlite_ledger.record(RUN)
    attacker = Ed25519Signer.generate(LEDGER_NAME)  # same name, another key id
    forged = sign_note(_body(sqlite_ledger), [attacker])
    report = sqlite_ledger.verify(RUN, checkpoints=[forged])
    assert report.status != "verified", report.summary()
    assert report.anchors == ()


def test_unknown_signatures_beside_a_trusted_one_are_ignored(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN)
    genuine = Note.parse(_genuine_note(sqlite_ledger))
    extra = Note.parse(sign_note(genuine.text, [Ed25519Signer.generate("someone.else/key")]))
    cosigned = Note(text=genuine.text, signatures=(*extra.signatures, *genuine.signatures))
    report = sqlite_ledger.verify(RUN, checkpoints=[cosigned.format()])
    assert report.status == "verified", report.summary()


def test_checkpoint_of_another_run_does_not_anchor_this_one(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN)
    sqlite_ledger.record("run-b")
    report = sqlite_ledger.verify(RUN, checkpoints=[sqlite_ledger.final_note("run-b")])
    assert_tampered(report, code="checkpoint_origin")


def test_paused_run_is_incomplete_and_verified_once_resumed(ledger: AuditLedger) -> None:
    workload = build_pausing()
    paused = workload.execute({"n": 3}, deployment_id="audit", store=ledger.store, run_id="p")
    assert paused.status == "interrupted"
    report = ledger.verify("p")
    assert report.status == "incomplete", report.summary()
    assert not report.ok
    assert [(f.code, f.tamper) for f in report.findings] == [
        ("not_ended", False),
        ("run_status", False),
    ]
    assert "paused (interrupted)" in report.findings[-1].message
    code, _, _ = codon("verify", "p", "--ledger", ledger.url, "--vkey", ledger.vkey)
    assert code == 1

    done = workload.resume("p", store=ledger.store, input="alice", actor="alice@example.com")
    assert done.status == "completed"
    report = ledger.verify("p")
    assert report.status == "verified", report.summary()


def _explode(message: Any, *, runtime: Any, context: Any) -> None:
    runtime.state["tried"] = True
    raise RuntimeError("the model refused")


def test_failed_run_has_ended_and_verifies(ledger: AuditLedger) -> None:
    workload = CodonWorkload(name="audit-failing", version="1.0", org_namespace="audit-tests")
    workload.add_node(_explode, "explode", "worker")
    with pytest.raises(codon_sdk.WorkloadRuntimeError):
        workload.execute(None, deployment_id="audit", store=ledger.store, run_id="f")
    assert ledger.store.get_run("f").status == "failed"
    report = ledger.verify("f")
    assert report.status == "verified", report.summary()


def test_run_on_a_store_without_a_notary_is_unanchored(tmp_path: Path, quote_service: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'plain.db'}", notary=None)
    with store:
        from ._workloads import build_v1

        build_v1().execute(
            {"topic": "t", "limit": 2},
            deployment_id="audit",
            store=store,
            run_id="plain",
            quote_url=quote_service.url,
        )
        assert store.checkpoints("plain") == []
        report = verify_run(store, "plain", vkeys=[Ed25519Signer.generate("k").vkey])
    assert report.status == "unanchored", report.summary()


def test_unknown_run_raises_run_not_found(sqlite_ledger: AuditLedger) -> None:
    with pytest.raises(RunNotFoundError, match="no-such-run"):
        verify_run(sqlite_ledger.store, "no-such-run")


def test_verify_run_accepts_a_store_url(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN)
    report = verify_run(
        sqlite_ledger.url,
        RUN,
        vkeys=[sqlite_ledger.vkey],
        checkpoints=[str(sqlite_ledger.final_note(RUN))],
    )
    assert report.status == "verified", report.summary()


# --------------------------------------------------------------------------- findings


def test_findings_name_the_event_and_what_is_wrong(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(RUN)
    entries = sqlite_ledger.db.entries(RUN)

    def reword(obj: dict[str, Any]) -> None:
        obj["metadata"]["decision"] = "escalate"

    seq = next(i for i, e in enumerate(entries) if b'"audit.decision"' in e)
    sqlite_ledger.db.set_entry(RUN, seq, edit(entries[seq], reword))
    report = sqlite_ledger.verify(RUN)
    finding = assert_tampered(report, seq=seq, code="chain")
    assert "altered" in finding.message or "edited" in finding.message
    assert f"seq {seq}:" in report.summary()
    as_dict = report.to_dict()
    assert as_dict["status"] == "tampered"
    assert as_dict["ok"] is False
    assert {"seq": seq, "code": "chain", "tamper": True}.items() <= as_dict["findings"][0].items()


def test_verify_all_calls_progress_once_per_run(sqlite_ledger: AuditLedger) -> None:
    for run_id in ("r1", "r2", "r3"):
        sqlite_ledger.record(run_id, limit=1)
    seen: list[tuple[int, int, str]] = []
    outcome = verify_all(
        sqlite_ledger.store,
        vkeys=[sqlite_ledger.vkey],
        progress=lambda done, total, report: seen.append((done, total, report.status)),
    )
    assert outcome.ok
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert {s for _, _, s in seen} == {"unanchored"}


# --------------------------------------------------------------------------- bad checkpoints


def _sign_body(signer: Ed25519Signer, body: str) -> bytes:
    return sign_note(body, [signer])


MALFORMED_BODIES = {
    "bad base64 root": lambda body: body.replace(body.split("\n")[2], "not*base64!"),
    "root of the wrong length": lambda body: body.replace(body.split("\n")[2], "AAAA"),
    "size with a leading zero": lambda body: body.replace("\n38\n", "\n038\n"),
    "negative size": lambda body: body.replace("\n38\n", "\n-38\n"),
    "size that is not a number": lambda body: body.replace("\n38\n", "\nthirty-eight\n"),
    "empty origin": lambda body: "\n" + body.split("\n", 1)[1],
    "two lines only": lambda body: "\n".join(body.split("\n")[:2]) + "\n",
}


@pytest.mark.parametrize("defect", sorted(MALFORMED_BODIES))
def test_signed_but_malformed_checkpoint_is_a_verdict_not_a_crash(
    sqlite_ledger: AuditLedger, defect: str
) -> None:
    sqlite_ledger.record(RUN)
    body = MALFORMED_BODIES[defect](_body(sqlite_ledger))
    note = _sign_body(sqlite_ledger.signer, body)
    report = sqlite_ledger.verify(RUN, checkpoints=[note])
    assert not report.ok, report.summary()
    assert report.anchors == ()
    finding = assert_tampered(report, code="checkpoint_malformed")
    assert "malformed" in finding.message


MALFORMED_NOTES = {
    "no final newline": lambda note: note[:-1],
    "signature not base64": lambda note: note.rsplit(b" ", 1)[0] + b" %%%%\n",
    "no signature line": lambda note: note.split(b"\n\n")[0] + b"\n\n",
    "no blank line": lambda note: note.replace(b"\n\n", b"\n"),
    "empty file": lambda note: b"",
    "not UTF-8": lambda note: b"\xff\xfe" + note,
    "control character": lambda note: note.replace(b"\n", b"\r\n", 1),
}


@pytest.mark.parametrize("defect", sorted(MALFORMED_NOTES))
def test_malformed_checkpoint_note_is_a_verdict_not_a_crash(
    sqlite_ledger: AuditLedger, defect: str
) -> None:
    sqlite_ledger.record(RUN)
    note = MALFORMED_NOTES[defect](_genuine_note(sqlite_ledger))
    report = sqlite_ledger.verify(RUN, checkpoints=[note])
    assert not report.ok, report.summary()
    assert_tampered(report, code="checkpoint_malformed")


@pytest.mark.parametrize("defect", ["bad base64 root", "empty origin", "size with a leading zero"])
def test_malformed_checkpoint_file_makes_codon_verify_exit_1_with_a_message(
    sqlite_ledger: AuditLedger, tmp_path: Path, defect: str
) -> None:
    sqlite_ledger.record(RUN)
    bad = tmp_path / "bad.note"
    body = MALFORMED_BODIES[defect](_body(sqlite_ledger))
    bad.write_bytes(_sign_body(sqlite_ledger.signer, body))
    code, out, err = codon(
        "verify",
        RUN,
        "--ledger",
        sqlite_ledger.url,
        "--vkey",
        sqlite_ledger.vkey,
        "--checkpoint",
        str(bad),
    )
    assert code == 1
    assert "malformed" in out
    assert "Traceback" not in err


# --------------------------------------------------------------------------- concurrent runs


def test_runs_finishing_together_all_land_in_the_log_of_runs(ledger: AuditLedger) -> None:
    """Eight runs on one store from eight threads: every one logged once as started and once
    as finished, everything verifies, and the newest exported log checkpoint anchors the
    whole log."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            ledger.record(f"t{k}", limit=2)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = ledger.store.runs_log()
    assert sorted(run_id for _, run_id, size, _ in log if size == 1) == [f"t{k}" for k in range(8)]
    assert sorted(run_id for _, run_id, size, _ in log if size > 1) == [f"t{k}" for k in range(8)]
    outcome = verify_all(
        ledger.store, vkeys=[ledger.vkey], log_checkpoints=[ledger.exported("")[-1]]
    )
    assert outcome.ok, [str(f) for f in outcome.findings]
    assert outcome.log.size == 16
    assert outcome.log.anchors, outcome.log.checked
