"""Erasure that keeps verification: stand-ins for erased events and the erasure log.

An erased event's entry is replaced, in the store, by a *stand-in*: a version 1 entry of
the reserved type ``codon.erased`` that keeps the event's place (``run_id``, ``seq``, the
``prev`` link and ``ts``) and, in ``metadata.erased``, the leaf hash of the original entry
and its type (as it was; no longer provable). Nothing else of the event is kept::

    {"metadata":{"erased":{"leaf":"<64 hex>","type":"token_enqueued"}},"prev":"<64 hex>",
     "run_id":"r1","seq":3,"ts":1700000000000000,"type":"codon.erased","v":1}

The chain walk feeds the *original* leaf into the ``prev`` check and the Merkle tree, so
the chain, the Merkle roots, checkpoints signed before the erasure and inclusion proofs
of the events left hold exactly as before. It accepts a stand-in only where the erasure
log names that seq with that leaf: a stand-in the log does not name is a forgery.

The erasure log is one hash chain over every erasure of a store: each line (who, which
run and seqs with their leaves, why, when) commits to the line before it, so an edited
or removed line breaks the chain (the last line alone can only be caught by a copy of
the log's head kept elsewhere, as for any hash chain). Lines never hold an erased
subject's id, only its SHA-256 (``reason`` ``subject:sha256:<hex>``): a holder of the id
can show it was erased, the log does not disclose it.

Everything here is pure: lines and stand-ins are values, and reading them back from a
store is hostile input (a malformed line is a finding, never an exception).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from codon_sdk._text import printable

__all__ = [
    "ERASED_TYPE",
    "ErasureLine",
    "ErasureLog",
    "Permit",
    "chain_leaf",
    "check_erasure_log",
    "erased_claim",
    "is_stand_in",
    "make_line",
    "stand_in",
    "subject_reason",
]

ERASED_TYPE: Final = "codon.erased"
"""The type of a stand-in (``codon.`` is reserved: no custom event can take it)."""

_HEX64: Final = re.compile(r"[0-9a-f]{64}\Z")
_LINE_TAG: Final = b"codon erasure v1\n"


def stand_in(entry: bytes) -> bytes:
    """The stand-in of the (parsed, trusted: the caller's walk vouched for it) ``entry``."""
    obj = orjson.loads(entry)
    erased = {"leaf": hashlib.sha256(b"\x00" + entry).hexdigest(), "type": str(obj["type"])}
    out: dict[str, Any] = {
        "metadata": {"erased": erased},
        "run_id": obj["run_id"],
        "seq": obj["seq"],
        "ts": obj["ts"],
        "type": ERASED_TYPE,
        "v": 1,
    }
    if "prev" in obj:
        out["prev"] = obj["prev"]
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS)


def is_stand_in(event_type: object) -> bool:
    """Whether an event of ``event_type`` is an erased event's stand-in."""
    return event_type == ERASED_TYPE


def chain_leaf(entry: bytes) -> tuple[bytes, bool]:
    """``(leaf, erased)``: the leaf an entry holds in the chain and the Merkle tree (a
    stand-in's: the original's, as it claims; only a proof against a signed root, or the
    chain walk with the erasure log, vouches for the claim)."""
    if b'"type":"codon.erased"' in entry:
        try:
            obj = orjson.loads(entry)
        except orjson.JSONDecodeError:
            obj = None
        claim = (
            erased_claim(obj) if isinstance(obj, dict) and is_stand_in(obj.get("type")) else None
        )
        if claim is not None:
            return claim[0], True
    return hashlib.sha256(b"\x00" + entry).digest(), False


def erased_claim(obj: Mapping[str, Any]) -> tuple[bytes, str] | None:
    """A parsed stand-in's ``(original leaf, original type)``, or None when malformed."""
    meta = obj.get("metadata")
    erased = meta.get("erased") if isinstance(meta, dict) else None
    if not isinstance(erased, dict) or set(erased) != {"leaf", "type"}:
        return None
    leaf, kind = erased["leaf"], erased["type"]
    if not (isinstance(leaf, str) and _HEX64.match(leaf) and isinstance(kind, str)):
        return None
    if set(obj) - {"metadata", "prev", "run_id", "seq", "ts", "type", "v"}:
        return None  # a stand-in keeps nothing else: extra fields are smuggled content
    return bytes.fromhex(leaf), kind


