"""The hash-chain check: does a run's sequence of entries hold together, and if not, where not.

:func:`walk_chain` is the one walk over a run's entries (``check_chain`` and
verification both use it): each entry must parse, be canonical, belong to the
run, carry its position as ``seq`` and the previous entry's leaf hash as
``prev``; the first must be ``run_started`` and nothing may follow
``run_finished``.

Blame: when entry *k* is edited in place, its own fields still look right and
it is entry *k+1* whose ``prev`` no longer matches. So when the link into *j*
breaks but the link out of *j* holds (entry *j+1* still points at entry *j*),
or *j* is the last entry, the fault is entry *j-1*; otherwise it is entry *j*.
An edit of the very last event leaves no later link to break: only a
checkpoint (see ``_verify``) or the head hash recorded elsewhere reveals it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from codon_sdk.errors import CanonicalEncodingError, LedgerError
from codon_sdk.identity import LITERAL_DEPTH, MAX_DEPTH, json_canonical
from codon_sdk.ledger._event_types import ChainRole, event_type, types_with
from codon_sdk.ledger._events import ENTRY_FIELDS, FORMAT_VERSION, validate_parsed
from codon_sdk.ledger._merkle import leaf_hash

_KNOWN: Final = frozenset(ENTRY_FIELDS)
# The chain rules, by the role each event type declares (read once: the walk is hot).
_OPENS: Final = types_with(ChainRole.OPEN)
_CLOSES: Final = types_with(ChainRole.CLOSE)
_PAUSES: Final = types_with(ChainRole.PAUSE)
_OPENER: Final = " or ".join(sorted(_OPENS))
_CLOSER: Final = " or ".join(sorted(_CLOSES))

__all__ = [
    "MAX_ENTRY_BYTES",
    "ChainCheck",
    "ChainWalk",
    "check_chain",
    "check_entry",
    "is_canonical",
    "walk_chain",
]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Outcome of :func:`check_chain`. ``bad_seq`` is the first event that breaks the chain."""

    ok: bool
    count: int
    head: str | None
    bad_seq: int | None = None
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"chain ok: {self.count} events, head {self.head}"
        return f"chain broken at seq {self.bad_seq}: {self.problem}"


@dataclass(slots=True)
class ChainWalk:
    """Everything one pass over a run's entries found.

    ``started`` is the ``run_started`` metadata; ``pauses`` the seqs of
    ``run_interrupted`` events (both read by verification).
    """

    leaves: list[bytes] = field(default_factory=list)
    ended: bool = False
    bad_seq: int | None = None
    problem: str | None = None
    started: dict[str, Any] = field(default_factory=dict)
    pauses: list[int] = field(default_factory=list)
    #: Past a fault: whether some later entry still parses as ``run_finished`` (the end is
    #: there, the chain leading to it is broken), so nobody claims the tail was cut off.
    end_after_fault: bool = False


def walk_chain(entries: Sequence[bytes], *, run_id: str | None = None) -> ChainWalk:
    """Check every entry in order; stop at the first fault (see the module docstring).

    Each entry is hashed as stored and parsed once. An entry that passes
    :func:`_sound` (the common case, written out for speed) is exactly what
    :func:`check_entry` accepts; any other goes through :func:`check_entry`, which
    names the problem.
    """
    walk = ChainWalk()
    prev_hex: str | None = None
    expected_run = run_id
    sha256 = hashlib.sha256
    for seq, entry in enumerate(entries):
        if type(entry) is not bytes:
            entry = _as_bytes(entry)
        leaf = sha256(b"\x00" + entry).digest()
        obj = _sound(entry, seq, expected_run, prev_hex) if not walk.ended else None
        problem = None
        if obj is None:
            obj, problem = check_entry(entry, seq, expected_run, prev_hex, walk.ended)
        if problem is not None or obj is None:
            rest = [_as_bytes(e) for e in entries[seq:]]
            walk.leaves.extend(leaf_hash(e) for e in rest)
            walk.bad_seq, walk.problem = _blame(entries, seq, leaf, obj, problem)
            walk.ended = False
            walk.end_after_fault = any(_is_end(e) for e in rest)
            return walk
        walk.leaves.append(leaf)
        kind = obj["type"]
        if seq == 0:
            walk.started = obj.get("metadata", {})
            expected_run = obj["run_id"]
        elif kind in _PAUSES:
            walk.pauses.append(seq)
        walk.ended = walk.ended or kind in _CLOSES
        prev_hex = leaf.hex()
    return walk


_STRINGS: Final = frozenset(
    ("node", "target", "token_id", "parent_token_id", "actor", "trace_id", "span_id", "prev")
)
_loads = orjson.loads
_dumps = orjson.dumps
_SORT = orjson.OPT_SORT_KEYS


