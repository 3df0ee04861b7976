"""The tamper suite: an attacker with database access edits real ledgers; verification catches it.

Every test records real runs (a planner, a worker looping 4 times with recorded
effects and shared state, a reporter: 38 events, checkpoints signed at sizes
5, 10, ..., 35 and 38 and exported to a directory), then edits the SQLite file
or the PostgreSQL tables underneath the SDK, the append-only triggers dropped or
disabled, and checks that ``verify_run`` (or ``verify_all``) says ``tampered``
with a finding naming the event, and that ``codon verify`` exits 1. The auditor
holds the verifier key and the exported final checkpoint of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codon_sdk.errors import CodonError
from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._chain import check_chain
from codon_sdk.ledger._checkpoint import Checkpoint, sign_checkpoint
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.ledger._merkle import root as merkle_root
from codon_sdk.ledger._note import Ed25519Signer, Note, sign_note
from codon_sdk.stores._verify import verify_all, verify_run

from ._checks import assert_tampered, codon
from ._tamper import edit, rechain
from ._workloads import build_pausing
from .conftest import LEDGER_NAME, AuditLedger

RUN = "run-a"
OTHER = "run-b"
EVENTS = 38  # plan + 4 x work + finish, see _workloads
MID = 13  # node_completed of the first `work` activation


@pytest.fixture
def recorded(ledger: AuditLedger) -> AuditLedger:
    """Run ``run-a`` recorded, checked to be the run this suite's seqs refer to."""
    report = ledger.record(RUN)
    assert report.status == "completed"
    entries = ledger.db.entries(RUN)
    shape = "the recorded run changed shape: update EVENTS and MID in this module"
    assert len(entries) == EVENTS, shape
    assert orjson.loads(entries[MID])["type"] == "node_completed", shape
    assert orjson.loads(entries[MID])["payload"]["i"] == 0, shape
    assert [size for size, _ in ledger.db.checkpoints(RUN)] == [*range(5, EVENTS, 5), EVENTS]
    return ledger


def overrule(event: dict[str, Any]) -> None:
    """The edit an insider wants: the first decision of the worker turned around."""
    assert event["payload"]["decision"] == "approve"
    event["payload"]["decision"] = "review"


def cli_verify(ledger: AuditLedger, run_id: str = RUN, *extra: str) -> int:
    args = ["verify", run_id, "--ledger", ledger.url, "--vkey", ledger.vkey]
    args += ["--checkpoint", str(ledger.final_note(run_id)), *extra]
    code, _, _ = codon(*args)
    return code


# --------------------------------------------------------------------------- untouched


def test_untouched_ledger_verifies_with_its_exported_checkpoint(recorded: AuditLedger) -> None:
    report = recorded.verify(RUN)
    assert report.status == "verified", report.summary()
    assert report.ok
    assert report.findings == ()
    assert report.event_count == EVENTS
    assert report.anchors
    assert cli_verify(recorded) == 0


def test_untouched_store_passes_verify_all(recorded: AuditLedger) -> None:
    recorded.record(OTHER)
    outcome = verify_all(recorded.store, vkeys=[recorded.vkey])
    assert outcome.ok, [r.summary() for r in outcome.runs] + [str(f) for f in outcome.findings]
    assert sorted(r.run_id for r in outcome.runs) == [RUN, OTHER]
    assert outcome.log.size == 4  # a start and a finish line per run


# --------------------------------------------------------------------------- events


def test_edited_payload_is_caught_at_the_edited_event(recorded: AuditLedger) -> None:
    entries = recorded.db.entries(RUN)

    recorded.db.set_entry(RUN, MID, edit(entries[MID], overrule))
    assert_tampered(recorded.verify(RUN), seq=MID, code="chain")
    assert cli_verify(recorded) == 1


def test_edited_last_event_is_caught_by_the_final_checkpoint(recorded: AuditLedger) -> None:
    last = EVENTS - 1
    entries = recorded.db.entries(RUN)

    def backdate(obj: dict[str, Any]) -> None:
        obj["ts"] -= 1_000_000

    recorded.db.set_entry(RUN, last, edit(entries[last], backdate))
    assert_tampered(recorded.verify(RUN), seq=last)
    assert_tampered(recorded.verify(RUN, anchored=False), seq=last)


