"""Signed approvals, end to end on SQLite and PostgreSQL: an approver signs, resume checks the
keyring, the ledger records the signed statement, and ``verify`` checks every recorded
approval against the keyring. The attacker rewrites the run with hashes recomputed (``rechain``)
so that only the approval check (and the signed checkpoints) can tell."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from codon_sdk import Approval, ApprovalError, CodonWorkload, sign_approval
from codon_sdk.errors import RunConflictError
from codon_sdk.ledger import Ed25519Signer, parse_entry
from codon_sdk.ledger._note import sign_note
from codon_sdk.stores import add_approver, remove_approver

from ._checks import assert_tampered, codon
from ._tamper import edit, rechain
from .conftest import AuditLedger

RUN = "refund-1"
WORKLOAD = "Refunds"


def _refund(message: Any, *, runtime: Any, context: Any) -> str:
    decision = runtime.interrupt("approve the refund?", payload=message)
    return f"refund {message['amount']}: {decision}"


def build_refunds(*, signed: bool = True) -> CodonWorkload:
    wl = CodonWorkload(name=WORKLOAD, version="1.0", org_namespace="audit-tests")
    wl.add_node(_refund, "refund", "payments")
    if signed:
        wl.require_signed_approvals()
    return wl


@pytest.fixture
def alice() -> Ed25519Signer:
    return Ed25519Signer.generate("alice@acme.example")


def _pause(ledger: AuditLedger, workload: CodonWorkload, run_id: str = RUN) -> None:
    report = workload.execute(
        {"amount": 30}, deployment_id="audit", store=ledger.store, run_id=run_id
    )
    assert report.status == "interrupted"


def _approved(ledger: AuditLedger, alice: Ed25519Signer) -> Approval:
    """A run paused, approved by alice (in the keyring), resumed to its end."""
    wl = build_refunds()
    _pause(ledger, wl)
    add_approver(ledger.store, WORKLOAD, alice.vkey)
    approval = sign_approval(ledger.store, RUN, input=True, key=alice)
    report = wl.resume(RUN, store=ledger.store, input=True, approval=approval)
    assert report.status == "completed"
    assert report.node_results("refund") == ["refund 30: True"]
    return approval


def _resumed_seq(entries: list[bytes]) -> int:
    return next(i for i, e in enumerate(entries) if parse_entry(e).type == "run_resumed")


def _rewrite_approval(ledger: AuditLedger, note: str) -> int:
    """The careful attacker: the recorded approval replaced by ``note``, the chain rebuilt."""
    entries = ledger.db.entries(RUN)
    seq = _resumed_seq(entries)

    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["approval"]["note"] = note

    entries[seq] = edit(entries[seq], change)
    forged = rechain(entries)
    ledger.db.rewrite_run(RUN, forged)
    ledger.db.update_run(RUN, head=parse_entry(forged[-1]).leaf.hex())
    return seq


# --------------------------------------------------------------------------- acceptance


def test_a_signed_approval_verifies(ledger: AuditLedger, alice: Ed25519Signer) -> None:
    _approved(ledger, alice)
    report = ledger.verify(RUN)
    assert report.status == "verified", report.summary()
    assert any(
        c.startswith("approval at seq") and "alice@acme.example" in c for c in report.checked
    ), report.summary()


def test_the_ledger_records_the_signed_statement_and_its_approver(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    approval = _approved(ledger, alice)
    entries = ledger.store.read(RUN)
    resumed = parse_entry(entries[_resumed_seq(entries)])
    assert resumed.actor == "alice@acme.example"
    assert resumed.metadata["approval"] == {"note": approval.note, "input_redacted": False}
    interrupted = parse_entry(entries[approval.statement.interrupt_seq])
    assert interrupted.type == "run_interrupted"


def test_an_edited_statement_is_caught_by_verify(ledger: AuditLedger, alice: Ed25519Signer) -> None:
    approval = _approved(ledger, alice)
    edited = approval.note.replace("actor: alice@acme.example", "actor: bob@acme.example")
    assert edited != approval.note
    seq = _rewrite_approval(ledger, edited)
    assert_tampered(ledger.verify(RUN), seq=seq, code="approval_signature")


def test_an_approval_signed_with_a_wrong_key_is_caught_by_verify(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    approval = _approved(ledger, alice)
    impostor = Ed25519Signer.generate("alice@acme.example")  # the name, not the key
    seq = _rewrite_approval(ledger, approval.statement.sign(impostor).note)
    finding = assert_tampered(ledger.verify(RUN), seq=seq, code="approval_untrusted")
    assert "outside the keyring" in finding.message


def test_a_forged_signature_under_the_approvers_key_id_is_caught_by_verify(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    approval = _approved(ledger, alice)
    text, _, sig_line = approval.note.rpartition("\n\n")
    name, _, b64 = sig_line.strip().removeprefix("\u2014 ").partition(" ")
    blob = base64.b64decode(b64)
    forged_sig = blob[:4] + bytes(64)  # alice's key id, a signature nobody made
    forged = f"{text}\n\n\u2014 {name} {base64.b64encode(forged_sig).decode()}\n"
    seq = _rewrite_approval(ledger, forged)
    assert_tampered(ledger.verify(RUN), seq=seq, code="approval_signature")


def test_an_approval_by_a_key_outside_the_keyring_is_caught_by_verify(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    _approved(ledger, alice)
    assert remove_approver(ledger.store, WORKLOAD, alice.vkey)
    finding = assert_tampered(ledger.verify(RUN), code="approval_untrusted")
    assert "alice@acme.example" in finding.message
    add_approver(ledger.store, WORKLOAD, alice.vkey)
    assert ledger.verify(RUN).status == "verified"


def test_a_key_trusted_for_another_workload_does_not_vouch(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    _approved(ledger, alice)
    remove_approver(ledger.store, WORKLOAD, alice.vkey)
    add_approver(ledger.store, "Payroll", alice.vkey)
    assert_tampered(ledger.verify(RUN), code="approval_untrusted")


def test_an_input_changed_after_approval_is_caught_by_verify(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    _approved(ledger, alice)
    entries = ledger.db.entries(RUN)
    seq = _resumed_seq(entries)
    entries[seq] = edit(entries[seq], lambda obj: obj["metadata"].update(input=False))
    forged = rechain(entries)
    ledger.db.rewrite_run(RUN, forged)
    assert_tampered(ledger.verify(RUN), seq=seq, code="approval_input")


def test_codon_verify_fails_once_the_approver_is_removed(
    ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    _approved(ledger, alice)
    code, out, _ = codon("verify", RUN, "--ledger", ledger.url)
    assert code == 0, out
    assert "approval at seq" in out
    remove_approver(ledger.store, WORKLOAD, alice.vkey)
    code, out, _ = codon("verify", RUN, "--ledger", ledger.url, "--json")
    assert code == 1, out
    codes = {f["code"] for f in orjson.loads(out)["findings"]}
    assert "approval_untrusted" in codes


# --------------------------------------------------------------------------- resume refusals


def _refused(ledger: AuditLedger, match: str, **kwargs: Any) -> None:
    before = len(ledger.store.read(RUN))
    with pytest.raises(ApprovalError, match=match):
        build_refunds().resume(RUN, store=ledger.store, input=True, **kwargs)
    assert len(ledger.store.read(RUN)) == before  # nothing recorded
    assert ledger.store.get_run(RUN).status == "interrupted"


def test_an_unsigned_resume_of_a_workload_that_requires_signed_approvals_is_refused(
    sqlite_ledger: AuditLedger,
) -> None:
    _pause(sqlite_ledger, build_refunds())
    _refused(sqlite_ledger, "requires signed approvals")
    _refused(sqlite_ledger, "requires signed approvals", actor="alice")  # a typed name is not one


def test_an_unsigned_resume_is_still_accepted_where_signing_is_not_required(
    sqlite_ledger: AuditLedger,
) -> None:
    wl = build_refunds(signed=False)
    _pause(sqlite_ledger, wl)
    assert wl.resume(RUN, store=sqlite_ledger.store, input=True, actor="bob").status == "completed"


def test_resume_refuses_an_approval_by_a_key_outside_the_keyring(
    sqlite_ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    _pause(sqlite_ledger, build_refunds())
    approval = sign_approval(sqlite_ledger.store, RUN, input=True, key=alice)
    _refused(sqlite_ledger, "outside the keyring", approval=approval)
    add_approver(sqlite_ledger.store, "Payroll", alice.vkey)  # another workload's approver
    _refused(sqlite_ledger, "outside the keyring", approval=approval)


@pytest.mark.parametrize(
    ("statement", "match"),
    [
        ({"input": False}, "another input"),
        ({"run_id": "refund-2"}, "approves run 'refund-2'"),
        ({"interrupt_seq": 1}, "the pause at seq 1"),
        ({"actor": "mallory"}, None),
    ],
)
def test_resume_refuses_an_approval_of_something_else(
    sqlite_ledger: AuditLedger,
    alice: Ed25519Signer,
    statement: dict[str, Any],
    match: str | None,
) -> None:
    from codon_sdk import ApprovalStatement

    _pause(sqlite_ledger, build_refunds())
    add_approver(sqlite_ledger.store, WORKLOAD, alice.vkey)
    genuine = sign_approval(sqlite_ledger.store, RUN, input=True, key=alice).statement
    fields: dict[str, Any] = {
        "run_id": genuine.run_id,
        "interrupt_seq": genuine.interrupt_seq,
        "input": True,
        "actor": genuine.actor,
        **statement,
    }
    approval = ApprovalStatement.of(**fields).sign(alice)
    if match is None:  # signed as mallory, resumed as alice: the actor must agree
        _refused(sqlite_ledger, "actor= says", approval=approval, actor="alice@acme.example")
    else:
        _refused(sqlite_ledger, match, approval=approval)


def test_resume_refuses_a_malformed_approval(sqlite_ledger: AuditLedger) -> None:
    _pause(sqlite_ledger, build_refunds())
    _refused(sqlite_ledger, "not a signed note", approval="I approve\n")
    signed_other_text = sign_note("I approve\n", [Ed25519Signer.generate("alice")])
    _refused(sqlite_ledger, "not an approval statement", approval=signed_other_text)


def test_an_approval_of_a_run_that_is_not_paused_is_refused(
    sqlite_ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    approval = _approved(sqlite_ledger, alice)
    with pytest.raises(RunConflictError, match="already ended"):
        build_refunds().resume(RUN, store=sqlite_ledger.store, approval=approval)
    with pytest.raises(ApprovalError, match="not paused at an interrupt"):
        sign_approval(sqlite_ledger.store, RUN, input=True, key=alice)


def test_an_approval_cannot_be_replayed_on_a_later_pause(
    sqlite_ledger: AuditLedger, alice: Ed25519Signer
) -> None:
    def twice(message: Any, *, runtime: Any, context: Any) -> str:
        first = runtime.interrupt("first?")
        second = runtime.interrupt("second?")
        return f"{first}/{second}"

    wl = CodonWorkload(name=WORKLOAD, version="1.0", org_namespace="audit-tests")
    wl.add_node(twice, "twice", "payments")
    wl.require_signed_approvals()
    wl.execute("x", deployment_id="audit", store=sqlite_ledger.store, run_id=RUN)
    add_approver(sqlite_ledger.store, WORKLOAD, alice.vkey)
    first = sign_approval(sqlite_ledger.store, RUN, input="yes", key=alice)
    assert wl.resume(RUN, store=sqlite_ledger.store, input="yes", approval=first).status == (
        "interrupted"
    )
    with pytest.raises(ApprovalError, match="the run waits at"):
        wl.resume(RUN, store=sqlite_ledger.store, input="yes", approval=first)
    second = sign_approval(sqlite_ledger.store, RUN, input="yes", key=alice)
    report = wl.resume(RUN, store=sqlite_ledger.store, input="yes", approval=second)
    assert report.node_results("twice") == ["yes/yes"]
    assert sqlite_ledger.verify(RUN).status == "verified"
