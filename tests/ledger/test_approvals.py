"""Approval statements (pure): their text, parsing, signatures, and what ``verify_entries`` makes
of each approval a ledger records, hostile records included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from codon_sdk import ApprovalError, ApprovalStatement, CodonWorkload, MemoryStore, sign_approval
from codon_sdk.identity import json_canonical
from codon_sdk.ledger import Approval, Ed25519Signer, input_digest, parse_entry, verify_entries
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.stores import add_approver

RUN = "refund-1"
ALICE = Ed25519Signer("alice@acme.example", b"\x07" * 32)


def _statement(**changes: Any) -> ApprovalStatement:
    fields: dict[str, Any] = {
        "run_id": RUN,
        "interrupt_seq": 3,
        "input": {"approved": True},
        "actor": "alice@acme.example",
        "time_us": 1_796_650_000_123_456,
        **changes,
    }
    return ApprovalStatement.of(**fields)


def test_a_statement_is_readable_text_that_round_trips() -> None:
    s = _statement()
    assert s.text() == (
        "codon approval v1\n"
        f"run: {RUN}\n"
        "interrupt: 3\n"
        f"input: {input_digest({'approved': True})}\n"
        "actor: alice@acme.example\n"
        f"time: {s.time.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}\n"
    )
    assert ApprovalStatement.parse(s.text()) == s
    approval = s.sign(ALICE)
    assert Approval.parse(approval.note) == approval
    assert Approval.parse(approval.note.encode()).statement == s


def test_the_input_digest_is_the_sha256_of_the_canonical_bytes() -> None:
    import hashlib

    assert input_digest({"b": 1, "a": [True, None]}) == (
        "sha256:" + hashlib.sha256(b'{"a":[true,null],"b":1}').hexdigest()
    )
    assert input_digest({"a": 1}) != input_digest({"a": 2})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"actor": "alice\nrun: other"}, "printable"),
        ({"actor": ""}, "non-empty"),
        ({"run_id": "x\ty"}, "printable"),
        ({"interrupt_seq": -1}, "non-negative"),
        ({"interrupt_seq": True}, "non-negative"),
        ({"time_us": 1.5}, "non-negative"),
    ],
)
def test_a_statement_with_a_bad_field_is_refused(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ApprovalError, match=match):
        _statement(**changes)


def test_a_bad_digest_is_refused() -> None:
    with pytest.raises(ApprovalError, match="input digest"):
        ApprovalStatement(run_id=RUN, interrupt_seq=1, input_sha256="md5:00", actor="a", time_us=0)


@pytest.mark.parametrize(
    "text",
    [
        "hello\n",
        "codon approval v2\nrun: a\ninterrupt: 1\ninput: x\nactor: a\ntime: t\n",
        _statement().text().replace("interrupt: 3", "interrupt: 03"),
        _statement().text().replace("interrupt: 3", "seq: 3"),
        _statement().text().replace("Z\n", "+01:00\n"),
        _statement().text() + "extra: line\n",
        _statement().text().replace("input: sha256:", "input: sha1:"),
    ],
)
def test_malformed_statement_text_is_refused(text: str) -> None:
    with pytest.raises(ApprovalError):
        ApprovalStatement.parse(text)


def test_a_signature_checks_only_against_the_keyring() -> None:
    approval = _statement().sign(ALICE)
    assert approval.check([ALICE.vkey]).ok
    assert approval.check([ALICE.vkey]).signer == "alice@acme.example"
    outside = approval.check([Ed25519Signer.generate("bob").vkey])
    assert (outside.ok, outside.code) == (False, "approval_untrusted")
    same_name = approval.check([Ed25519Signer.generate("alice@acme.example").vkey])
    assert (same_name.ok, same_name.code) == (False, "approval_untrusted")
    assert approval.check(["not a key"]).code == "approval_malformed"
    edited = Approval(
        note=approval.note.replace("interrupt: 3", "interrupt: 4"),
        statement=_statement(interrupt_seq=4),
    )
    assert edited.check([ALICE.vkey]).code == "approval_signature"


# --------------------------------------------------------------------------- in a ledger


def _approved_entries() -> tuple[list[bytes], str]:
    """A run approved by ALICE in a memory store: its entries, and the keyring's vkey."""

    def refund(message: Any, *, runtime: Any, context: Any) -> str:
        return str(runtime.interrupt("ok?"))

    wl = CodonWorkload(name="Refunds", version="1.0", org_namespace="tests")
    wl.add_node(refund, "refund", "payments")
    wl.require_signed_approvals()
    store = MemoryStore()
    wl.execute("x", deployment_id="d", store=store, run_id=RUN)
    add_approver(store, "Refunds", ALICE.vkey)
    approval = sign_approval(store, RUN, input={"approved": True}, key=ALICE)
    wl.resume(RUN, store=store, input={"approved": True}, approval=approval)
    return store.read(RUN), ALICE.vkey


