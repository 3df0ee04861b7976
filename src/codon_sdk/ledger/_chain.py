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

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, Final

import orjson

from codon_sdk.errors import CanonicalEncodingError, LedgerError
from codon_sdk.identity import LITERAL_DEPTH, MAX_DEPTH, json_canonical
from codon_sdk.ledger._erasure import ERASED_TYPE, Permit, erased_claim
from codon_sdk.ledger._event_types import ChainRole, event_type, types_with
from codon_sdk.ledger._events import ENTRY_FIELDS, FORMAT_VERSION, validate_parsed
from codon_sdk.ledger._merkle import MerkleAccumulator, leaf_hash

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
    """Everything one pass over a run's entries found, in memory that does not grow with
    the run: no leaf is kept but the last, the leaves go into a Merkle accumulator
    (O(log n)) whose root is taken at each size asked for.

    ``count`` is how many leaves were hashed (every entry, faulty ones and the rest after
    a fault included); ``head`` the last of them; ``roots`` the Merkle root of the first
    ``size`` leaves for each size asked for that the run reaches, and for ``count``;
    ``prior`` the leaf before ``bad_seq`` (None when there is none). ``started`` is the
    ``run_started`` metadata; ``pauses`` the seqs of ``run_interrupted`` events (both
    read by verification).
    """

    count: int = 0
    head: bytes | None = None
    roots: dict[int, bytes] = field(default_factory=dict)
    prior: bytes | None = None
    ended: bool = False
    bad_seq: int | None = None
    problem: str | None = None
    started: dict[str, Any] = field(default_factory=dict)
    pauses: list[int] = field(default_factory=list)
    #: The seqs of erased events (stand-ins the erasure log names), in order.
    erased: list[int] = field(default_factory=list)
    #: Past a fault: whether some later entry still parses as ``run_finished`` (the end is
    #: there, the chain leading to it is broken), so nobody claims the tail was cut off.
    end_after_fault: bool = False
    #: How many entries :func:`check_entry` checked one by one (the others were checked a
    #: span at a time): the first and the last of a sound run, more around anything unusual.
    alone: int = 0
    _tree: MerkleAccumulator = field(
        default_factory=MerkleAccumulator, init=False, repr=False, compare=False
    )
    #: the sizes whose root is still to take, largest first (taken from the end)
    _due: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def _add(self, leaves: list[bytes]) -> None:
        """The next leaves, in order: into the tree, a root taken at each size due (none:
        only the roots due at the size reached so far)."""
        tree, due, base = self._tree, self._due, self.count
        taken = 0
        while due and due[-1] <= base + len(leaves):
            size = due.pop()
            tree.extend(leaves[taken : size - base])
            taken = size - base
            self.roots[size] = tree.root()
        tree.extend(leaves[taken:] if taken else leaves)
        if leaves:
            self.count = base + len(leaves)
            self.head = leaves[-1]

    def _finish(self) -> None:
        """The walk is over: the root of every leaf; no size is due any more."""
        if self.count not in self.roots:
            self.roots[self.count] = self._tree.root()
        self._due.clear()


