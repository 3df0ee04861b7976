"""The ledger's event format (version 1): what one entry holds and how it is hashed.

An entry is the RFC 8785 canonical encoding of one JSON object:

=================  ==========================================================
field              meaning
=================  ==========================================================
``v``              format version (``1``); a reader refuses versions it does not know
``run_id``         the run the event belongs to
``seq``            position in the run, 0-based and contiguous
``type``           a built-in type (see ``_event_types``), or a custom name from ``record_event``
``ts``             integer microseconds since the Unix epoch, UTC
``node``           the node acting (the emitter, the receiver, the failing node...)
``target``         the receiving node of a ``token_enqueued`` event
``token_id``       the token concerned
``parent_token_id``the token being processed when this token was emitted
``payload``        data: a token's payload, a result, an effect's value, a state change
``metadata``       description: audit metadata, counts, reasons, identities
``actor``          who acted (a person approving a resume, a service), where known
``trace_id``       OpenTelemetry trace id (hex) when tracing
``span_id``        OpenTelemetry span id (hex) when tracing
``prev``           hex leaf hash of event ``seq - 1``; absent on ``seq`` 0
=================  ==========================================================

Fields whose value would be ``null`` (and an empty ``metadata``) are left out,
so an absent field reads as ``None``. The leaf hash of an entry is
``SHA-256(0x00 || entry bytes)``, the RFC 6962 leaf hash; the ``prev`` links make
the run a hash chain, and the leaves feed the Merkle tree of the run.
Stores give back entry bytes exactly as they were hashed (the SQL stores keep a
shorter form that reads back byte for byte, see ``stores._codec``): they are never
re-derived from parsed fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from codon_sdk.errors import LedgerError
from codon_sdk.identity import revive
from codon_sdk.ledger._event_types import (
    BUILTIN_TYPES,
    EFFECT_RECORDED,
    NODE_COMPLETED,
    NODE_FAILED,
    NODE_RETRYING,
    NODE_STARTED,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    RUNTIME_STOPPED,
    STATE_UPDATED,
    TERMINAL_STATUSES,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
)
from codon_sdk.ledger._merkle import leaf_hash

__all__ = [
    "BUILTIN_TYPES",
    "EFFECT_RECORDED",
    "ENTRY_FIELDS",
    "FORMAT_VERSION",
    "NODE_COMPLETED",
    "NODE_FAILED",
    "NODE_RETRYING",
    "NODE_STARTED",
    "RUNTIME_STOPPED",
    "RUN_FINISHED",
    "RUN_INTERRUPTED",
    "RUN_RESUMED",
    "RUN_STARTED",
    "STATE_UPDATED",
    "TERMINAL_STATUSES",
    "TOKEN_DEQUEUED",
    "TOKEN_ENQUEUED",
    "LedgerEvent",
    "check_custom_type",
    "event_from_parsed",
    "validate_parsed",
    "leaf_hash",
    "parse_entry",
]

FORMAT_VERSION: Final = 1

RESERVED_PREFIX: Final = "codon."

ENTRY_FIELDS: Final = (
    "v",
    "run_id",
    "seq",
    "type",
    "ts",
    "node",
    "target",
    "token_id",
    "parent_token_id",
    "payload",
    "metadata",
    "actor",
    "trace_id",
    "span_id",
    "prev",
)
_KNOWN = frozenset(ENTRY_FIELDS)


def check_custom_type(event_type: object) -> str:
    """Validate the name of a custom event; built-in names and ``codon.*`` are reserved."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise LedgerError(f"custom event type must be a non-empty string, got {event_type!r}")
    if len(event_type) > 200 or not event_type.isprintable():
        raise LedgerError(
            f"custom event type {event_type!r} must be at most 200 printable characters "
            "(no control characters, line breaks or escape sequences)"
        )
    if event_type in BUILTIN_TYPES or event_type.startswith(RESERVED_PREFIX):
        raise LedgerError(
            f"custom event type {event_type!r} collides with a built-in ledger event type; "
            f"choose another name (reserved: {', '.join(sorted(BUILTIN_TYPES))} and "
            f"anything starting with {RESERVED_PREFIX!r})"
        )
    return event_type


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One parsed ledger entry, with its verbatim bytes and leaf hash.

    ``payload`` and ``metadata`` are as stored (JSON); :meth:`value` revives
    tagged encodings (datetimes, tuples, dataclasses...) into Python values.
    """

    seq: int
    type: str
    ts: int
    run_id: str
    node: str | None = None
    target: str | None = None
    token_id: str | None = None
    parent_token_id: str | None = None
    payload: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    prev: str | None = None
    v: int = FORMAT_VERSION
    entry: bytes = field(default=b"", repr=False)

    @property
    def leaf(self) -> bytes:
        """The RFC 6962 leaf hash of the verbatim entry bytes."""
        return leaf_hash(self.entry)

    def value(self) -> Any:
        """The payload with tagged encodings revived into Python values."""
        return revive(self.payload)

    def to_dict(self) -> dict[str, Any]:
        """The entry's fields (absent ones omitted), as stored."""
        return orjson.loads(self.entry) if self.entry else {}


