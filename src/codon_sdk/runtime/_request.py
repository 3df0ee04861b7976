"""What a recorded effect asked for: recorded with the effect, compared when a replay serves it.

A live run records, in the ``effect_recorded`` event's metadata under ``request``,
the request the effect was made with, in one of three forms::

    {"value": <the request, canonical form>}      when its canonical bytes fit REQUEST_VALUE_CAP
    {"sha256": "<hex>", "size": <bytes>}          when larger: only the digest is kept
    {"value_at": "llm.request"}                   the request is already in the metadata there

plus ``"unrecorded": ["$['args'][1]: openai.OpenAI", ...]`` when parts of it have no
canonical encoding (a client object passed as an argument): each such part is
recorded as the string ``"<unrecorded: <type>>"``, so the rest is still compared
and the effect never fails for it. The digest of a value is derivable from the
value, so it is not stored twice.

For ``runtime.effect(name, fn, *args, **kwargs)`` the request is
``{"args": [...], "kwargs": {...}}`` (empty parts left out); ``fn`` itself is not
part of it, the effect's name says what is called. An LLM call's request is its
model, messages or input and parameters (never credentials or transport headers),
which the integration already records as ``llm.request``. Either way it goes
through the run's redaction policy, as everything the ledger holds.

Two requests are the same when their RFC 8785 bytes are, with the keyed hash of
each redaction marker blanked (``[REDACTED:api_key:3f9a…]`` -> ``[REDACTED:api_key]``, and a
sealed one, ``[SEALED:api_key:…]``, likewise, whichever key sealed it):
without a configured redaction key every process masks with its own key, and a
replay in another process must not report a secret as a change. The digest is
taken over those blanked bytes. A ledger written before requests were recorded
has no ``request``: there is nothing to compare and the effect is served as before.
A recorded ``request`` that cannot be read (the store is hostile input) is itself
reported, never trusted and never fatal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from codon_sdk.errors import CanonicalEncodingError, LedgerError
from codon_sdk.identity import TAG, Redact, dumps, json_canonical, key_masker, prepare
from codon_sdk.redaction import MARKER_PATTERN, SEALED_MARKER_PATTERN, SEALED_PREFIX

__all__ = [
    "REQUEST_VALUE_CAP",
    "RecordedRequest",
    "Request",
    "RequestChange",
    "ask",
    "compare_request",
    "read_recorded",
]

REQUEST_VALUE_CAP = 16_384
"""Largest canonical request (bytes) recorded whole; a larger one is recorded by digest."""

_MARKER = re.compile(MARKER_PATTERN.pattern.encode("ascii"))
_BLANKED = rb"[REDACTED:\g<kind>]"
_MARKER_START = b"[REDACTED:"
_SEALED = re.compile(SEALED_MARKER_PATTERN.pattern.encode("ascii"))
_SEALED_START = SEALED_PREFIX.encode("ascii")
_DESCEND = 6  # levels a request is opened to find the parts that cannot be encoded
_MAX_DIFFERENCES = 10
_SHOWN = 300  # characters of a value shown in a difference
_HEX = re.compile(r"[0-9a-f]{64}\Z")


def _blank(canonical: bytes) -> bytes:
    if _SEALED_START in canonical:
        canonical = _SEALED.sub(_BLANKED, canonical)
    return _MARKER.sub(_BLANKED, canonical) if _MARKER_START in canonical else canonical


@dataclass(frozen=True, slots=True)
class Request:
    """Today's request: its canonical bytes and the parts that could not be encoded."""

    canonical: bytes
    unrecorded: tuple[str, ...] = ()

    @property
    def comparable(self) -> bytes:
        return _blank(self.canonical)

    def value(self) -> Any:
        return orjson.loads(self.canonical)

    def record(self, metadata: Mapping[str, Any], at: str | None) -> dict[str, Any]:
        """The ``request`` metadata of the effect (see the module docstring)."""
        out: dict[str, Any]
        if at is not None and _resolve(metadata, at) is not _ABSENT:
            out = {"value_at": at}
        elif len(self.canonical) <= REQUEST_VALUE_CAP:
            out = {"value": orjson.Fragment(self.canonical)}  # already canonical: kept verbatim
        else:
            out = {"sha256": _sha256(self.comparable), "size": len(self.canonical)}
        if self.unrecorded:
            out["unrecorded"] = list(self.unrecorded)
        return out