def test_edit_with_hashes_recomputed_is_caught_by_the_signed_checkpoints(
    recorded: AuditLedger,
) -> None:
    """The attacker re-links every later event: the chain holds, the signed roots do not."""
    entries = recorded.db.entries(RUN)

    forged = rechain([*entries[:MID], edit(entries[MID], overrule), *entries[MID + 1 :]], MID)
    assert check_chain(forged, run_id=RUN, require_end=True).ok  # a thorough attacker
    recorded.db.rewrite_run(RUN, forged)
    recorded.db.update_run(RUN, head=leaf_hash(forged[-1]).hex())

    report = recorded.verify(RUN)
    # the first checkpoint covering seq 13 is the one of size 15: the edit is within 13..14
    finding = assert_tampered(report, seq=range(MID, 15), code="checkpoint_root")
    assert "size 15" in finding.message
    assert_tampered(recorded.verify(RUN, anchored=False), code="checkpoint_root")
    assert cli_verify(recorded) == 1


def test_consistent_rewrite_without_stored_checkpoints_is_caught_by_the_exported_one(
    recorded: AuditLedger,
) -> None:
    """Rewrite from seq 0: the announcement of checkpoints gone, every stored checkpoint gone."""
    entries = recorded.db.entries(RUN)

    def unannounce(obj: dict[str, Any]) -> None:
        del obj["metadata"]["checkpoints"]

    tampered = [edit(entries[0], unannounce), *entries[1:]]
    tampered[MID] = edit(tampered[MID], overrule)
    forged = rechain(tampered)
    recorded.db.rewrite_run(RUN, forged)
    recorded.db.delete_checkpoints(RUN)

    assert_tampered(recorded.verify(RUN), code="checkpoint_root")
    assert cli_verify(recorded) == 1


def test_consistent_rewrite_is_at_best_unanchored_without_an_exported_checkpoint(
    recorded: AuditLedger,
) -> None:
    """What the database alone cannot prove is never called "verified"."""
    entries = recorded.db.entries(RUN)

    def unannounce(obj: dict[str, Any]) -> None:
        del obj["metadata"]["checkpoints"]

    recorded.db.rewrite_run(RUN, rechain([edit(entries[0], unannounce), *entries[1:]]))
    recorded.db.delete_checkpoints(RUN)
    report = recorded.verify(RUN, anchored=False)
    # at best unanchored; the runs index's head (left as it was) even exposes it
    assert report.status in ("unanchored", "tampered"), report.summary()


@pytest.mark.parametrize("renumbered", [False, True], ids=["gap", "renumbered"])
def test_deleted_event_is_caught_at_its_seq(recorded: AuditLedger, renumbered: bool) -> None:
    gone = 9
    if renumbered:
        entries = recorded.db.entries(RUN)
        recorded.db.rewrite_run(RUN, entries[:gone] + entries[gone + 1 :])
    else:
        recorded.db.delete_events(RUN, [gone])
    assert_tampered(recorded.verify(RUN), seq=gone, code="chain")
    assert cli_verify(recorded) == 1


def test_inserted_event_is_caught_where_it_was_inserted(recorded: AuditLedger) -> None:
    """A forged, well-linked event slipped in at seq 9; the later rows shifted down by one."""
    at = 9
    entries = recorded.db.entries(RUN)
    forged = orjson.loads(entries[at - 1])
    forged = {
        "v": 1,
        "run_id": RUN,
        "seq": at,
        "type": "audit.decision",
        "ts": forged["ts"],
        "node": "work",
        "token_id": forged.get("token_id"),
        "metadata": {"i": 99, "decision": "approve"},
        "prev": leaf_hash(entries[at - 1]).hex(),
    }
    recorded.db.rewrite_run(RUN, [*entries[:at], json_canonical(forged), *entries[at:]])
    # the forged event itself is well formed: the first event out of place is the one after
    assert_tampered(recorded.verify(RUN), seq=(at, at + 1), code="chain")
    assert cli_verify(recorded) == 1