def parse_entry(entry: bytes) -> LedgerEvent:
    """Parse entry bytes into a :class:`LedgerEvent`; raise :class:`LedgerError` if malformed."""
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError as exc:
        raise LedgerError(f"ledger entry is not valid JSON: {exc}") from exc
    return event_from_parsed(obj, entry)


def validate_parsed(obj: Any) -> None:
    """Raise :class:`LedgerError` unless ``obj`` (a parsed entry) has the version 1 shape."""
    if type(obj) is not dict:
        raise LedgerError(f"ledger entry must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if type(version) is not int or version != FORMAT_VERSION:  # true and 1.0 equal 1
        raise LedgerError(
            f"ledger entry has format version {version!r}; this SDK reads version "
            f"{FORMAT_VERSION}. Upgrade codon-sdk to read newer ledgers."
        )
    if not _KNOWN.issuperset(obj):
        raise LedgerError(f"ledger entry has unknown fields {sorted(obj.keys() - _KNOWN)}")
    try:
        seq, typ, ts, run_id = obj["seq"], obj["type"], obj["ts"], obj["run_id"]
    except KeyError as exc:
        raise LedgerError(f"ledger entry lacks the required field {exc.args[0]!r}") from exc
    if (
        type(seq) is not int
        or type(ts) is not int
        or type(typ) is not str
        or type(run_id) is not str
    ):
        raise LedgerError(
            "ledger entry fields have wrong types: seq and ts must be integers, "
            f"type and run_id strings (got seq={seq!r}, ts={ts!r}, type={typ!r})"
        )
    if type(obj.get("metadata", {})) is not dict:
        raise LedgerError(f"ledger entry metadata must be an object, got {obj.get('metadata')!r}")
    for name in (
        "node",
        "target",
        "token_id",
        "parent_token_id",
        "actor",
        "trace_id",
        "span_id",
        "prev",
    ):
        value = obj.get(name)
        if value is not None and type(value) is not str:
            raise LedgerError(f"ledger entry field {name!r} must be a string, got {value!r}")


def event_from_parsed(obj: Any, entry: bytes) -> LedgerEvent:
    """Build a :class:`LedgerEvent` from an entry already parsed with ``orjson.loads``."""
    validate_parsed(obj)
    seq, typ, ts, run_id = obj["seq"], obj["type"], obj["ts"], obj["run_id"]
    metadata = obj.get("metadata", {})
    return LedgerEvent(
        seq=seq,
        type=typ,
        ts=ts,
        run_id=run_id,
        node=obj.get("node"),
        target=obj.get("target"),
        token_id=obj.get("token_id"),
        parent_token_id=obj.get("parent_token_id"),
        payload=obj.get("payload"),
        metadata=metadata,
        actor=obj.get("actor"),
        trace_id=obj.get("trace_id"),
        span_id=obj.get("span_id"),
        prev=obj.get("prev"),
        v=FORMAT_VERSION,
        entry=bytes(entry),
    )
