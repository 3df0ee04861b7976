"""Proof files: self-contained JSON an auditor verifies offline with nothing but verifier keys.

Format version 1. A proof file is one UTF-8 JSON object (no duplicate keys, no
other fields than listed); hashes are 64 lowercase hex digits; signed checkpoint
notes are embedded as JSON strings, exactly as signed.

Inclusion proof: "this entry is leaf ``seq`` of the tree the checkpoint signs"::

    {
      "format": "codon.proof",
      "v": 1,
      "type": "inclusion",
      "entry": "<the entry bytes, as UTF-8 text: the canonical JSON of the event>",
      "seq": 7,                        leaf index (an event's seq)
      "size": 12,                      tree size; must equal the checkpoint's size
      "path": ["<hex>", ...],          RFC 9162 audit path, from the leaf up
      "checkpoint": "<signed checkpoint note>"
    }

The verifier recomputes the leaf hash ``SHA-256(0x00 || entry)`` itself. When
the entry is a ledger event (a JSON object with ``seq``), its ``seq`` must be the
leaf index, and when the checkpoint origin is a run's (``.../run/<run id>``), its
``run_id`` must be that run.

Consistency proof: "the old tree is a prefix of the new one" (same origin)::

    {
      "format": "codon.proof",
      "v": 1,
      "type": "consistency",
      "old_checkpoint": "<signed checkpoint note>",
      "new_checkpoint": "<signed checkpoint note>",
      "path": ["<hex>", ...]           RFC 9162 consistency proof
    }

:func:`verify_proof_file` never raises for anything in the file: a malformed or
failing file is a :class:`ProofVerdict` with ``ok=False`` whose ``problem`` says
what is wrong. A checkpoint signed by no trusted key, or carrying a failing
signature by a trusted key, fails the verdict. Only a malformed verifier key
(the caller's configuration) raises :class:`~codon_sdk.errors.CheckpointError`,
and a missing ``cryptography`` package raises ``ImportError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from codon_sdk.errors import CheckpointError, ProofError
from codon_sdk.ledger._checkpoint import Checkpoint
from codon_sdk.ledger._merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from codon_sdk.ledger._note import Note, Verifier, check_note

__all__ = [
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "ProofVerdict",
    "build_consistency_proof",
    "build_inclusion_proof",
    "verify_proof_file",
]

PROOF_FORMAT: Final = "codon.proof"
PROOF_VERSION: Final = 1
# Trees of at most 2**64 - 1 leaves: audit paths have at most 64 hashes, consistency proofs 65.
_MAX_PATH: Final = 65
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS: Final = {
    "inclusion": frozenset({"format", "v", "type", "entry", "seq", "size", "path", "checkpoint"}),
    "consistency": frozenset({"format", "v", "type", "old_checkpoint", "new_checkpoint", "path"}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofVerdict:
    """Outcome of :func:`verify_proof_file`; true only when ``ok``.

    ``kind`` is ``"inclusion"``, ``"consistency"`` or ``"unknown"`` (unreadable
    file); ``checked`` lists, in words, what was verified before any failure;
    ``problem`` says what failed; ``signed_by`` names the trusted keys whose
    signatures verified on the (new) checkpoint; ``checkpoint`` is that
    checkpoint once its signature verified.
    """

    ok: bool
    kind: str
    checked: tuple[str, ...] = ()
    problem: str | None = None
    signed_by: tuple[str, ...] = ()
    checkpoint: Checkpoint | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        steps = "".join(f"\n  ok: {c}" for c in self.checked)
        if self.ok:
            return f"{self.kind} proof verified{steps}"
        return f"{self.kind} proof NOT verified: {self.problem}{steps}"


def build_inclusion_proof(
    *,
    checkpoint: bytes | str,
    index: int,
    entries: Sequence[bytes] | None = None,
    leaf_hashes: Sequence[bytes] | None = None,
    entry: bytes | None = None,
) -> bytes:
    """Inclusion proof file for leaf ``index`` against a signed ``checkpoint`` note.

    Give the tree either as ``entries`` (the entry is ``entries[index]``) or as
    ``leaf_hashes`` plus the ``entry`` bytes. Raises :class:`ProofError` when the
    entry, leaves and checkpoint do not agree (the file would not verify).
    """
    cp = _unverified_checkpoint(checkpoint, "checkpoint")
    hashes = _leaf_hashes(entries, leaf_hashes, cp.size)
    path = inclusion_proof(hashes, index, cp.size)
    if entries is not None:
        if entry is not None:
            raise ProofError("entry= goes with leaf_hashes=; with entries= it is entries[index]")
        entry = entries[index]
    elif entry is None:
        raise ProofError("with leaf_hashes= pass the proven entry's bytes as entry=")
    if leaf_hash(entry) != hashes[index]:
        raise ProofError(
            f"entry bytes do not hash to leaf hash #{index} ({hashes[index].hex()}); "
            "pass the entry stored at that position"
        )
    if not verify_inclusion(hashes[index], index, cp.size, path, cp.root):
        raise ProofError(_root_mismatch(cp))
    return _dump(
        {
            "type": "inclusion",
            "entry": _entry_text(entry),
            "seq": index,
            "size": cp.size,
            "path": [h.hex() for h in path],
            "checkpoint": _note_text(checkpoint),
        }
    )


def build_consistency_proof(
    *,
    old_checkpoint: bytes | str,
    new_checkpoint: bytes | str,
    entries: Sequence[bytes] | None = None,
    leaf_hashes: Sequence[bytes] | None = None,
) -> bytes:
    """Consistency proof file between two signed checkpoints of the same tree.

    The tree is given as ``entries`` or ``leaf_hashes`` (at least the new size).
    Raises :class:`ProofError` when the checkpoints do not match those leaves.
    """
    old = _unverified_checkpoint(old_checkpoint, "old checkpoint")
    new = _unverified_checkpoint(new_checkpoint, "new checkpoint")
    if old.origin != new.origin:
        raise ProofError(
            f"the checkpoints are of different logs: {old.origin!r} and {new.origin!r}"
        )
    hashes = _leaf_hashes(entries, leaf_hashes, new.size)
    path = consistency_proof(hashes, old.size, new.size)
    for cp in (old, new):
        if root(hashes[: cp.size]) != cp.root:
            raise ProofError(_root_mismatch(cp))
    return _dump(
        {
            "type": "consistency",
            "old_checkpoint": _note_text(old_checkpoint),
            "new_checkpoint": _note_text(new_checkpoint),
            "path": [h.hex() for h in path],
        }
    )


def verify_proof_file(
    data: bytes | str, vkeys: Iterable[Verifier | str], *, origin: str | None = None
) -> ProofVerdict:
    """Verify a proof file against trusted verifier keys (objects or vkey strings).

    ``origin``, when given, is the log the checkpoints must belong to.
    """
    verifiers = [v if isinstance(v, Verifier) else Verifier.from_vkey(v) for v in vkeys]
    run = _Run()
    try:
        obj = _load(data)
        run.kind = _header(obj)
        if run.kind == "inclusion":
            _verify_inclusion(obj, verifiers, origin, run)
        else:
            _verify_consistency(obj, verifiers, origin, run)
    except _Fail as fail:
        return run.verdict(problem=str(fail))
    return run.verdict(problem=None)


class _Fail(Exception):
    """A proof file failed a check; the message says which."""


class _Run:
    """What a verification has established so far."""

    __slots__ = ("checked", "checkpoint", "kind", "signed_by")

    def __init__(self) -> None:
        self.kind = "unknown"
        self.checked: list[str] = []
        self.signed_by: tuple[str, ...] = ()
        self.checkpoint: Checkpoint | None = None

    def verdict(self, *, problem: str | None) -> ProofVerdict:
        return ProofVerdict(
            ok=problem is None,
            kind=self.kind,
            checked=tuple(self.checked),
            problem=problem,
            signed_by=self.signed_by,
            checkpoint=self.checkpoint,
        )


def _verify_inclusion(
    obj: dict[str, Any], verifiers: list[Verifier], origin: str | None, run: _Run
) -> None:
    entry_text = _text(obj, "entry")
    seq, size = _count(obj, "seq"), _count(obj, "size")
    path = _path(obj)
    cp, names = _trusted_checkpoint(_text(obj, "checkpoint"), "checkpoint", verifiers)
    run.signed_by, run.checkpoint = names, cp
    run.checked.append(f"checkpoint of {cp.origin!r} at size {cp.size} signed by {_names(names)}")
    _check_origin(cp, origin, run)
    if size != cp.size:
        raise _Fail(f"proof is for tree size {size} but the checkpoint is for size {cp.size}")
    if seq >= size:
        raise _Fail(f"seq {seq} is outside a tree of size {size}")
    entry = _encode_entry(entry_text)
    leaf = leaf_hash(entry)
    if not verify_inclusion(leaf, seq, size, path, cp.root):
        raise _Fail(
            f"the audit path does not lead from the entry's leaf hash {leaf.hex()} at seq {seq} "
            f"to the checkpoint root {cp.root.hex()}: the entry, seq or path was altered"
        )
    run.checked.append(f"entry (leaf hash {leaf.hex()}) is leaf {seq} of that tree")
    _check_event(entry, seq, cp, run)


def _verify_consistency(
    obj: dict[str, Any], verifiers: list[Verifier], origin: str | None, run: _Run
) -> None:
    path = _path(obj)
    old, old_names = _trusted_checkpoint(_text(obj, "old_checkpoint"), "old checkpoint", verifiers)
    run.checked.append(
        f"old checkpoint of {old.origin!r} at size {old.size} signed by {_names(old_names)}"
    )
    new, names = _trusted_checkpoint(_text(obj, "new_checkpoint"), "new checkpoint", verifiers)
    run.signed_by, run.checkpoint = names, new
    run.checked.append(
        f"new checkpoint of {new.origin!r} at size {new.size} signed by {_names(names)}"
    )
    if old.origin != new.origin:
        raise _Fail(f"the checkpoints are of different logs: {old.origin!r} and {new.origin!r}")
    _check_origin(new, origin, run)
    if old.size > new.size:
        raise _Fail(f"the old checkpoint (size {old.size}) is larger than the new ({new.size})")
    if not verify_consistency(old.size, new.size, old.root, new.root, path):
        raise _Fail(
            f"the consistency path does not prove the tree of size {old.size} is a prefix of "
            f"the tree of size {new.size}: the log was rewritten or the proof altered"
        )
    run.checked.append(f"tree at size {old.size} is a prefix of the tree at size {new.size}")


def _trusted_checkpoint(
    note: str, what: str, verifiers: list[Verifier]
) -> tuple[Checkpoint, tuple[str, ...]]:
    try:
        check = check_note(note, verifiers)
    except CheckpointError as exc:
        raise _Fail(f"{what} note is malformed: {exc}") from None
    if check.bad:
        raise _Fail(
            f"{what} carries a signature by trusted key {_names(check.bad)} that does not "
            "verify: it was altered after signing or forged"
        )
    if not check.verified:
        raise _Fail(
            f"{what} is not signed by any trusted key (signatures by "
            f"{_names(check.unknown) if check.unknown else 'nobody'}); not verified"
        )
    try:
        return Checkpoint.parse(check.text), check.verified
    except CheckpointError as exc:
        raise _Fail(f"{what} is signed but malformed: {exc}") from None


def _check_origin(cp: Checkpoint, origin: str | None, run: _Run) -> None:
    if origin is None:
        return
    if cp.origin != origin:
        raise _Fail(f"checkpoint is for origin {cp.origin!r}, expected {origin!r}")
    run.checked.append(f"origin is {origin!r} as expected")


def _check_event(entry: bytes, seq: int, cp: Checkpoint, run: _Run) -> None:
    """When the entry is a ledger event, its seq and run id must match the proof."""
    try:
        event = json.loads(entry)
    except (ValueError, RecursionError):
        return
    if not isinstance(event, dict) or "seq" not in event:
        return
    if event["seq"] != seq or isinstance(event["seq"], bool):
        raise _Fail(f"the entry says seq {event['seq']!r} but is proven at leaf {seq}")
    run_id = event.get("run_id")
    marker = "/run/"
    if marker in cp.origin and cp.origin.rsplit(marker, 1)[1] != run_id:
        raise _Fail(f"the entry belongs to run {run_id!r}, but the checkpoint is {cp.origin!r}")
    run.checked.append(f"entry is event seq {seq} of run {run_id!r}")


def _load(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Fail(f"proof file is not UTF-8: {exc}") from None
    if not isinstance(data, str):
        raise _Fail(f"proof file must be bytes or str, got {type(data).__name__}")
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _Fail(f"proof file is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Fail(f"proof file must hold a JSON object, got {type(obj).__name__}")
    return obj


def _header(obj: dict[str, Any]) -> str:
    if obj.get("format") != PROOF_FORMAT:
        raise _Fail(
            f"not a Codon proof file: format is {obj.get('format')!r}, not {PROOF_FORMAT!r}"
        )
    version = obj.get("v")
    if version != PROOF_VERSION or isinstance(version, bool):
        raise _Fail(
            f"proof file version {version!r} is not supported (this SDK reads {PROOF_VERSION}); "
            "upgrade the SDK"
        )
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise _Fail(f"unknown proof type {kind!r}; expected 'inclusion' or 'consistency'")
    fields = _FIELDS[kind]
    if set(obj) != fields:
        missing, extra = sorted(fields - set(obj)), sorted(set(obj) - fields)
        raise _Fail(f"{kind} proof file has missing fields {missing} and unknown fields {extra}")
    return kind


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise _Fail(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _count(obj: dict[str, Any], name: str) -> int:
    value = obj[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Fail(f"field {name!r} must be a non-negative integer, got {value!r}")
    return value


def _path(obj: dict[str, Any]) -> list[bytes]:
    path = obj["path"]
    if not isinstance(path, list) or len(path) > _MAX_PATH:
        raise _Fail(f"field 'path' must be a list of at most {_MAX_PATH} hex hashes")
    for i, h in enumerate(path):
        if not isinstance(h, str) or not _HEX64.fullmatch(h):
            raise _Fail(f"path hash #{i} {h!r} is not 64 lowercase hex digits")
    return [bytes.fromhex(h) for h in path]


def _encode_entry(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Fail(f"entry is not encodable as UTF-8: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate keys {dupes}")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _names(names: Iterable[str]) -> str:
    return ", ".join(map(repr, names))


def _unverified_checkpoint(note: bytes | str, what: str) -> Checkpoint:
    """The checkpoint a signed note carries, signatures unchecked (the builder's side)."""
    try:
        return Checkpoint.parse(Note.parse(note).text)
    except CheckpointError as exc:
        raise CheckpointError(f"{what}: {exc}") from exc


def _note_text(note: bytes | str) -> str:
    return note.decode("utf-8") if isinstance(note, bytes) else note


def _entry_text(entry: bytes) -> str:
    try:
        return entry.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProofError(
            f"entry bytes are not UTF-8 ({exc}); proof files carry entries as text"
        ) from None


def _leaf_hashes(
    entries: Sequence[bytes] | None, leaf_hashes: Sequence[bytes] | None, size: int
) -> list[bytes]:
    """The first ``size`` leaf hashes, from either form the builders accept."""
    if (entries is None) == (leaf_hashes is None):
        raise ProofError("pass exactly one of entries= or leaf_hashes=")
    given = entries if entries is not None else leaf_hashes
    assert given is not None
    if len(given) < size:
        raise ProofError(f"the checkpoint covers {size} leaves but only {len(given)} were given")
    if entries is not None:
        return [leaf_hash(e) for e in entries[:size]]
    return list(given[:size])


def _root_mismatch(cp: Checkpoint) -> str:
    return (
        f"checkpoint root {cp.root.hex()} of {cp.origin!r} at size {cp.size} is not the root "
        "of the leaves given: the checkpoint is for other leaves"
    )


def _dump(body: dict[str, Any]) -> bytes:
    doc = {"format": PROOF_FORMAT, "v": PROOF_VERSION, **body}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