def test_duplicated_event_is_caught_at_the_copy(recorded: AuditLedger) -> None:
    at = 9
    entries = recorded.db.entries(RUN)
    recorded.db.rewrite_run(RUN, [*entries[: at + 1], entries[at], *entries[at + 1 :]])
    assert_tampered(recorded.verify(RUN), seq=at + 1, code="chain")
    assert cli_verify(recorded) == 1


def test_swapped_events_are_caught_at_the_first_of_the_two(recorded: AuditLedger) -> None:
    at = 9
    entries = recorded.db.entries(RUN)
    recorded.db.set_entry(RUN, at, entries[at + 1])
    recorded.db.set_entry(RUN, at + 1, entries[at])
    assert_tampered(recorded.verify(RUN), seq=at, code="chain")
    assert cli_verify(recorded) == 1


def test_truncated_tail_is_caught_by_the_checkpoint_in_the_database(
    recorded: AuditLedger,
) -> None:
    keep = EVENTS - 3
    recorded.db.delete_events(RUN, range(keep, EVENTS))
    report = recorded.verify(RUN, anchored=False)
    assert_tampered(report, seq=keep, code="truncated")
    assert_tampered(report, seq=keep, code="end_missing")
    assert cli_verify(recorded) == 1


def test_truncated_tail_is_caught_by_the_exported_checkpoint_alone(
    recorded: AuditLedger,
) -> None:
    """The attacker also removes the stored checkpoints past the cut and rewinds the index."""
    keep = EVENTS - 3
    entries = recorded.db.entries(RUN)
    recorded.db.delete_events(RUN, range(keep, EVENTS))
    recorded.db.delete_checkpoints(RUN, [38])
    recorded.db.update_run(
        RUN,
        status="running",
        finished_us=None,
        event_count=keep,
        head=leaf_hash(entries[keep - 1]).hex(),
    )
    assert_tampered(recorded.verify(RUN), seq=keep, code="truncated")
    assert cli_verify(recorded) == 1
    # the log of finished runs still holds the run's size and root
    outcome = verify_all(recorded.store, vkeys=[recorded.vkey])
    assert not outcome.ok
    assert any(f.code == "run_changed" for f in outcome.findings)


def test_truncated_tail_of_a_paused_run_is_tampered_not_incomplete(
    ledger: AuditLedger,
) -> None:
    """Docs silent; assumed: the runs index still counting the cut events is evidence enough.

    A run paused by ``runtime.interrupt`` holds a checkpoint at the pause. The attacker
    cuts the last events and every stored checkpoint past the cut but leaves the runs
    index, which still records the event count and head hash the run paused with.
    """
    report = build_pausing().execute(
        {"n": 7}, deployment_id="audit", store=ledger.store, run_id="paused"
    )
    assert report.status == "interrupted"
    count = len(ledger.db.entries("paused"))
    keep = count - 2
    assert ledger.db.checkpoints("paused")[-1][0] == count
    ledger.db.delete_events("paused", range(keep, count))
    ledger.db.delete_checkpoints(
        "paused", [s for s, _ in ledger.db.checkpoints("paused") if s > keep]
    )
    info = ledger.store.get_run("paused")
    assert info.event_count == count  # the index was left as it was
    report_after = verify_run(ledger.store, "paused", vkeys=[ledger.vkey])
    assert report_after.status == "tampered", report_after.summary()


def test_event_spliced_in_from_another_run_is_caught_at_its_seq(recorded: AuditLedger) -> None:
    recorded.record(OTHER)
    theirs = recorded.db.entries(OTHER)
    recorded.db.set_entry(RUN, MID, theirs[MID])
    finding = assert_tampered(recorded.verify(RUN), seq=MID, code="chain")
    assert OTHER in finding.message
    assert cli_verify(recorded) == 1


def test_another_runs_events_under_this_run_id_are_caught_at_seq_0(
    recorded: AuditLedger,
) -> None:
    recorded.record(OTHER)
    recorded.db.rewrite_run(RUN, recorded.db.entries(OTHER))
    assert_tampered(recorded.verify(RUN), seq=0, code="chain")
    assert cli_verify(recorded) == 1


