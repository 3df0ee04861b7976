"""Signed approvals: a statement an approver signs with their own Ed25519 key (pure, no I/O).

An approval statement says who approved which input at which pause of which run, and
when. It is the text of a C2SP signed note (``_note.py``: the same format and signer
as checkpoints), one field a line::

    codon approval v1
    run: <run id>
    interrupt: <seq of the run_interrupted event approved>
    input: sha256:<hex SHA-256 of the RFC 8785 bytes of the input>
    actor: <who approves>
    time: <UTC time, ISO 8601 with microseconds, e.g. 2026-12-07T14:05:47.123456Z>

A blank line and the approver's signature line follow. The ledger records the whole
note verbatim in the ``run_resumed`` event (under ``metadata.approval.note``: never
redacted, since redaction would break the signature), and :func:`check_approvals`
checks every recorded approval against a keyring of approver keys at verify time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from codon_sdk._clock import from_us, now_us, to_us
from codon_sdk.errors import ApprovalError, CheckpointError
from codon_sdk.identity import canonical_bytes, json_canonical
from codon_sdk.ledger._event_types import RUN_RESUMED
from codon_sdk.ledger._events import parse_entry
from codon_sdk.ledger._note import Note, Signer, Verifier, check_note, sign_note

__all__ = [
    "APPROVAL_HEADER",
    "Approval",
    "ApprovalCheck",
    "ApprovalStatement",
    "check_approvals",
    "input_digest",
]

APPROVAL_HEADER: Final = "codon approval v1"
_FIELDS: Final = ("run", "interrupt", "input", "actor", "time")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
#: What the redaction policy leaves where it masked or sealed a value (``redaction/``): an
#: input recorded as masked must hold one.
_MARKERS: Final = (b"[REDACTED:", b"[SEALED:")


def input_digest(value: Any) -> str:
    """``sha256:<hex>`` of the RFC 8785 bytes of ``value``: what a statement approves."""
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()


def _line_value(label: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ApprovalError(
            f"approval {label} must be a non-empty string of printable characters (no "
            f"newlines), got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalStatement:
    """What an approver signs: run id, interrupt seq, input digest, actor and time."""

    run_id: str
    interrupt_seq: int
    input_sha256: str
    actor: str
    time_us: int

    def __post_init__(self) -> None:
        _line_value("run id", self.run_id)
        _line_value("actor", self.actor)
        for label, number in (("interrupt seq", self.interrupt_seq), ("time", self.time_us)):
            if type(number) is not int or number < 0:
                raise ApprovalError(
                    f"approval {label} must be a non-negative integer, got {number!r}"
                )
        if not isinstance(self.input_sha256, str) or not _DIGEST.match(self.input_sha256):
            raise ApprovalError(
                f"approval input digest must be 'sha256:' and 64 lower-case hex digits, got "
                f"{self.input_sha256!r}; build it with input_digest(value)"
            )

    @classmethod
    def of(
        cls,
        *,
        run_id: str,
        interrupt_seq: int,
        input: Any,
        actor: str,
        time_us: int | None = None,
    ) -> ApprovalStatement:
        """The statement approving ``input`` (hashed here) at ``interrupt_seq`` of ``run_id``."""
        return cls(
            run_id=run_id,
            interrupt_seq=interrupt_seq,
            input_sha256=input_digest(input),
            actor=actor,
            time_us=now_us() if time_us is None else time_us,
        )

    @property
    def time(self) -> datetime:
        """When the approver signed, as an aware UTC datetime."""
        return from_us(self.time_us)

    def text(self) -> str:
        """The note text signed (see the module docstring)."""
        when = self.time.strftime(_TIME_FORMAT)
        values = (self.run_id, str(self.interrupt_seq), self.input_sha256, self.actor, when)
        body = "".join(f"{k}: {v}\n" for k, v in zip(_FIELDS, values, strict=True))
        return f"{APPROVAL_HEADER}\n{body}"

    @classmethod
    def parse(cls, text: str) -> ApprovalStatement:
        """Read a statement from its note text; :class:`ApprovalError` when malformed."""
        lines = text.split("\n")
        if lines[-1:] == [""]:
            lines.pop()
        if len(lines) != len(_FIELDS) + 1 or lines[0] != APPROVAL_HEADER:
            raise ApprovalError(
                f"not an approval statement: expected {APPROVAL_HEADER!r} and the lines "
                f"{', '.join(_FIELDS)}, got {text[:120]!r}"
            )
        values: dict[str, str] = {}
        for label, line in zip(_FIELDS, lines[1:], strict=True):
            key, sep, value = line.partition(": ")
            if key != label or not sep:
                raise ApprovalError(f"approval statement line {line!r} is not '{label}: ...'")
            values[label] = value
        seq = values["interrupt"]
        if not seq.isdigit() or str(int(seq)) != seq:
            raise ApprovalError(f"approval interrupt seq {seq!r} is not a decimal integer")
        try:
            when = datetime.strptime(values["time"], _TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            raise ApprovalError(
                f"approval time {values['time']!r} is not UTC ISO 8601 with microseconds "
                "(e.g. 2026-12-07T14:05:47.123456Z)"
            ) from None
        return cls(
            run_id=values["run"],
            interrupt_seq=int(seq),
            input_sha256=values["input"],
            actor=values["actor"],
            time_us=to_us(when),
        )

    def sign(self, signer: Signer) -> Approval:
        """This statement signed with the approver's own key (an :class:`Ed25519Signer`,
        or any :class:`Signer`, e.g. one held in a KMS)."""
        note = sign_note(self.text(), [signer]).decode("utf-8")
        return Approval.parse(note)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalCheck:
    """What checking an approval against a keyring found: ``ok``, or why not."""

    ok: bool
    code: str
    message: str
    signer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A signed approval statement: the note as text and the statement it carries."""

    note: str
    statement: ApprovalStatement

    @classmethod
    def parse(cls, note: str | bytes) -> Approval:
        """Read a signed approval note; :class:`ApprovalError` when it is not one."""
        try:
            parsed = Note.parse(note)
        except CheckpointError as exc:
            raise ApprovalError(f"the approval is not a signed note: {exc}") from exc
        text = parsed.format().decode("utf-8")
        return cls(note=text, statement=ApprovalStatement.parse(parsed.text))

    def check(self, keyring: Iterable[Verifier | str]) -> ApprovalCheck:
        """Check the signature against ``keyring`` (the approver keys of the workload)."""
        try:
            found = check_note(self.note, keyring)
        except CheckpointError as exc:
            return ApprovalCheck(ok=False, code="approval_malformed", message=str(exc))
        if found.bad:
            return ApprovalCheck(
                ok=False,
                code="approval_signature",
                message=f"the approval's signature by {', '.join(found.bad)} does not verify: "
                "the statement was edited after signing, or the signature was forged",
            )
        if not found.verified:
            signers = ", ".join(found.unknown) or "nobody"
            return ApprovalCheck(
                ok=False,
                code="approval_untrusted",
                message=f"the approval is signed by {signers}, a key outside the keyring of "
                "approvers for this workload (or another key under a known name)",
            )
        return ApprovalCheck(
            ok=True,
            code="approval",
            message=f"signed by approver {', '.join(found.verified)}",
            signer=found.verified[0],
        )