def walk_chain(
    entries: Sequence[bytes],
    *,
    run_id: str | None = None,
    spans: bool = True,
    sizes: Iterable[int] = (),
    permits: Mapping[int, Permit] | None = None,
) -> ChainWalk:
    """Check every entry in order; stop at the first fault (see the module docstring).

    Each entry is hashed as stored and parsed once. :func:`check_entry` is the one
    statement of the rules and names what is wrong; :func:`_sound_span` checks the
    ordinary entries of a run a span at a time and only vouches for a span whose
    every entry :func:`check_entry` accepts. Whatever a span check does not vouch for
    (the first and the last entry, anything unusual, every fault) goes through
    :func:`check_entry` one entry at a time, so the answer is the same either way
    (``spans=False`` checks every entry on its own, the reference the spans are
    tested against).

    ``sizes``: the tree sizes whose Merkle root the caller needs (a checkpoint's);
    ``walk.roots`` holds them, for those the run reaches, and the root of the whole run.
    The walk reads ``entries`` in order and keeps none of them (nor their leaves): a
    paged sequence stays paged.

    ``permits``: what the erasure log says of this run's erased seqs. A stand-in (type
    ``codon.erased``, see ``_erasure``) is accepted where a permit names its seq and
    leaf: its original leaf goes into the chain and the tree. Anywhere else it is a fault.
    """
    walk = ChainWalk()
    permits = permits or {}
    walk._due = sorted({s for s in sizes if type(s) is int and s >= 0}, reverse=True)
    walk._add([])
    prev_hex: str | None = None
    expected_run = run_id
    count = len(entries)
    seq = 0
    alone = 0 if spans else count  # entries left to check one by one before the next span
    sha256 = hashlib.sha256
    while seq < count:
        if not alone and seq and expected_run is not None and not walk.ended:
            stop = min(seq + _SPAN, count)
            sound, cut = _sound_span(entries, seq, stop, expected_run, walk)
            if sound:
                seq += sound
                prev_hex = walk.head.hex() if walk.head is not None else None
            alone = 1 if cut else stop - seq
            continue
        alone = max(alone - 1, 0)
        walk.alone += 1
        entry = _as_bytes(entries[seq])
        leaf = sha256(b"\x00" + entry).digest()
        obj, problem = _parsed(entry)
        kind = None if obj is None or problem is not None else obj["type"]
        if kind == ERASED_TYPE and obj is not None:
            leaf, kind, problem = _erased(obj, seq, expected_run, prev_hex, walk.ended, permits)
        elif obj is not None and problem is None:
            problem = _check_fields(obj, seq, expected_run, prev_hex, walk.ended)
        if problem is not None or obj is None:
            _after_fault(entries, seq, leaf, obj, problem, walk)
            return walk
        walk._add([leaf])
        if obj["type"] == ERASED_TYPE:
            walk.erased.append(seq)
        if seq == 0:
            walk.started = obj.get("metadata", {}) if kind == obj["type"] else {}
            expected_run = obj["run_id"]
        elif kind in _PAUSES:
            walk.pauses.append(seq)
        walk.ended = walk.ended or kind in _CLOSES
        prev_hex = leaf.hex()
        seq += 1
    walk._finish()
    return walk


def _after_fault(
    entries: Sequence[bytes],
    seq: int,
    leaf: bytes,
    obj: Any,
    problem: str | None,
    walk: ChainWalk,
) -> None:
    """Entry ``seq`` is at fault: blame it (or the one before), hash the rest a span at a
    time (the roots still cover every entry) and look for an end among them."""
    before = walk.head
    walk.bad_seq, walk.problem = _blame(entries, seq, leaf, obj, problem)
    walk.ended = False
    for start in range(seq, len(entries), _SPAN):
        rest = [_as_bytes(e) for e in entries[start : start + _SPAN]]
        walk._add([leaf_hash(e) for e in rest])
        walk.end_after_fault = walk.end_after_fault or any(_is_end(e) for e in rest)
    if walk.bad_seq == seq:
        walk.prior = before
    elif walk.bad_seq:  # the entry before ``seq`` is blamed: the prior is the one before it
        walk.prior = leaf_hash(_as_bytes(entries[walk.bad_seq - 1]))
    walk._finish()


#: Entries :func:`_sound_span` checks together: enough to spread its fixed cost thin, few
#: enough that a span's parsed entries die young (the garbage collector stays cheap).
_SPAN: Final = 256
_SPECIAL: Final = _OPENS | _CLOSES | {ERASED_TYPE}
_loads: Final = orjson.loads
_dumps_strict: Final = functools.partial(
    orjson.dumps, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
)
_get_v, _get_seq, _get_ts = itemgetter("v"), itemgetter("seq"), itemgetter("ts")
_get_type, _get_run, _get_prev = itemgetter("type"), itemgetter("run_id"), itemgetter("prev")
_INT: Final = frozenset({int})
_STR: Final = frozenset({str})
_BYTES: Final = frozenset({bytes})
_DICT: Final = frozenset({dict})
_VERSION: Final = frozenset({FORMAT_VERSION})
_HEX_LENGTH: Final = frozenset({64})
#: The fields that hold a string when present, besides ``type``, ``run_id`` and ``prev``.
_STRING_FIELDS: Final = frozenset(
    ("node", "target", "token_id", "parent_token_id", "actor", "trace_id", "span_id")
)
_NO_METADATA: Final[dict[str, Any]] = {}
#: What a span check may raise on bytes it does not decide: check_entry then decides.
_UNDECIDED: Final = (TypeError, ValueError, KeyError, RecursionError, OverflowError)


