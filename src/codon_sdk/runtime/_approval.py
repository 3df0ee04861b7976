"""Signed approvals at resume: what ``resume(..., approval=...)`` checks and records.

A workload that calls :meth:`~codon_sdk.CodonWorkload.require_signed_approvals` refuses
to resume a run paused by ``runtime.interrupt`` without an approval signed by one of its
approvers (the store's keyring, ``stores/_approvers.py``). An approval given is checked
before anything is claimed or written: it must be for this run, for the pause the run
waits at and for the very input given, and signed by a key in the keyring. The ledger
then records the signed note verbatim in ``run_resumed`` (see ``ledger/_approval.py``).

:func:`sign_approval` builds and signs the statement for a paused run: what a UI or the
CLI (``codon resume --approve-key``) calls with the approver's key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codon_sdk._text import printable
from codon_sdk.errors import ApprovalError
from codon_sdk.identity import canonical_bytes, dumps
from codon_sdk.ledger import (
    Approval,
    ApprovalStatement,
    Ed25519Signer,
    Signer,
    input_digest,
    parse_entry,
)
from codon_sdk.stores import LedgerStore, approver_keys, open_store

if TYPE_CHECKING:  # pragma: no cover - typing only
    from codon_sdk.runtime._rebuild import RebuiltRun

__all__ = ["ApprovalLike", "check_approval", "pending_interrupt", "record_of", "sign_approval"]

ApprovalLike = Approval | str | bytes
"""An approval as ``resume`` takes it: parsed, or the signed note as text or bytes."""


def pending_interrupt(rebuilt: RebuiltRun) -> dict[str, Any] | None:
    """The interrupt the run waits at (``runtime.interrupt``), or None."""
    interrupt = rebuilt.interrupt if rebuilt.status == "interrupted" else None
    if interrupt is None or interrupt.get("kind") != "interrupt":
        return None
    return interrupt


def check_approval(
    workload: Any,
    ledger: LedgerStore,
    rebuilt: RebuiltRun,
    input: Any,
    actor: str | None,
    approval: ApprovalLike | None,
) -> tuple[str | None, Approval | None]:
    """The actor to record and the approval checked (None: no approval), or ApprovalError."""
    interrupt = pending_interrupt(rebuilt)
    run = printable(rebuilt.run_id)
    if approval is None:
        if interrupt is not None and getattr(workload, "approvals", "any") == "signed":
            raise ApprovalError(
                f"workload {printable(workload.name)!r} requires signed approvals: run {run} "
                "waits at an interrupt and can only be resumed with an approval signed by one "
                "of its approvers (resume(..., approval=sign_approval(...)) or codon resume "
                "--approve-key KEY). Nothing was recorded"
            )
        return actor, None
    if interrupt is None:
        raise ApprovalError(
            f"run {run} is not paused at an interrupt ({rebuilt.status}): an approval approves "
            "the input of a pause, so there is nothing to approve. Resume it without one"
        )
    parsed = approval if isinstance(approval, Approval) else Approval.parse(approval)
    s = parsed.statement
    seq = interrupt.get("seq")
    problems = []
    if s.run_id != rebuilt.run_id:
        problems.append(f"it approves run {printable(s.run_id)!r}, not {run!r}")
    if s.interrupt_seq != seq:
        problems.append(f"it approves the pause at seq {s.interrupt_seq}, the run waits at {seq}")
    if s.input_sha256 != input_digest(input):
        problems.append("it approves another input than the one given")
    if actor is not None and actor != s.actor:
        problems.append(f"it is signed as {printable(s.actor)!r}, actor= says {printable(actor)!r}")
    if problems:
        raise ApprovalError(
            f"approval refused for run {run}: {'; '.join(problems)}. Sign a statement for this "
            "pause and input (sign_approval). Nothing was recorded"
        )
    found = parsed.check(approver_keys(ledger, workload.name))
    if not found.ok:
        raise ApprovalError(
            f"approval refused for run {run}: {found.message}. Trust the approver's key with "
            f"`codon approvers add --workload {printable(workload.name)!r} --key VKEY`. "
            "Nothing was recorded"
        )
    return s.actor, parsed


def record_of(approval: Approval, input: Any, recorded_input: Any) -> dict[str, Any]:
    """What ``run_resumed`` records of an approval: the note verbatim, and whether the input
    recorded differs from the one approved (the redaction policy masked part of it, so
    verification cannot re-hash it)."""
    redacted = dumps(recorded_input) != canonical_bytes(input)
    return {"note": approval.note, "input_redacted": redacted}


def sign_approval(
    store: str | LedgerStore,
    run_id: str,
    *,
    input: Any,
    key: Signer | str,
    actor: str | None = None,
    time_us: int | None = None,
) -> Approval:
    """Sign an approval of ``input`` for the pause ``run_id`` waits at, with the approver's
    ``key`` (a :class:`Signer`, or a signer key string ``PRIVATE+KEY+...``). ``actor``
    defaults to the key's name. Pass the result to ``resume(..., approval=...)``; it can
    travel as text (``approval.note``) from the approver's machine to the resuming one."""
    from codon_sdk.runtime._rebuild import rebuild

    signer = Ed25519Signer.from_skey(key) if isinstance(key, str) else key
    ledger = open_store(store)
    try:
        rebuilt = rebuild(parse_entry(e) for e in ledger.read(run_id))
    finally:
        if ledger is not store:
            ledger.close()
    interrupt = pending_interrupt(rebuilt)
    if interrupt is None or not isinstance(interrupt.get("seq"), int):
        raise ApprovalError(
            f"run {printable(run_id)} is not paused at an interrupt ({rebuilt.status}): there "
            "is nothing to approve"
        )
    statement = ApprovalStatement.of(
        run_id=run_id,
        interrupt_seq=interrupt["seq"],
        input=input,
        actor=signer.name if actor is None else actor,
        time_us=time_us,
    )
    return statement.sign(signer)