def check_approvals(
    run_id: str,
    entries: Sequence[bytes],
    pauses: Sequence[int],
    keyring: Sequence[Verifier | str] | None,
) -> tuple[list[ApprovalCheck], list[str], list[tuple[int, ApprovalCheck]]]:
    """Check every approval recorded in ``entries`` (a run's ledger, whose chain was walked:
    ``pauses`` are the seqs of its ``run_interrupted`` events).

    Returns ``(notes, checked, problems)``: notes that are no tamper (no keyring given),
    lines of what was checked, and ``(seq, check)`` for each approval that fails.
    Only entries after the first pause whose bytes hold an approval are decoded.
    """
    notes: list[ApprovalCheck] = []
    checked: list[str] = []
    problems: list[tuple[int, ApprovalCheck]] = []
    # an approval approves a pause, so it stands after one: a run that never paused (most
    # runs) costs nothing here, and only entries from the first pause on are looked at
    start = min(pauses) + 1 if pauses else len(entries)
    for seq in range(start, len(entries)):
        entry = entries[seq]
        if b'"approval":' not in entry:
            continue
        ev = parse_entry(entry)
        approval = ev.metadata.get("approval") if ev.type == RUN_RESUMED else None
        if approval is None:
            continue
        before = [p for p in pauses if p < seq]
        check = _check_one(run_id, ev.metadata, approval, before[-1] if before else None, keyring)
        if check is None:
            notes.append(
                ApprovalCheck(
                    ok=True,
                    code="approval_unchecked",
                    message=f"the approval at seq {seq} was not checked: no keyring of "
                    "approvers was given",
                )
            )
        elif check.ok:
            checked.append(f"approval at seq {seq}: {check.message}")
        else:
            problems.append((seq, check))
    return notes, checked, problems


def _check_one(
    run_id: str,
    metadata: dict[str, Any],
    record: Any,
    paused_at: int | None,
    keyring: Sequence[Verifier | str] | None,
) -> ApprovalCheck | None:
    def bad(code: str, message: str) -> ApprovalCheck:
        return ApprovalCheck(ok=False, code=code, message=message)

    if not isinstance(record, dict) or not isinstance(record.get("note"), str):
        return bad("approval_malformed", f"the recorded approval {record!r:.120} is no note")
    try:
        approval = Approval.parse(record["note"])
    except ApprovalError as exc:
        return bad("approval_malformed", f"the recorded approval is malformed: {exc}")
    statement = approval.statement
    if statement.run_id != run_id:
        return bad("approval_run", f"the approval is for run {statement.run_id!r}, not this run")
    if statement.interrupt_seq != paused_at:
        return bad(
            "approval_interrupt",
            f"the approval is for the pause at seq {statement.interrupt_seq}, but the run "
            f"resumed from the pause at seq {paused_at}",
        )
    recorded_bytes = json_canonical(metadata.get("input"))
    if record.get("input_redacted") is True:
        if not any(marker in recorded_bytes for marker in _MARKERS):
            return bad(
                "approval_input",
                "the run records its approved input as masked by the redaction policy, but "
                "the input holds no redaction marker: the flag was planted to skip the check",
            )
    else:
        recorded = "sha256:" + hashlib.sha256(recorded_bytes).hexdigest()
        if recorded != statement.input_sha256:
            return bad(
                "approval_input",
                f"the approval is for input {statement.input_sha256[:19]}…, the run resumed "
                f"with input {recorded[:19]}…: the input was changed",
            )
    if keyring is None:
        return None
    return approval.check(keyring)