def _rechained(entries: list[bytes], seq: int, change: Any) -> list[bytes]:
    out: list[bytes] = []
    for i, entry in enumerate(entries):
        obj = orjson.loads(entry)
        if i == seq:
            change(obj)
        if out:
            obj["prev"] = leaf_hash(out[-1]).hex()
        out.append(json_canonical(obj))
    return out


def _resumed(entries: list[bytes]) -> int:
    return next(i for i, e in enumerate(entries) if parse_entry(e).type == "run_resumed")


def test_verify_checks_each_recorded_approval_against_the_keyring() -> None:
    entries, vkey = _approved_entries()
    report = verify_entries(RUN, entries, approvers=[vkey])
    assert report.status == "unanchored", report.summary()
    assert [c for c in report.checked if c.startswith("approval")] == [
        f"approval at seq {_resumed(entries)}: signed by approver alice@acme.example"
    ]
    unchecked = verify_entries(RUN, entries)
    assert unchecked.ok
    assert [f.code for f in unchecked.findings] == ["approval_unchecked"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda md: md["approval"].update(note=md["approval"]["note"].replace("3", "2")), None),
        (lambda md: md.update(approval="yes"), "approval_malformed"),
        (lambda md: md.update(approval={"note": 7}), "approval_malformed"),
        (lambda md: md["approval"].update(note="not a note"), "approval_malformed"),
        (lambda md: md.update(input={"approved": False}), "approval_input"),
        (
            lambda md: (md.update(input=False), md["approval"].update(input_redacted=True)),
            "approval_input",
        ),
    ],
)
def test_a_rewritten_approval_is_the_only_finding_of_a_careful_rewrite(
    change: Any, code: str | None
) -> None:
    """Hashes recomputed, no checkpoints to tell: the approval check alone catches it, as a
    finding (never a traceback)."""
    entries, vkey = _approved_entries()
    seq = _resumed(entries)
    forged = _rechained(entries, seq, lambda obj: change(obj["metadata"]))
    report = verify_entries(RUN, forged, approvers=[vkey])
    assert report.status == "tampered", report.summary()
    tampers = [f for f in report.findings if f.tamper]
    assert len(tampers) == 1, report.summary()
    assert tampers[0].seq == seq
    if code is not None:
        assert tampers[0].code == code
    else:  # an edited digit: the signature or, first, what the statement names
        assert tampers[0].code.startswith("approval_")


def test_an_approval_moved_to_another_run_is_caught() -> None:
    entries, vkey = _approved_entries()
    moved = [json_canonical({**orjson.loads(e), "run_id": "refund-2"}) for e in entries]
    moved = _rechained(moved, -1, lambda obj: None)
    report = verify_entries("refund-2", moved, approvers=[vkey])
    assert [f.code for f in report.findings if f.tamper] == ["approval_run"]


def test_an_input_the_redaction_policy_masked_still_verifies() -> None:
    """The approver signs the input given; the ledger records it masked, says so, and verify
    checks the signature (the digest of a masked input cannot be recomputed)."""

    def deploy(message: Any, *, runtime: Any, context: Any) -> str:
        return "deployed" if runtime.interrupt("token?") else "no"

    wl = CodonWorkload(name="Deploys", version="1.0", org_namespace="tests")
    wl.add_node(deploy, "deploy", "ops")
    wl.require_signed_approvals()
    store = MemoryStore()
    wl.execute("x", deployment_id="d", store=store, run_id=RUN)
    add_approver(store, "Deploys", ALICE.vkey)
    secret = {"token": "sk-proj-" + "A1b2C3d4" * 6}
    approval = sign_approval(store, RUN, input=secret, key=ALICE)
    wl.resume(RUN, store=store, input=secret, approval=approval)
    entries = store.read(RUN)
    resumed = parse_entry(entries[_resumed(entries)])
    assert resumed.metadata["approval"]["input_redacted"] is True
    assert secret["token"] not in b"".join(entries).decode()
    assert verify_entries(RUN, entries, approvers=[ALICE.vkey]).ok