def ask(value: Any, redact: Redact | None) -> Request:
    """``value`` as a request: canonical bytes through ``redact``; parts with no canonical
    encoding replaced by ``"<unrecorded: type>"`` and named, never an error."""
    try:
        return Request(dumps(prepare(value, redact)))
    except CanonicalEncodingError:
        missing: list[str] = []
        prepared = _recordable(value, redact, "$", missing, 0)
        return Request(dumps(prepared), tuple(missing))


def _recordable(
    value: Any, redact: Redact | None, path: str, missing: list[str], depth: int
) -> Any:
    try:
        prepared = prepare(value, redact)
        dumps(prepared)  # lone surrogates show only here
        return prepared
    except CanonicalEncodingError:
        pass
    kind = type(value)
    if depth < _DESCEND:
        if kind is list or kind is tuple:
            items = [
                _recordable(x, redact, f"{path}[{i}]", missing, depth + 1)
                for i, x in enumerate(value)
            ]
            return items if kind is list else {TAG: "tuple", "v": items}
        if kind is dict and TAG not in value and all(_plain_key(k) for k in value):
            masker = key_masker(redact)
            return {
                (k if redact is None else redact(k)): _recordable(
                    masker[1](x) if masker is not None and masker[0](k) else x,
                    redact,
                    f"{path}[{k!r}]",
                    missing,
                    depth + 1,
                )
                for k, x in value.items()
            }
    name = f"{kind.__module__}.{kind.__qualname__}"
    missing.append(f"{path}: {name}")
    return f"<unrecorded: {name}>"


def _plain_key(key: Any) -> bool:
    return type(key) is str and key.isascii()


class _Absent:
    pass


_ABSENT = _Absent()