def _sound_span(
    entries: Sequence[bytes], start: int, stop: int, run_id: str, walk: ChainWalk
) -> tuple[int, bool]:
    """Check ``entries[start:stop]`` (``start`` > 0) together.

    Returns ``(n, cut)``: the first ``n`` entries are sound (their leaves and pauses
    are added to ``walk``), and ``cut`` says the next one is a start or end event, for
    :func:`check_entry` to see on its own. ``n == 0`` without ``cut``: the span holds
    something this check does not decide (a fault, or an unusual entry: a float, a
    field set to null...), and :func:`check_entry` takes the whole span.

    Each condition is a pass in C over the span, and together they imply what
    :func:`check_entry` checks of each entry: bytes of at most ``MAX_ENTRY_BYTES``
    parsing to a JSON object of known fields; ``v`` the integer 1; ``seq`` and ``ts``
    integers, ``seq`` the entry's position; ``type`` a string, neither a start nor an
    end (the span is cut before one); ``run_id`` the run's; ``prev`` the hex leaf
    hash of the entry before; the other string fields strings and ``metadata`` an
    object; canonical form (:func:`_canonical_span`).
    """
    chunk = list(entries[start:stop])
    try:
        if set(map(type, chunk)) != _BYTES or max(map(len, chunk)) > MAX_ENTRY_BYTES:
            return 0, False
        objs = list(map(_loads, chunk))
        kinds = list(map(_get_type, objs))  # TypeError unless each is a JSON object
        special = _SPECIAL.intersection(kinds)
        cut = min(map(kinds.index, special)) if special else len(kinds)
        if not cut:
            return 0, True
        del chunk[cut:], objs[cut:], kinds[cut:]
        sha256 = hashlib.sha256
        leaves = [sha256(b"\x00" + entry).digest() for entry in chunk]
        versions, seqs, prevs = (
            [*map(_get_v, objs)],
            [*map(_get_seq, objs)],
            [*map(_get_prev, objs)],
        )
        fields = set().union(*objs)
        sound = (
            _KNOWN.issuperset(fields)
            and set(versions) == _VERSION
            and set(map(type, versions)) == _INT
            and seqs == list(range(start, start + cut))
            and set(map(type, seqs)) == _INT
            and set(map(type, map(_get_ts, objs))) == _INT
            and set(map(type, kinds)) == _STR
            and set(map(_get_run, objs)) == {run_id}
            and set(map(len, prevs)) == _HEX_LENGTH
            and "".join(prevs) == b"".join((walk.head or b"", *leaves[:-1])).hex()
            and _strings_and_metadata(objs, fields)
            and _canonical_span(objs, chunk, run_id)
        )
    except _UNDECIDED:
        return 0, False
    if not sound:
        return 0, False
    walk._add(leaves)
    if _PAUSES.intersection(kinds):
        walk.pauses.extend(start + i for i, kind in enumerate(kinds) if kind in _PAUSES)
    return cut, cut < stop - start


def _strings_and_metadata(objs: list[dict[str, Any]], fields: set[str]) -> bool:
    """Whether the string fields a span holds are strings and its ``metadata`` objects.

    ``str.join`` raises ``TypeError`` on anything but strings, null included (the SDK
    leaves out a field whose value is null: one that is there is left to check_entry).
    """
    for name in _STRING_FIELDS.intersection(fields):
        "".join(map(dict.get, objs, repeat(name), repeat("")))
    if "metadata" not in fields:
        return True
    return set(map(type, map(dict.get, objs, repeat("metadata"), repeat(_NO_METADATA)))) == _DICT