def _sound(entry: bytes, seq: int, run_id: str | None, prev_hex: str | None) -> Any:
    """The parsed entry if it is a sound entry ``seq`` of the chain (every check of
    :func:`check_entry` holds, the entry is not past the end), else None: the caller
    then asks :func:`check_entry` what is wrong. Only the common shapes are decided
    here; anything unusual (a float, a large integer, a character outside the BMP,
    a ``run_finished``) is left to :func:`check_entry`."""
    if len(entry) > MAX_ENTRY_BYTES:
        return None
    try:
        return _sound_parsed(_loads(entry), entry, seq, run_id, prev_hex)
    except (TypeError, ValueError, RecursionError, OverflowError):  # deep, odd: check_entry says
        return None


def _sound_parsed(
    obj: Any, entry: bytes, seq: int, run_id: str | None, prev_hex: str | None
) -> Any:
    if type(obj) is not dict or obj.get("v") != FORMAT_VERSION or not _KNOWN.issuperset(obj):
        return None
    kind, ts, rid = obj.get("type"), obj.get("ts"), obj.get("run_id")
    if (
        obj.get("seq") != seq
        or type(obj["seq"]) is not int
        or type(ts) is not int
        or type(kind) is not str
        or type(rid) is not str
        or (run_id is not None and rid != run_id)
        or obj.get("prev") != prev_hex
        or kind in _CLOSES
        or (kind in _OPENS) != (seq == 0)
        or not -_SAFE_INT <= ts <= _SAFE_INT
        or seq > _SAFE_INT
    ):
        return None
    for name in _STRINGS.intersection(obj):
        if type(obj[name]) is not str:
            return None
    if "metadata" in obj and (
        type(obj["metadata"]) is not dict or not _plain_numbers(obj["metadata"])
    ):
        return None
    payload = obj.get("payload")
    if payload is not None and type(payload) is not str and not _plain_numbers(payload):
        return None
    if _dumps(obj, option=_SORT) != entry or not (entry.isascii() or not _NON_BMP.search(entry)):
        return None
    return obj


def _as_bytes(entry: Any) -> bytes:
    """A stored entry as bytes (a driver may hand out memoryview or bytearray; anything that
    is no byte string at all becomes an empty entry, which fails to parse)."""
    if type(entry) is bytes:
        return entry
    if isinstance(entry, (bytearray, memoryview)):
        return bytes(entry)
    return b""


def _is_end(entry: bytes) -> bool:
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError:
        return False
    kind = obj.get("type") if isinstance(obj, dict) else None
    return isinstance(kind, str) and kind in _CLOSES  # hostile bytes: any JSON as the type


def _blame(
    entries: Sequence[bytes], seq: int, leaf: bytes, event: Any, problem: str | None
) -> tuple[int, str]:
    message = problem or "entry cannot be parsed"
    is_link = event is not None and seq > 0 and problem is not None and "prev hash" in problem
    if not is_link:
        return seq, message
    if seq + 1 < len(entries):
        try:
            following = orjson.loads(entries[seq + 1])
        except orjson.JSONDecodeError:
            following = None
        if not (isinstance(following, dict) and following.get("prev") == leaf.hex()):
            return seq, message
    return seq - 1, (
        f"event {seq - 1} was altered: event {seq}'s prev hash no longer matches it "
        "(edited in place)"
    )


def check_chain(
    entries: Iterable[bytes], *, run_id: str | None = None, require_end: bool = False
) -> ChainCheck:
    """Check a run's entries, in order, and name the first broken one.

    With ``require_end`` (the run is known to have finished) a missing
    ``run_finished`` is reported at the position where it should be.
    """
    items = entries if isinstance(entries, Sequence) else list(entries)
    walk = walk_chain(items, run_id=run_id)
    head = walk.leaves[-1].hex() if walk.leaves and walk.problem is None else None
    if walk.problem is not None:
        prior = walk.leaves[walk.bad_seq - 1].hex() if walk.bad_seq else None
        return ChainCheck(False, walk.bad_seq or 0, prior, walk.bad_seq, walk.problem)
    if not items:
        return ChainCheck(False, 0, None, 0, "the run has no events (run_started is missing)")
    if require_end and not walk.ended:
        return ChainCheck(
            False,
            len(items),
            head,
            len(items),
            "the run has no run_finished event (truncated tail?)",
        )
    return ChainCheck(True, len(items), head)


#: Entries larger than this are not parsed (the recorder's default limit is 16 MiB).
MAX_ENTRY_BYTES: Final = 256 * 1024 * 1024