def test_another_runs_events_rewritten_to_this_run_are_caught_by_checkpoints(
    recorded: AuditLedger,
) -> None:
    """Run B's history re-labelled as run A, its announcement pointed at A, re-linked."""
    recorded.record(OTHER)
    theirs = recorded.db.entries(OTHER)

    def announce_as_a(obj: dict[str, Any]) -> None:
        obj["metadata"]["checkpoints"]["origin"] = f"{LEDGER_NAME}/run/{RUN}"
        obj["metadata"]["context"]["topic"] = RUN

    forged = rechain([edit(theirs[0], announce_as_a), *theirs[1:]], run_id=RUN)
    assert check_chain(forged, run_id=RUN, require_end=True).ok
    recorded.db.rewrite_run(RUN, forged)
    assert_tampered(recorded.verify(RUN), code="checkpoint_root")
    assert_tampered(recorded.verify(RUN, anchored=False), code="checkpoint_root")
    assert cli_verify(recorded) == 1


def test_event_appended_after_the_end_is_caught(recorded: AuditLedger) -> None:
    entries = recorded.db.entries(RUN)
    last = orjson.loads(entries[-1])
    extra = json_canonical(
        {
            "v": 1,
            "run_id": RUN,
            "seq": EVENTS,
            "type": "audit.decision",
            "ts": last["ts"] + 1,
            "node": "work",
            "metadata": {"i": 4, "decision": "approve"},
            "prev": leaf_hash(entries[-1]).hex(),
        }
    )
    recorded.db.insert_event(RUN, EVENTS, extra)
    recorded.db.update_run(RUN, event_count=EVENTS + 1, head=leaf_hash(extra).hex())
    finding = assert_tampered(recorded.verify(RUN), seq=EVENTS, code="chain")
    assert "run_finished" in finding.message
    assert cli_verify(recorded) == 1


# --------------------------------------------------------------------------- checkpoints


def test_edited_checkpoint_is_caught_by_its_signature(recorded: AuditLedger) -> None:
    size, note = recorded.db.checkpoints(RUN)[1]
    parsed = Note.parse(note)
    body = Checkpoint.parse(parsed.text)
    forged_body = Checkpoint(origin=body.origin, size=body.size, root=bytes(32)).format()
    forged = Note(text=forged_body, signatures=parsed.signatures).format()
    recorded.db.set_checkpoint(RUN, size, forged)
    assert_tampered(recorded.verify(RUN), code="checkpoint_signature")
    assert cli_verify(recorded) == 1


@pytest.mark.parametrize("size", [10, 38], ids=["periodic", "final"])
def test_stripped_checkpoint_is_caught(recorded: AuditLedger, size: int) -> None:
    recorded.db.delete_checkpoints(RUN, [size])
    finding = assert_tampered(recorded.verify(RUN), code="checkpoint_missing")
    assert f"size {size}" in finding.message
    assert cli_verify(recorded) == 1


def test_checkpoint_resigned_with_another_key_is_not_trusted(recorded: AuditLedger) -> None:
    """The attacker's key carries the ledger's own key name: only the key id tells them apart."""
    attacker = Ed25519Signer.generate(LEDGER_NAME)
    size, note = recorded.db.checkpoints(RUN)[1]
    resigned = sign_note(Note.parse(note).text, [attacker])
    recorded.db.set_checkpoint(RUN, size, resigned)
    assert_tampered(recorded.verify(RUN), code="checkpoint_untrusted")
    assert cli_verify(recorded) == 1