def _canonical_span(objs: list[Any], chunk: list[bytes], run_id: str) -> bool:
    """Whether every entry of a span is canonical (:func:`is_canonical` of each).

    :func:`is_canonical`'s fast case is decided for the whole span at once: ``orjson``
    reproduces the span (the list of the entries' parses, encoded in one call, is the
    entries joined by commas) while refusing integers past 2^53, the bytes are ASCII (no
    character outside the BMP) and hold no float. ``orjson`` writes every float with a
    ``.``, an ``e+`` or an ``e-``: single bytes are found at ``memchr`` speed, so ``e-``
    is looked for only when the span holds more ``-`` than its run ids account for.
    Otherwise :func:`is_canonical` decides each entry.
    """
    try:  # one call for the span: each entry was parsed on its own, so equal joins mean
        # equal entries (an entry that re-encodes longer or shorter than it is would have to
        # hold a whole encoded value and then a comma, which would not have parsed)
        fast = _dumps_strict(objs) == b"[" + b",".join(chunk) + b"]"
    except TypeError:  # an integer past 2^53 (JCS writes a whole double so)
        fast = False
    if fast:
        joined = b"".join(chunk)
        fast = (
            joined.isascii()
            and b"." not in joined
            and b"+" not in joined
            and (joined.count(b"-") == run_id.count("-") * len(chunk) or b"e-" not in joined)
        )
    return fast or all(map(is_canonical, objs, chunk))


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
    entries: Iterable[bytes],
    *,
    run_id: str | None = None,
    require_end: bool = False,
    permits: Mapping[int, Permit] | None = None,
) -> ChainCheck:
    """Check a run's entries, in order, and name the first broken one.

    With ``require_end`` (the run is known to have finished) a missing
    ``run_finished`` is reported at the position where it should be. ``permits``: the
    erasure log's word on the run's erased seqs (see :func:`walk_chain`).
    """
    items = entries if isinstance(entries, Sequence) else list(entries)
    walk = walk_chain(items, run_id=run_id, permits=permits)
    head = walk.head.hex() if walk.head is not None and walk.problem is None else None
    if walk.problem is not None:
        prior = walk.prior.hex() if walk.prior is not None else None
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
    obj, problem = _parsed(entry)
    if obj is None or problem is not None:
        return obj, problem
    return obj, _check_fields(obj, seq, run_id, prev_hex, finished)


def _erased(
    obj: dict[str, Any],
    seq: int,
    run_id: str | None,
    prev_hex: str | None,
    finished: bool,
    permits: Mapping[int, Permit],
) -> tuple[bytes, str, str | None]:
    """A stand-in at ``seq``: ``(original leaf, original type, problem or None)``. It holds
    its place by the chain rules of the type it stands for, and only where the erasure log
    names its seq and leaf."""
    claim = erased_claim(obj)
    if claim is None:
        return b"", ERASED_TYPE, "an erased stand-in whose fields are malformed (tampered)"
    leaf, kind = claim
    permit = permits.get(seq)
    if permit is None or permit.leaf != leaf:
        return (
            leaf,
            kind,
            (
                "an erased stand-in that the erasure log does not name (a forged erasure, or "
                "the log was edited): the event's content was removed outside `codon erase`"
            ),
        )
    return leaf, kind, _check_fields(obj, seq, run_id, prev_hex, finished, kind)


def _parsed(entry: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """One entry parsed and checked on its own (size, JSON, shape, canonical form)."""
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
    return obj, None


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
    obj: dict[str, Any],
    seq: int,
    run_id: str | None,
    prev_hex: str | None,
    finished: bool,
    erased: str | None = None,
) -> str | None:
    """The fields of a parsed entry at ``seq``; ``erased``: the type a stand-in stands for
    (its place is checked by that type's rules, its content is gone)."""
    kind = erased or obj["type"]
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
        case ChainRole.CLOSE if erased is None:
            counted = obj.get("metadata", {}).get("events")
            if counted != seq:
                return f"{kind} counts {counted!r} earlier events, but {seq} precede it"
        case ChainRole.OPEN | ChainRole.PAUSE | ChainRole.LINK | ChainRole.CLOSE:
            pass
    return None