def subject_reason(subject: str) -> str:
    """The erasure log's reason for erasing what ``subject`` was recorded against."""
    return "subject:sha256:" + hashlib.sha256(subject.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ErasureLine:
    """One line of the erasure log: ``body`` (canonical JSON) and its ``hash`` (hex)."""

    idx: int
    run_id: str
    body: bytes
    hash: str

    def fields(self) -> dict[str, Any]:
        """The parsed body (empty when it does not parse: hostile input)."""
        try:
            obj = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}
        return obj if isinstance(obj, dict) else {}


def _hash(body: bytes) -> str:
    return hashlib.sha256(_LINE_TAG + body).hexdigest()


def make_line(
    previous: ErasureLine | None,
    *,
    run_id: str,
    seqs: Sequence[int],
    leaves: Sequence[bytes],
    reason: str,
    actor: str,
    erased_us: int,
) -> ErasureLine:
    """The line that follows ``previous`` (None: the first line of the log)."""
    idx = 0 if previous is None else previous.idx + 1
    body = orjson.dumps(
        {
            "actor": actor,
            "erased_us": erased_us,
            "idx": idx,
            "leaves": [leaf.hex() for leaf in leaves],
            "prev": "" if previous is None else previous.hash,
            "reason": reason,
            "run_id": run_id,
            "seqs": list(seqs),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return ErasureLine(idx=idx, run_id=run_id, body=body, hash=_hash(body))


@dataclass(frozen=True, slots=True)
class Permit:
    """What the erasure log says of one erased seq: its original leaf and who erased it."""

    leaf: bytes
    line: int
    actor: str
    reason: str
    erased_us: int


@dataclass(slots=True)
class ErasureLog:
    """The erasure log checked: permits by run and seq (from lines that verify), and the
    problems found, each as ``(run_id or None, message)``."""

    permits: dict[str, dict[int, Permit]] = field(default_factory=dict)
    problems: list[tuple[str | None, str]] = field(default_factory=list)
    lines: int = 0

    def of(self, run_id: str) -> dict[int, Permit]:
        return self.permits.get(run_id, {})

    def problems_of(self, run_id: str) -> list[str]:
        return [message for rid, message in self.problems if rid == run_id]


def check_erasure_log(lines: Iterable[ErasureLine]) -> ErasureLog:
    """Check every line (its hash, its link to the line before, its fields) in idx order."""
    log = ErasureLog()
    previous = ""
    for expected, line in enumerate(lines):
        log.lines += 1
        problem = _line_problem(line, expected, previous)
        previous = line.hash if isinstance(line.hash, str) else ""
        run = line.run_id if isinstance(line.run_id, str) else None
        if problem is not None:
            log.problems.append((run, f"erasure log line {expected}: {problem}"))
            continue
        obj = line.fields()
        permits = log.permits.setdefault(line.run_id, {})
        for seq, leaf in zip(obj["seqs"], obj["leaves"], strict=True):
            permits[seq] = Permit(
                bytes.fromhex(leaf), line.idx, obj["actor"], obj["reason"], obj["erased_us"]
            )
    return log


def _line_problem(line: ErasureLine, expected: int, previous: str) -> str | None:
    body: Any = line.body  # read back from a store: hostile, whatever the annotation says
    if not isinstance(body, bytes) or not isinstance(line.hash, str):
        return "holds data no codon store writes (tampered)"
    if line.idx != expected:
        return f"carries index {line.idx!r}, expected {expected}: a line was removed or inserted"
    if _hash(line.body) != line.hash:
        return "its hash does not match its content: the line was edited (tampered)"
    obj = line.fields()
    if obj.get("prev") != previous:
        return "does not follow the line before it (a line was removed, edited or reordered)"
    seqs, leaves = obj.get("seqs"), obj.get("leaves")
    if (
        obj.get("idx") != line.idx
        or obj.get("run_id") != line.run_id
        or not isinstance(seqs, list)
        or not isinstance(leaves, list)
        or len(seqs) != len(leaves)
        or not all(type(s) is int and s >= 0 for s in seqs)
        or not all(isinstance(v, str) and _HEX64.match(v) for v in leaves)
        or not isinstance(obj.get("actor"), str)
        or not isinstance(obj.get("reason"), str)
        or type(obj.get("erased_us")) is not int
    ):
        return f"its fields are malformed ({printable(line.body[:80].decode('utf-8', 'replace'))})"
    return None