def test_rewrite_with_every_checkpoint_resigned_by_the_attacker_is_caught(
    recorded: AuditLedger,
) -> None:
    attacker = Ed25519Signer.generate(LEDGER_NAME)
    entries = recorded.db.entries(RUN)

    forged = rechain([*entries[:MID], edit(entries[MID], overrule), *entries[MID + 1 :]], MID)
    recorded.db.rewrite_run(RUN, forged)
    leaves = [leaf_hash(e) for e in forged]
    for size, _ in recorded.db.checkpoints(RUN):
        cp = Checkpoint(
            origin=f"{LEDGER_NAME}/run/{RUN}", size=size, root=merkle_root(leaves[:size])
        )
        recorded.db.set_checkpoint(RUN, size, sign_checkpoint(cp, [attacker]))
    assert_tampered(recorded.verify(RUN, anchored=False), code="checkpoint_untrusted")
    assert_tampered(recorded.verify(RUN), code="checkpoint_root")
    assert cli_verify(recorded) == 1


# --------------------------------------------------------------------------- whole runs


def test_deleted_run_is_caught_by_the_log_of_runs(recorded: AuditLedger) -> None:
    recorded.record(OTHER)
    recorded.record("run-c")
    recorded.db.delete_run(OTHER)
    outcome = verify_all(recorded.store, vkeys=[recorded.vkey])
    assert not outcome.ok
    assert all(r.ok for r in outcome.runs)  # what is left is intact: only the log tells
    # its line in the log is gone too: the signed log checkpoints no longer match the log
    assert {f.code for f in outcome.findings} >= {"runs_log_root"}, outcome.findings
    code, out, _ = codon("verify", "--all", "--ledger", recorded.url, "--vkey", recorded.vkey)
    assert code == 1
    assert "TAMPER" in out


def test_deleted_newest_run_is_caught_by_the_exported_log_checkpoint(
    recorded: AuditLedger,
) -> None:
    """The attacker also removes the stored log checkpoints that counted the newest run (its
    start and finish lines, the log's lines 2 and 3)."""
    recorded.record(OTHER)
    exported_log = recorded.exported("")[-1]
    assert exported_log.name == "4.note"
    recorded.db.delete_run(OTHER)
    recorded.db.delete_checkpoints("", [3, 4])
    outcome = verify_all(recorded.store, vkeys=[recorded.vkey], log_checkpoints=[exported_log])
    assert not outcome.ok
    assert any(f.code == "runs_log_truncated" for f in outcome.findings)
    code, _, _ = codon(
        "verify",
        "--all",
        "--ledger",
        recorded.url,
        "--vkey",
        recorded.vkey,
        "--checkpoint",
        str(exported_log),
    )
    assert code == 1


def test_edited_log_checkpoint_is_caught_by_its_signature(recorded: AuditLedger) -> None:
    recorded.record(OTHER)
    size, note = recorded.db.checkpoints("")[-1]
    parsed = Note.parse(note)
    body = Checkpoint.parse(parsed.text)
    forged = Checkpoint(origin=body.origin, size=body.size - 1, root=body.root).format()
    recorded.db.set_checkpoint("", size, Note(text=forged, signatures=parsed.signatures).format())
    outcome = verify_all(recorded.store, vkeys=[recorded.vkey])
    assert not outcome.ok
    assert any(f.code == "checkpoint_signature" for f in outcome.findings), outcome.findings


# --------------------------------------------------------------------------- property


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_flipped_bit_of_a_stored_event_is_caught(
    recorded: AuditLedger, data: st.DataObject
) -> None:
    """One random bit of one random stored entry flipped: the verdict is always tampered.

    Each example restores the entry afterwards, so they all start from the untouched run.
    """
    entries = recorded.db.entries(RUN)
    seq = data.draw(st.integers(0, len(entries) - 1), label="seq")
    original = entries[seq]
    bit = data.draw(st.integers(0, len(original) * 8 - 1), label="bit")
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    recorded.db.set_entry(RUN, seq, bytes(flipped))
    try:
        report = recorded.verify(RUN)
        assert not report.ok, report.summary()
        assert_tampered(report, seq=seq)
    finally:
        recorded.db.set_entry(RUN, seq, original)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_flipped_bit_of_a_stored_checkpoint_is_caught(
    recorded: AuditLedger, data: st.DataObject
) -> None:
    """One random bit of one random stored checkpoint note flipped: never verified."""
    notes = recorded.db.checkpoints(RUN)
    size, original = notes[data.draw(st.integers(0, len(notes) - 1), label="checkpoint")]
    bit = data.draw(st.integers(0, len(original) * 8 - 1), label="bit")
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    recorded.db.set_checkpoint(RUN, size, bytes(flipped))
    try:
        assert_tampered(recorded.verify(RUN))
    finally:
        recorded.db.set_checkpoint(RUN, size, original)


