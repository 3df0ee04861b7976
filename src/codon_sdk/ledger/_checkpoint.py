"""Checkpoints: C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint), signed as notes.

A checkpoint body is at least three non-empty lines, each ending in a newline::

    <origin>                 who issued it: "<ledger name>/run/<run id>" or "<ledger name>/runs"
    <tree size>              ASCII decimal, no sign, no leading zeros ("0" for the empty tree)
    <base64 root hash>       the 32-byte RFC 6962 root of the first <tree size> leaves
    [<extension line>...]    opaque, optional, non-empty

The ledger keeps two kinds of tree. Each run's tree has the run's leaf hashes as
leaves (origin :func:`run_origin`). The "log of runs" (origin :func:`runs_origin`)
has one leaf per finished run, in completion order: the canonical bytes of
``{"root": "<hex root>", "run_id": ..., "size": ...}`` (:func:`run_leaf`), so
deleting a whole run breaks that log's consistency.

A checkpoint is trusted only when a signed note carrying it verifies under a
trusted key: :func:`sign_checkpoint` writes one, :func:`open_checkpoint` checks
one. Every malformed body raises :class:`~codon_sdk.errors.CheckpointError`
naming the bad line.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from codon_sdk.errors import CheckpointError
from codon_sdk.identity import canonical_bytes
from codon_sdk.ledger._merkle import HASH_SIZE
from codon_sdk.ledger._note import (
    Signer,
    Verifier,
    _b64decode,
    _check_text,
    _clip,
    check_note,
    sign_note,
)

__all__ = [
    "MAX_TREE_SIZE",
    "Checkpoint",
    "open_checkpoint",
    "run_leaf",
    "run_origin",
    "runs_origin",
    "sign_checkpoint",
]

MAX_TREE_SIZE: Final = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A tree head: who (``origin``), how many leaves (``size``), which ``root``, extensions."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise CheckpointError(f"checkpoint tree size must be an int, got {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(
                f"checkpoint tree size {self.size} is outside 0..2**64-1; a tree size is a uint64"
            )
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root must be {HASH_SIZE} bytes (a SHA-256 Merkle root), "
                f"got {self.root!r}"
            )
        if not isinstance(self.extensions, tuple):
            raise CheckpointError(
                f"checkpoint extensions must be a tuple of lines, got {self.extensions!r}"
            )
        for ext in self.extensions:
            _check_line(ext, "extension line")

    @classmethod
    def parse(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint body (the text of the note, final newline included)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CheckpointError(f"checkpoint is not valid UTF-8: {exc}") from exc
        if not isinstance(text, str):
            raise CheckpointError(f"a checkpoint is str or bytes, got {type(text).__name__}")
        if not text.endswith("\n"):
            raise CheckpointError(
                f"checkpoint does not end in a newline: {_clip(text)}; every line, "
                "the last one included, ends in '\\n'"
            )
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint has {len(lines)} line(s), fewer than three: {_clip(text)}; "
                "expected origin, tree size and base64 root hash, one per line"
            )
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise CheckpointError("checkpoint origin (its first line) is empty; name the log")
        return cls(
            origin=origin,
            size=_parse_size(size_line),
            root=_parse_root(root_line),
            extensions=tuple(extensions),
        )

    def format(self) -> str:
        """The checkpoint body: origin, size, base64 root, extension lines, each with a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))


def run_origin(ledger_name: str, run_id: str) -> str:
    """Origin of one run's tree: ``<ledger name>/run/<run id>``."""
    _check_line(ledger_name, "ledger name")
    _check_line(run_id, "run id")
    return f"{ledger_name}/run/{run_id}"


def runs_origin(ledger_name: str) -> str:
    """Origin of the log of finished runs: ``<ledger name>/runs``."""
    _check_line(ledger_name, "ledger name")
    return f"{ledger_name}/runs"


def run_leaf(run_id: str, size: int, root: bytes) -> bytes:
    """Entry bytes of a finished run in the log of runs: canonical ``{run_id, size, root hex}``."""
    if not isinstance(run_id, str) or not run_id:
        raise CheckpointError(f"run id must be a non-empty string, got {run_id!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise CheckpointError(f"run tree size must be a non-negative int, got {size!r}")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise CheckpointError(
            f"run root must be {HASH_SIZE} bytes (the run tree's Merkle root), got {root!r}"
        )
    return canonical_bytes({"run_id": run_id, "size": size, "root": root.hex()})


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """Sign ``checkpoint`` with each signer; returns the signed note bytes."""
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError(f"expected a Checkpoint, got {type(checkpoint).__name__}")
    return sign_note(checkpoint.format(), signers)


def open_checkpoint(
    note: bytes | str, verifiers: Iterable[Verifier | str], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and return it; raises :class:`CheckpointError` otherwise.

    It must be well formed, signed by at least one of ``verifiers`` (objects or
    vkey strings), carry no failing signature by any of them and, when
    ``origin`` is given, name that origin.
    """
    check = check_note(note, verifiers)
    if check.bad:
        raise CheckpointError(
            f"checkpoint carries a signature by trusted key {', '.join(map(repr, check.bad))} "
            "that does not verify: it was altered after signing or forged; reject it"
        )
    if not check.verified:
        seen = ", ".join(map(repr, check.unknown)) or "nobody"
        raise CheckpointError(
            f"checkpoint is not signed by any trusted key (signed by {seen}); "
            "pass the verifier key of the ledger that signed it"
        )
    checkpoint = Checkpoint.parse(check.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}: "
            "it belongs to another ledger or run"
        )
    return checkpoint


def _parse_size(line: str) -> int:
    if not _DECIMAL.fullmatch(line):
        raise CheckpointError(
            f"checkpoint tree size line {line!r} is not a canonical decimal: "
            "ASCII digits only, no sign, spaces or leading zeros"
        )
    if len(line) > 20 or int(line) > MAX_TREE_SIZE:
        raise CheckpointError(f"checkpoint tree size {line} is larger than 2**64-1")
    return int(line)


def _parse_root(line: str) -> bytes:
    root = _b64decode(line, "checkpoint root hash line")
    if len(root) != HASH_SIZE:
        raise CheckpointError(
            f"checkpoint root hash {line!r} decodes to {len(root)} bytes, "
            f"expected {HASH_SIZE} (a SHA-256 Merkle root)"
        )
    return root


def _check_line(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise CheckpointError(f"checkpoint {what} must be a non-empty string, got {value!r}")
    if "\n" in value:
        raise CheckpointError(f"checkpoint {what} {value!r} contains a newline")
    _check_text(value)