def _resolve(metadata: Any, at: str) -> Any:
    """``metadata`` at the dotted path ``at`` (``"llm.request"``), or ``_ABSENT``."""
    node = metadata
    for part in at.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request read back from a ledger: its value (when kept) or only its digest."""

    sha256: str
    size: int
    value: Any = None
    comparable: bytes | None = None  # blanked canonical bytes, when the value was kept
    unrecorded: tuple[str, ...] = ()

    def shown(self) -> Any:
        """What a report shows: the value, or the digest when only that was kept."""
        if self.comparable is not None:
            return self.value
        return {"sha256": self.sha256, "size": self.size}


def read_recorded(metadata: Mapping[str, Any]) -> RecordedRequest | None:
    """The request recorded in an effect's metadata; None for a ledger that records none.

    Raises :class:`~codon_sdk.errors.LedgerError` naming what is wrong when the
    recorded ``request`` is malformed.
    """
    raw = metadata.get("request", _ABSENT)
    if raw is _ABSENT:
        return None
    if not isinstance(raw, Mapping):
        raise LedgerError(f"the recorded request must be an object, got {_short(raw)}")
    unrecorded = raw.get("unrecorded", [])
    if not isinstance(unrecorded, list) or not all(isinstance(u, str) for u in unrecorded):
        raise LedgerError(
            f"the recorded request's 'unrecorded' must be a list of strings, got "
            f"{_short(unrecorded)}"
        )
    if "value" in raw or "value_at" in raw:
        if "value" in raw:
            value = raw["value"]
        else:
            at = raw["value_at"]
            value = _resolve(metadata, at) if isinstance(at, str) else _ABSENT
            if value is _ABSENT:
                raise LedgerError(
                    f"the recorded request points at {_short(at)}, which the effect's metadata "
                    "does not hold"
                )
        try:
            canonical = json_canonical(value)
        except Exception as exc:  # hostile bytes: any failure is a finding, never a crash
            raise LedgerError(f"the recorded request cannot be re-encoded: {exc}") from exc
        comparable = _blank(canonical)
        return RecordedRequest(
            _sha256(comparable), len(canonical), value, comparable, tuple(unrecorded)
        )
    digest, size = raw.get("sha256"), raw.get("size")
    if not isinstance(digest, str) or not _HEX.match(digest):
        raise LedgerError(
            f"the recorded request has neither a value nor a SHA-256 digest (64 lowercase hex "
            f"digits), got sha256={_short(digest)}"
        )
    if type(size) is not int or size < 0:
        raise LedgerError(f"the recorded request's size must be a byte count, got {_short(size)}")
    return RecordedRequest(digest, size, unrecorded=tuple(unrecorded))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True, slots=True)
class RequestChange:
    """A replay asked an effect for something else than the recording did (or the recorded
    request cannot be read): what a replay reports as ``request changed``."""

    token_id: str
    node: str
    effect: str
    index: int
    seq: int
    recorded: Any
    replay: Any
    differences: tuple[str, ...]


def compare_request(
    metadata: Mapping[str, Any], today: Request
) -> tuple[Any, Any, tuple[str, ...]] | None:
    """(recorded, replay, differences) when ``today`` differs from the request recorded in
    ``metadata``; None when they are the same or nothing was recorded."""
    try:
        recorded = read_recorded(metadata)
    except LedgerError as exc:
        return "<unreadable>", today.value(), (f"the recorded request is unreadable: {exc}",)
    if recorded is None:
        return None
    if recorded.comparable is not None:
        if recorded.comparable == today.comparable:
            return None
        mine = today.value()
        found = differences(recorded.value, mine)
        return recorded.value, mine, tuple(found or ["the requests differ"])
    digest = _sha256(today.comparable)
    if digest == recorded.sha256:
        return None
    note = (
        f"SHA-256 {recorded.sha256[:12]}… ({recorded.size} bytes) recorded, {digest[:12]}… "
        f"({len(today.canonical)} bytes) now; the recorded request was larger than "
        f"{REQUEST_VALUE_CAP} bytes, so only its digest was kept"
    )
    return recorded.shown(), {"sha256": digest, "size": len(today.canonical)}, (note,)


def differences(recorded: Any, replay: Any, path: str = "$") -> list[str]:
    """Where two JSON values differ (at most a few places), first one first."""
    out: list[str] = []
    _diff(recorded, replay, path, out, 0)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str], depth: int) -> None:
    if len(out) >= _MAX_DIFFERENCES:
        return
    if isinstance(a, dict) and isinstance(b, dict) and depth < 200:
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}[{key!r}]"
            if key not in a:
                out.append(f"{where}: not recorded, replay {_show(b[key])}")
            elif key not in b:
                out.append(f"{where}: recorded {_show(a[key])}, not in the replay")
            else:
                _diff(a[key], b[key], where, out, depth + 1)
            if len(out) >= _MAX_DIFFERENCES:
                return
        return
    if isinstance(a, list) and isinstance(b, list) and depth < 200:
        for i in range(max(len(a), len(b))):
            where = f"{path}[{i}]"
            if i >= len(a):
                out.append(f"{where}: not recorded, replay {_show(b[i])}")
            elif i >= len(b):
                out.append(f"{where}: recorded {_show(a[i])}, not in the replay")
            else:
                _diff(a[i], b[i], where, out, depth + 1)
            if len(out) >= _MAX_DIFFERENCES:
                return
        return
    if not _same(a, b):
        out.append(f"{path}: recorded {_show(a)}, replay {_show(b)}")


def _same(a: Any, b: Any) -> bool:
    if type(a) is str and type(b) is str:
        return a == b or _blank(a.encode("utf-8", "surrogatepass")) == _blank(
            b.encode("utf-8", "surrogatepass")
        )
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