def check_entry(
    entry: bytes, seq: int, run_id: str | None, prev_hex: str | None, finished: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """Check one entry at position ``seq``; return (the parsed entry or None, problem or None).

    Total over any bytes: every way an entry can be wrong is a specific problem, never an
    exception (size, encoding, nesting, number range, duplicate keys, field types...).
    """
    if len(entry) > MAX_ENTRY_BYTES:
        return None, (
            f"entry is {len(entry)} bytes, over the {MAX_ENTRY_BYTES} bytes a ledger entry may "
            "hold; it was not parsed"
        )
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError as exc:
        return None, _parse_problem(exc)
    try:
        validate_parsed(obj)
    except LedgerError as exc:
        return None, f"entry cannot be parsed: {exc}"
    try:
        canonical = is_canonical(obj, entry)
    except (CanonicalEncodingError, TypeError, ValueError, RecursionError, OverflowError) as exc:
        return obj, _encoding_problem(obj, exc)
    if not canonical:
        return obj, _canonical_problem(entry)
    return obj, _check_fields(obj, seq, run_id, prev_hex, finished)


def _parse_problem(exc: orjson.JSONDecodeError) -> str:
    text = str(exc)
    if "depth limit" in text:
        why = "it is nested deeper than the 1,024 levels a JSON parser here accepts"
    elif "surrogate" in text or "UTF-8" in text:
        why = "it is not valid UTF-8 (or holds a lone surrogate escape)"
    elif "infinity" in text:
        why = "it holds a number outside the range of a double"
    elif "byte order mark" in text:
        why = "it starts with a byte order mark"
    else:
        why = f"it is not valid JSON ({text})"
    return f"entry cannot be parsed: {why}"


def _encoding_problem(obj: Any, exc: BaseException) -> str:
    depth = _depth(obj)
    if depth > LITERAL_DEPTH:
        return (
            f"entry is nested {depth} levels deep; the SDK never writes entries deeper than "
            f"{LITERAL_DEPTH} levels (values are refused past {MAX_DEPTH})"
        )
    return f"entry cannot be re-encoded canonically: {exc}"


def _canonical_problem(entry: bytes) -> str:
    duplicate = _duplicate_key(entry)
    if duplicate is not None:
        return (
            f"entry has the key {duplicate!r} twice in one object; canonical (RFC 8785) "
            "entries never repeat a key"
        )
    return "entry bytes are not in canonical (RFC 8785) form"


def _depth(value: Any) -> int:
    """How deeply containers nest in a parsed value (iterative: hostile data is deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((x, depth + 1) for x in item.values())
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)
        else:
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def _duplicate_key(entry: bytes) -> str | None:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(entry, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None


# orjson with sorted keys writes RFC 8785 bytes except for floats, integers past 2^53
# (the SDK tags those) and keys outside the Basic Multilingual Plane (JCS sorts them by
# UTF-16 code units). 4-byte UTF-8 sequences start with 0xF0-0xF4.
_NON_BMP = re.compile(rb"[\xf0-\xf4]")
_SAFE_INT = 2**53 - 1


def is_canonical(obj: dict[str, Any], entry: bytes) -> bool:
    """Whether ``entry`` is exactly the RFC 8785 encoding of ``obj`` (its parse).

    Fast path: when ``orjson`` reproduces the entry and none of the cases where it
    differs from JCS can occur (no float or large integer in the values, no
    character outside the BMP), the entry is canonical; otherwise the full encoder
    decides.
    """
    if (
        orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == entry
        and (entry.isascii() or not _NON_BMP.search(entry))
        and _plain_numbers(obj.get("payload"))
        and _plain_numbers(obj.get("metadata"))
        and -_SAFE_INT <= obj["ts"] <= _SAFE_INT
        and -_SAFE_INT <= obj["seq"] <= _SAFE_INT
    ):
        return True
    return json_canonical(obj) == entry


def _plain_numbers(value: Any) -> bool:
    """No float and no integer past 2^53 anywhere in ``value``."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if kind is dict:
        return all(_plain_numbers(item) for item in value.values())
    if kind is list:
        return all(_plain_numbers(item) for item in value)
    return False  # a float


def _check_fields(
    obj: dict[str, Any], seq: int, run_id: str | None, prev_hex: str | None, finished: bool
) -> str | None:
    kind = obj["type"]
    if finished:
        return f"event {kind!r} follows {_CLOSER}; nothing may be appended after the end"
    if run_id is not None and obj["run_id"] != run_id:
        return f"event belongs to run {obj['run_id']!r}, not {run_id!r}"
    if obj["seq"] != seq:
        return f"event carries seq {obj['seq']}, expected {seq} (deleted, inserted or reordered)"
    prev = obj.get("prev")
    role = event_type(kind).chain
    if seq == 0:
        if role is not ChainRole.OPEN:
            return f"first event is {kind!r}, expected {_OPENER}"
        if prev is not None:
            return "first event must not carry a prev hash"
    elif prev != prev_hex:
        return "prev hash does not match the previous event (edited, deleted or reordered)"
    match role:
        case ChainRole.OPEN if seq != 0:
            return f"{kind} may only be the first event"
        case ChainRole.CLOSE:
            counted = obj.get("metadata", {}).get("events")
            if counted != seq:
                return f"{kind} counts {counted!r} earlier events, but {seq} precede it"
        case ChainRole.OPEN | ChainRole.PAUSE | ChainRole.LINK:
            pass
    return None
