"""Verification of a run's ledger against itself and against signed checkpoints (pure, no I/O).

What is checked, for every entry: it parses, it is in canonical (RFC 8785) form,
it belongs to the run, its seq is its position, its ``prev`` is the leaf hash of
the entry before, the first is ``run_started``, nothing follows ``run_finished``.
Then the RFC 6962 Merkle root of the leaves is compared with every checkpoint:
those stored with the run and those the caller holds (exported elsewhere). A
checkpoint must parse, carry the run's origin, cover no more events than exist,
match the root of that many leaves and, when verifier keys are given, be signed
by one of them. ``run_started`` may announce checkpointing (origin, interval):
then every announced checkpoint must exist.

Verdicts:

An erased event (``_erasure``) is an ``erased`` finding that is no tamper: its place,
order and leaf hash hold, so every root and checkpoint still matches.

* ``tampered``: something above failed;
* ``incomplete``: nothing failed, but the run has not ended (it is running, crashed
  or paused), or its index says it ended and the ledger lacks the end;
* ``verified``: consistent, ended, and anchored by a checkpoint the caller holds;
* ``unanchored``: consistent and ended, but checked against no checkpoint held
  outside the database: an attacker who can rewrite the whole database could
  have rewritten it consistently. Export checkpoints to make runs verifiable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import filterfalse
from typing import Any, Final

from codon_sdk._text import printable
from codon_sdk.errors import CheckpointError
from codon_sdk.ledger._approval import check_approvals
from codon_sdk.ledger._chain import ChainWalk, walk_chain
from codon_sdk.ledger._checkpoint import Checkpoint
from codon_sdk.ledger._erasure import ErasureLog, Permit
from codon_sdk.ledger._merkle import MerkleAccumulator
from codon_sdk.ledger._note import Verifier, check_note

__all__ = [
    "Finding",
    "VerificationReport",
    "verify_entries",
]

VERIFIED: Final = "verified"
UNANCHORED: Final = "unanchored"
INCOMPLETE: Final = "incomplete"
TAMPERED: Final = "tampered"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing verification found: where (``seq``, if an event), what, and how bad."""

    seq: int | None
    code: str
    message: str
    tamper: bool = True
    #: the run a finding of the log of runs is about (None: the run being verified, or none)
    run_id: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "run"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The verdict on one run's ledger (see the module docstring)."""

    run_id: str
    status: str
    event_count: int
    head: str | None
    root: str
    findings: tuple[Finding, ...] = ()
    anchors: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Verified or unanchored: nothing is wrong with what was checked."""
        return self.status in (VERIFIED, UNANCHORED)

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """A human-readable verdict (strings that came from the ledger shown escaped)."""
        lines = [
            f"run {printable(self.run_id)}: {self.status.upper()} ({self.event_count} events, "
            f"root {self.root[:16]}…)"
        ]
        lines.extend(f"  checked: {printable(c)}" for c in self.checked)
        lines.extend(f"  anchor:  {printable(a)}" for a in self.anchors)
        lines.extend(f"  {'TAMPER' if f.tamper else 'note'}: {printable(f)}" for f in self.findings)
        if self.status == UNANCHORED:
            lines.append(
                "  no checkpoint held outside the database was checked: export checkpoints "
                "(a checkpoint sink) and pass them with --checkpoint to anchor the run"
            )
        return "\n".join(lines)

    __str__ = summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "ok": self.ok,
            "event_count": self.event_count,
            "head": self.head,
            "root": self.root,
            "checked": list(self.checked),
            "anchors": list(self.anchors),
            "findings": [
                {"seq": f.seq, "code": f.code, "message": f.message, "tamper": f.tamper}
                for f in self.findings
            ],
        }


@dataclass(slots=True)
class _Checkpointed:
    source: str  # "stored" or "external"
    label: str
    checkpoint: Checkpoint
    signed_by: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    def tamper(self, seq: int | None, code: str, message: str, run_id: str | None = None) -> None:
        self.findings.append(Finding(seq, code, message, True, run_id))

    def note(self, seq: int | None, code: str, message: str) -> None:
        self.findings.append(Finding(seq, code, message, False))


def verify_entries(
    run_id: str,
    entries: Sequence[bytes],
    *,
    stored_checkpoints: Sequence[bytes] = (),
    external_checkpoints: Sequence[bytes] = (),
    vkeys: Iterable[str | Verifier] | None = None,
    index_says_ended: bool | None = None,
    index_event_count: int | None = None,
    index_head: str | None = None,
    approvers: Sequence[str | Verifier] | None = None,
    erasures: ErasureLog | None = None,
) -> VerificationReport:
    """Verify one run's entries (in seq order) and checkpoints; see the module docstring.

    ``approvers`` is the keyring of approver keys of the run's workload: every signed
    approval the ledger records must verify against it (None: approvals are not checked).

    ``erasures`` is the store's erasure log, checked (``_erasure``): a stand-in it names is
    an ``erased`` finding (not a tamper: the event's place and hash still hold), one it does
    not name is tampered, and so is a broken line of the log about this run.

    ``index_*`` are what the store's runs index says about the run; a ledger
    shorter than the index, or with another head, was cut. A malformed verifier
    key raises :class:`CheckpointError` (the caller's mistake, not the ledger's).
    """
    verifiers = _verifiers(vkeys)  # a malformed key is the caller's mistake: it raises
    try:
        return _verify(
            run_id,
            entries,
            stored_checkpoints,
            external_checkpoints,
            verifiers,
            index_says_ended,
            index_event_count,
            index_head,
            approvers,
            erasures,
        )
    except Exception as exc:  # hostile data no check foresaw: still a verdict, never a crash
        return VerificationReport(
            run_id=run_id,
            status=TAMPERED,
            event_count=len(entries),
            head=None,
            root=_EMPTY_ROOT,
            findings=(
                Finding(
                    None,
                    "unverifiable",
                    f"verification could not complete on this run's data ({type(exc).__name__}: "
                    f"{exc}); its ledger cannot be trusted",
                ),
            ),
        )


_EMPTY_ROOT: Final = MerkleAccumulator().root().hex()


def _verify(
    run_id: str,
    entries: Sequence[bytes],
    stored_checkpoints: Sequence[bytes],
    external_checkpoints: Sequence[bytes],
    verifiers: list[Verifier] | None,
    index_says_ended: bool | None,
    index_event_count: int | None,
    index_head: str | None,
    approvers: Sequence[str | Verifier] | None = None,
    erasures: ErasureLog | None = None,
) -> VerificationReport:
    state = _State()
    permits = erasures.of(run_id) if erasures is not None else {}
    # The checkpoints are opened first, so the walk knows the sizes whose roots to keep;
    # what opening them finds is reported where it always was, after the index.
    opening = _State()
    checkpoints = [
        *_open_all(stored_checkpoints, "stored", verifiers, opening),
        *_open_all(external_checkpoints, "external", verifiers, opening),
    ]
    walk = walk_chain(
        entries, run_id=run_id, sizes=[c.checkpoint.size for c in checkpoints], permits=permits
    )
    if walk.problem is not None:
        state.tamper(walk.bad_seq, "chain", walk.problem)
    if not entries:
        state.tamper(0, "empty", "the run has no events")
    state.checked.append(
        f"{len(entries)} entries: canonical bytes, run id, seq, prev chain, start and end events"
    )
    _erased(run_id, walk, permits, erasures, state)
    ended = walk.ended
    announced = walk.started.get("checkpoints") if walk.problem is None else None
    if not isinstance(announced, dict):
        announced = {}
    _check_index(entries, walk.head, index_event_count, index_head, state)
    state.findings.extend(opening.findings)
    anchored = _check_checkpoints(
        run_id, walk, checkpoints, announced, ended, walk.pauses, verifiers, state
    )
    if walk.problem is None:
        _approvals(run_id, entries, walk.pauses, approvers, state)
    if not ended:
        _not_ended(walk, index_says_ended, len(entries), state)
    elif state.anchors and anchored < walk.count:
        state.note(
            None,
            "partly_anchored",
            f"checkpoints held outside the database anchor the first {anchored} of "
            f"{walk.count} events; the last {walk.count - anchored} are not anchored "
            "(export the checkpoint made at the end of the run)",
        )
    tampered = any(f.tamper for f in state.findings)
    if tampered:
        status = TAMPERED
    elif not ended:
        status = INCOMPLETE
    elif state.anchors and anchored == walk.count:
        status = VERIFIED
    else:
        status = UNANCHORED
    return VerificationReport(
        run_id=run_id,
        status=status,
        event_count=len(entries),
        head=walk.head.hex() if walk.head is not None else None,
        root=walk.roots[walk.count].hex(),
        findings=tuple(state.findings),
        anchors=tuple(state.anchors),
        checked=tuple(state.checked),
    )


def _erased(
    run_id: str,
    walk: ChainWalk,
    permits: Mapping[int, Permit],
    erasures: ErasureLog | None,
    state: _State,
) -> None:
    """An ``erased`` finding per erased event, and the erasure log's problems with this run."""
    for problem in erasures.problems_of(run_id) if erasures is not None else ():
        state.tamper(None, "erasure_log", problem)
    for seq in walk.erased:
        permit = permits[seq]
        when = datetime.fromtimestamp(permit.erased_us / 1e6, tz=timezone.utc)
        state.findings.append(
            Finding(
                seq,
                "erased",
                f"event {seq} was erased at {when:%Y-%m-%d %H:%M:%S} UTC by "
                f"{printable(permit.actor)} ({printable(permit.reason)}; erasure log line "
                f"{permit.line}): its place and hash in the chain hold, its content is gone",
                False,
            )
        )
    if walk.erased:
        state.checked.append(
            f"{len(walk.erased)} erased event(s): each named, with its leaf, by the erasure log"
        )


def _not_ended(walk: ChainWalk, index_says_ended: bool | None, count: int, state: _State) -> None:
    """What a ledger without (an intact chain to) ``run_finished`` means, and no more."""
    if walk.problem is None:
        if index_says_ended:
            state.tamper(
                count,
                "end_missing",
                "the runs index says this run ended but its ledger has no run_finished: "
                "the tail was cut off",
            )
        else:
            state.note(None, "not_ended", "the run has not ended (running, crashed or paused)")
    elif index_says_ended and not walk.end_after_fault:
        state.tamper(
            count,
            "end_missing",
            "the runs index says this run ended but no run_finished event is left in its "
            "ledger: the end was removed (or the tail cut off)",
        )


def _approvals(
    run_id: str,
    entries: Sequence[bytes],
    pauses: list[int],
    approvers: Sequence[str | Verifier] | None,
    state: _State,
) -> None:
    """Each signed approval the ledger records, checked against the approvers' keyring."""
    notes, checked, problems = check_approvals(run_id, entries, pauses, approvers)
    for note in notes:
        state.note(None, note.code, note.message)
    state.checked.extend(checked)
    for seq, problem in problems:
        state.tamper(seq, problem.code, problem.message)


def _verifiers(vkeys: Iterable[str | Verifier] | None) -> list[Verifier] | None:
    if vkeys is None:
        return None
    return [key if isinstance(key, Verifier) else Verifier.from_vkey(key) for key in vkeys]


def _check_index(
    entries: Sequence[bytes],
    last: bytes | None,
    count: int | None,
    head: str | None,
    state: _State,
) -> None:
    if (count is not None and type(count) is not int) or (
        head is not None and type(head) is not str
    ):
        state.tamper(
            None,
            "index_malformed",
            f"the runs index holds event_count {count!r} and head {head!r}, which no codon "
            "store writes: the index was edited",
        )
        return
    if count is not None and count > len(entries):
        state.tamper(
            len(entries),
            "index_count",
            f"the runs index records {count} events but the ledger holds {len(entries)}: "
            "events were deleted from the end",
        )
    elif count == len(entries) and head and last is not None and head != last.hex():
        state.tamper(
            len(entries) - 1,
            "index_head",
            "the runs index records another head hash than the ledger's last event: "
            "the ledger was rewritten",
        )


def _open_all(
    notes: Sequence[bytes], source: str, verifiers: list[Verifier] | None, state: _State
) -> list[_Checkpointed]:
    """Parse (and, with verifiers, check the signatures of) checkpoint notes."""
    out: list[_Checkpointed] = []
    for i, note in enumerate(notes):
        label = f"{source} checkpoint #{i + 1}"
        try:
            if verifiers is None:
                from codon_sdk.ledger._note import Note

                text = Note.parse(note).text
                out.append(_Checkpointed(source, label, Checkpoint.parse(text)))
                continue
            check = check_note(note, verifiers)
            checkpoint = Checkpoint.parse(check.text)
        except (CheckpointError, ValueError, TypeError) as exc:  # hostile bytes: a finding
            state.tamper(None, "checkpoint_malformed", f"{label} is malformed: {exc}")
            continue
        if check.bad:
            state.tamper(
                None,
                "checkpoint_signature",
                f"{label} (size {checkpoint.size}) has a signature by trusted key "
                f"{', '.join(check.bad)} that does not verify: edited after signing",
            )
            continue
        if not check.verified:
            signers = ", ".join(check.unknown) or "nobody"
            state.tamper(
                None,
                "checkpoint_untrusted",
                f"{label} (size {checkpoint.size}) is not signed by a trusted key (signed by "
                f"{signers}): re-signed with another key, or the wrong verifier keys were given",
            )
            continue
        out.append(_Checkpointed(source, label, checkpoint, check.verified))
    return out


def _check_checkpoints(
    run_id: str,
    walk: ChainWalk,
    checkpoints: list[_Checkpointed],
    announced: dict[str, Any],
    ended: bool,
    pauses: list[int],
    verifiers: list[Verifier] | None,
    state: _State,
) -> int:
    """Check every checkpoint against the roots the walk took; return how many events the
    largest trusted external checkpoint anchors."""
    origin = announced.get("origin")
    suffix = f"/run/{run_id}"
    count, roots = walk.count, walk.roots
    anchored = 0
    for item in checkpoints:
        cp = item.checkpoint
        if (origin is not None and cp.origin != origin) or not cp.origin.endswith(suffix):
            state.tamper(
                None,
                "checkpoint_origin",
                f"{item.label} is for {cp.origin!r}, not this run ({origin or '*' + suffix}): "
                "it belongs to another run or ledger",
            )
            continue
        if cp.size > count:
            state.tamper(
                count,
                "truncated",
                f"{item.label} covers {cp.size} events but the ledger holds only {count}: "
                "events were deleted from the end",
            )
            continue
        if roots[cp.size] != cp.root:
            state.tamper(
                cp.size - 1 if cp.size else None,
                "checkpoint_root",
                f"{item.label} (size {cp.size}) does not match the Merkle root of the first "
                f"{cp.size} events: an event was edited, inserted, deleted or reordered "
                "(hashes recomputed or not)",
            )
            continue
        signed = f", signed by {', '.join(item.signed_by)}" if item.signed_by else ""
        unsigned = " (signature not checked: no verifier keys given)" if verifiers is None else ""
        state.checked.append(f"{item.label}: size {cp.size} root matches{signed}{unsigned}")
        if item.source == "external" and verifiers is not None:
            # only a checkpoint whose signature a trusted key vouches for anchors the run
            state.anchors.append(f"{item.label}: size {cp.size}{signed}")
            anchored = max(anchored, cp.size)
    if announced:
        _check_announced(count, checkpoints, announced, ended, pauses, state)
    return anchored


def _check_announced(
    count: int,
    checkpoints: list[_Checkpointed],
    announced: dict[str, Any],
    ended: bool,
    pauses: list[int],
    state: _State,
) -> None:
    """Every checkpoint ``run_started`` announced must be stored: every ``every`` events,
    at each pause and at the end."""
    every = announced.get("every")
    have = {c.checkpoint.size for c in checkpoints if c.source == "stored"}
    expected = {seq + 1 for seq in pauses}
    if ended:
        expected.add(count)
    missing = expected - have
    if isinstance(every, int) and every > 0:  # the sizes every ``every`` events, never held
        missing.update(filterfalse(have.__contains__, range(every, count + 1, every)))
    for size in sorted(missing):
        state.tamper(
            None,
            "checkpoint_missing",
            f"the checkpoint for size {size} announced by run_started (every {every} events, "
            "at each pause and at the end) is missing: stripped from the database",
        )


def _prefix_roots(leaves: list[bytes], sizes: list[int]) -> dict[int, bytes]:
    acc = MerkleAccumulator()
    roots: dict[int, bytes] = {}
    position = 0
    for size in sizes:
        acc.extend(leaves[position:size])
        position = size
        roots[size] = acc.root()
    return roots