def test_flip_property_restores_an_untouched_run(recorded: AuditLedger) -> None:
    """Sanity of the property test's set-up: set_entry of the same bytes changes nothing."""
    entries = recorded.db.entries(RUN)
    recorded.db.set_entry(RUN, MID, entries[MID])
    assert recorded.verify(RUN).status == "verified"


# --------------------------------------------------------------------------- stale anchors


def _approve_and_forge(ledger: AuditLedger) -> Path:
    """Pause a run and resume it; the attacker then rewrites the approver to "mallory",
    re-links the tail and strips the end checkpoint. Returns the note exported at the pause.
    """
    workload = build_pausing()
    workload.execute({"n": 3}, deployment_id="audit", store=ledger.store, run_id="p")
    pause_note = ledger.final_note("p")
    workload.resume("p", store=ledger.store, input="alice", actor="alice@example.com")
    entries = ledger.db.entries("p")
    k = next(i for i, e in enumerate(entries) if b'"node_completed"' in e and b'"alice"' in e)

    def mallory(obj: dict[str, Any]) -> None:
        obj["payload"]["approved_by"] = "mallory"

    forged = rechain([*entries[:k], edit(entries[k], mallory), *entries[k + 1 :]], k)
    ledger.db.rewrite_run("p", forged)
    ledger.db.delete_checkpoints("p", [len(entries)])
    return pause_note


def test_forged_tail_after_a_stale_anchor_is_caught_when_only_ends_are_signed(
    end_only_ledger: AuditLedger,
) -> None:
    """Notary ``every=0``: checkpoints at the pause and at the end only. The auditor holds the
    pause checkpoint; the attacker rewrites the tail and strips the end checkpoint, which
    the notary always signs: its absence must not pass as "verified"."""
    pause_note = _approve_and_forge(end_only_ledger)
    report = end_only_ledger.verify("p", checkpoints=[pause_note])
    assert report.status == "tampered", report.summary()


def test_forged_tail_after_a_stale_anchor_is_caught_by_the_periodic_checkpoints(
    ledger: AuditLedger,
) -> None:
    """The same attack with ``every=5``: the announced end checkpoint is required."""
    pause_note = _approve_and_forge(ledger)
    assert_tampered(ledger.verify("p", checkpoints=[pause_note]), code="checkpoint_missing")


def test_resume_does_not_launder_a_rewritten_history(ledger: AuditLedger) -> None:
    """While a run waits for approval, the attacker raises the amount, rewrites the history
    consistently (announcement of checkpoints removed) and deletes the stored checkpoints.
    Resuming must not end with the trusted notary's signature over the forgery: either
    resume refuses, or verification against the newest exported checkpoint fails."""
    workload = build_pausing()
    workload.execute({"n": 3}, deployment_id="audit", store=ledger.store, run_id="p")
    entries = ledger.db.entries("p")
    k = next(i for i, e in enumerate(entries) if b'"amount"' in e and b"token_enqueued" in e)

    def bigger(obj: dict[str, Any]) -> None:
        obj["payload"]["amount"] = 1_000_000

    def unannounce(obj: dict[str, Any]) -> None:
        del obj["metadata"]["checkpoints"]

    tampered = [edit(entries[0], unannounce), *entries[1:]]
    tampered[k] = edit(tampered[k], bigger)
    ledger.db.rewrite_run("p", rechain(tampered))
    ledger.db.delete_checkpoints("p")
    try:
        workload.resume("p", store=ledger.store, input="alice", actor="alice@example.com")
    except CodonError:
        return  # refused to continue a history its own signed checkpoints contradict
    report = ledger.verify("p")  # the newest checkpoint the sink exported
    assert report.status == "tampered", report.summary()
