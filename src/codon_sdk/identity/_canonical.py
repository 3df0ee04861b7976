"""Canonical encoding: RFC 8785 (JCS) bytes for any value the SDK hashes or records.

Fast path: :func:`prepare` walks the value once, leaves plain JSON untouched and
rewrites what JSON cannot say; ``orjson`` with sorted keys then produces the
bytes. Where ``orjson`` and JCS differ the walk steps in:

* floats are pre-formatted the ECMAScript way (``1.0`` -> ``1``, ``1e21`` ->
  ``1e+21``, ``1e-7`` -> ``1e-7``) and spliced in as ``orjson.Fragment``;
* objects with keys outside the Basic Multilingual Plane are sorted by UTF-16
  code units (JCS) rather than code points, and spliced in pre-serialised.

The property tests in ``tests/identity/test_canonical.py`` prove the result equal
to the reference ``rfc8785`` package on generated values and on the vectors in
``testdata/jcs.json``.

Values JSON cannot express get one documented, reversible encoding each, a
tagged object ``{"$codon": <kind>, "v": <value>}`` (:func:`decode` revives them):

==================  ===========================================================
value               encoding
==================  ===========================================================
int beyond 2^53-1   ``{"$codon": "int", "v": "<decimal digits>"}``
NaN, +-Infinity     ``{"$codon": "float", "v": "NaN" | "Infinity" | "-Infinity"}``
tuple               ``{"$codon": "tuple", "v": [...]}``
set, frozenset      ``{"$codon": "set" | "frozenset", "v": [...]}`` sorted by element bytes
bytes, bytearray    ``{"$codon": "bytes", "v": "<base64>"}``
datetime/date/time  ``{"$codon": "datetime" | "date" | "time", "v": "<ISO 8601>"}``
timedelta           ``{"$codon": "timedelta", "v": [days, seconds, microseconds]}``
Decimal             ``{"$codon": "decimal", "v": "<str(value)>"}``
UUID                ``{"$codon": "uuid", "v": "<canonical form>"}``
pathlib path        ``{"$codon": "path", "v": "<posix string>"}``
Enum member         ``{"$codon": "enum", "type": "<module>:<qualname>", "v": <value>}``
dataclass instance  ``{"$codon": "dataclass", "type": "<module>:<qualname>", "v": {fields}}``
pydantic model      ``{"$codon": "pydantic", "type": "<module>:<qualname>", "v": {model_dump}}``
non-str dict keys,  ``{"$codon": "map", "v": [[key, value], ...]}`` sorted by key bytes
or a "$codon" key
==================  ===========================================================

Subclasses of dict, list, str and int encode as their base type. Anything else,
a reference cycle, a lone surrogate or nesting deeper than ``MAX_DEPTH`` raises
:class:`~codon_sdk.errors.CanonicalEncodingError` naming the path and the type:
never a silent ``repr``. Integral floats come back as ints (JCS writes ``2.0`` as
``2``) and tuples as tuples.

Decoding never lets ledger data choose what is imported or called: the ``enum``,
``dataclass`` and ``pydantic`` tags revive only classes on the allowlist of
``codon_sdk/identity/_types.py`` (classes this process encoded, or registered with
``register_type``); an unregistered type, an unknown tag or a malformed encoding
decodes to an inert :class:`TaggedValue` that keeps what was recorded.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import pathlib
import uuid
from collections.abc import Callable
from typing import Any, Final, cast

import orjson

from codon_sdk.errors import CanonicalEncodingError
from codon_sdk.identity._types import allowed_type, remember_type, type_path

__all__ = [
    "MAX_DEPTH",
    "TAG",
    "TaggedValue",
    "canonical_bytes",
    "decode",
    "json_canonical",
    "prepare",
    "type_path",
]

TAG = "$codon"
MAX_DEPTH = 200
_MAX_SAFE_INT = 2**53 - 1
_SORT = orjson.OPT_SORT_KEYS
_TAG_BYTES = b'"$codon"'
_FRAGMENT = orjson.Fragment


Redact = Callable[[str], str]
"""A redaction hook: takes a string, returns it unchanged (the same object) or masked.

A hook that is a bound method of an object with ``key_masker()`` (a ``Redactor``'s
``redact_text``) also masks whole every value under a key that names a credential."""

KeyMasker = tuple[Callable[[Any], bool], Callable[[Any], Any]]


def key_masker(redact: Redact | None) -> KeyMasker | None:
    """``(is_credential_key, mask_whole)`` of ``redact``'s policy, or None."""
    owner = getattr(redact, "__self__", None)
    get = getattr(owner, "key_masker", None)
    return None if get is None else cast("KeyMasker | None", get())


def canonical_bytes(value: Any, redact: Redact | None = None) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value`` (strings through ``redact``)."""
    return dumps(prepare(value, redact))


def json_canonical(parsed: Any) -> bytes:
    """The RFC 8785 bytes of an already-parsed JSON value, taken literally.

    Unlike :func:`canonical_bytes`, an object with a ``"$codon"`` key is just an
    object here (nothing to escape): this is what re-checks stored entries.
    """
    return dumps(_literal(parsed, "$", 0))


def dumps(prepared: Any) -> bytes:
    """Serialise a value returned by :func:`prepare` (or a dict of them) canonically."""
    try:
        return orjson.dumps(prepared, option=_SORT)
    except orjson.JSONEncodeError as exc:
        raise unencodable(prepared, exc) from exc


def prepare(value: Any, redact: Redact | None = None) -> Any:
    """Return ``value`` in a form whose sorted-key ``orjson`` output is its JCS encoding.

    Plain JSON comes back as the very same object (nothing is copied); anything
    else is rebuilt with the tagged encodings of the module docstring. With
    ``redact``, every string (values and keys) goes through it first, so what is
    recorded never holds what the redaction policy masks.
    """
    tv = type(value)
    if tv is str:
        return value if redact is None else redact(value)
    if tv is bool or value is None:
        return value
    if tv is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    if tv is dict:
        flat = _flat_dict(value, redact)
        if flat is not None:
            return flat
    walk = _Walk(redact=redact)
    out = walk.prep(value, "$", 0)
    if walk.utf16:
        out = orjson.Fragment(orjson.dumps(_utf16_sorted(out)))
    return out


def _flat_dict(d: dict[Any, Any], redact: Redact | None) -> dict[str, Any] | None:
    """What the walk makes of a small dict of ASCII string keys and plain scalar values (a
    state update, a task's metadata) without its set-up, or None to leave it to the walk
    (which masks the values under credential keys)."""
    if len(d) > 8 or TAG in d:
        return None
    out: dict[str, Any] | None = None
    masker = None if redact is None else key_masker(redact)
    secret = None if masker is None else masker[0]
    for k, x in d.items():
        if type(k) is not str or not k.isascii() or (secret is not None and secret(k)):
            return None
        tx = type(x)
        if tx is str:
            rx = x if redact is None else redact(x)
        elif tx is bool or x is None or (tx is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT):
            rx = x
        else:
            return None
        rk = k if redact is None else redact(k)
        if out is None and (rk is not k or rx is not x):
            out = {}
            for k2, x2 in d.items():  # the pairs before this one, which redact left alone
                if k2 == k:
                    break
                out[k2] = x2
        if out is not None:
            out[rk] = rx
    return d if out is None else out


class _Walk:
    __slots__ = ("active", "escape_tags", "masker", "redact", "utf16")

    def __init__(self, *, escape_tags: bool = True, redact: Redact | None = None) -> None:
        self.active: set[int] = set()
        self.utf16 = False
        self.escape_tags = escape_tags
        self.redact = redact
        self.masker = None if redact is None else key_masker(redact)

    def prep(self, v: Any, path: str, depth: int) -> Any:
        tv = type(v)
        if tv is str:
            return v if self.redact is None else self.redact(v)
        if tv is bool or v is None:
            return v
        if tv is int:
            if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                return v
            if not self.escape_tags:  # a parsed JSON number: JCS reads it as a double
                return _parsed_number(v)
            return {TAG: "int", "v": _digits(v, path)}
        if tv is float:
            return _float(v)
        if (
            tv is _FRAGMENT
        ):  # already prepared (a float, a pre-sorted object): prepare is idempotent
            return v
        if depth >= MAX_DEPTH:
            raise CanonicalEncodingError(
                f"value at {path} is nested more than {MAX_DEPTH} levels deep; flatten it",
                path=path,
                type_name=tv.__name__,
            )
        if tv is dict:
            return self._dict(v, path, depth)
        if tv is list:
            return self._list(v, path, depth)
        return self._other(v, tv, path, depth)

    def _enter(self, v: Any, path: str) -> int:
        key = id(v)
        if key in self.active:
            raise CanonicalEncodingError(
                f"value at {path} contains itself (a reference cycle of {type(v).__name__}); "
                "recursive structures cannot be recorded",
                path=path,
                type_name=type(v).__name__,
            )
        self.active.add(key)
        return key

    def _dict(self, d: dict[Any, Any], path: str, depth: int) -> Any:
        key = self._enter(d, path)
        try:
            if TAG in d and self.escape_tags:
                return {TAG: "map", "v": self._pairs(d, path, depth)}
            out: dict[str, Any] | None = None
            redact = self.redact
            secret = None if self.masker is None else self.masker[0]
            for k, x in d.items():
                if type(k) is not str:
                    if isinstance(k, str) and not isinstance(k, enum.Enum):
                        return self._dict({_plain_key(k2): v for k2, v in d.items()}, path, depth)
                    return {TAG: "map", "v": self._pairs(d, path, depth)}
                if not self.utf16 and not k.isascii() and max(k) > "\uffff":
                    self.utf16 = True
                rk = k if redact is None else redact(k)
                if secret is not None and secret(k):  # a credential: masked whole
                    nx = self.prep(self._under_key(k, x), f"{path}[{k!r}]", depth + 1)
                else:
                    tx = type(x)
                    if rk is k and (
                        (tx is str and redact is None)
                        or tx is bool
                        or x is None
                        or (tx is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT)
                    ):
                        if out is not None:
                            out[k] = x
                        continue
                    nx = self.prep(x, f"{path}[{k!r}]", depth + 1)
                if out is None:
                    if nx is x and rk is k:
                        continue
                    out = {}
                    for k2, x2 in d.items():
                        if k2 == k:
                            break
                        out[k2 if redact is None else redact(k2)] = x2
                out[rk] = nx
            return d if out is None else out
        finally:
            self.active.discard(key)

    def _list(self, lst: list[Any] | tuple[Any, ...], path: str, depth: int) -> Any:
        key = self._enter(lst, path)
        try:
            out: list[Any] | None = None
            redact = self.redact
            for i, x in enumerate(lst):
                tx = type(x)
                if (
                    (tx is str and redact is None)
                    or tx is bool
                    or x is None
                    or (tx is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT)
                ):
                    if out is not None:
                        out.append(x)
                    continue
                nx = self.prep(x, f"{path}[{i}]", depth + 1)
                if out is None:
                    if nx is x:
                        continue
                    out = list(lst[:i])
                out.append(nx)
            if out is None:
                return lst if type(lst) is list else list(lst)
            return out
        finally:
            self.active.discard(key)

    def _pairs(self, d: dict[Any, Any], path: str, depth: int) -> list[list[Any]]:
        pairs = [
            [
                self.prep(k, f"{path}<key {k!r}>", depth + 1),
                self.prep(self._under_key(k, x), f"{path}[{k!r}]", depth + 1),
            ]
            for k, x in d.items()
        ]
        pairs.sort(key=lambda p: _sort_key(p[0]))
        return pairs

    def _under_key(self, k: Any, x: Any) -> Any:
        """``x`` as recorded under key ``k``: masked whole when ``k`` names a credential."""
        if self.masker is None:
            return x
        secret, whole = self.masker
        return whole(x) if secret(k) else x

    def _other(self, v: Any, tv: type, path: str, depth: int) -> Any:
        if tv is TaggedValue:  # read from a ledger and not revived: written back as it was
            return orjson.Fragment(json_canonical(v.raw))
        if isinstance(v, enum.Enum):
            remember_type(tv)
            return {
                TAG: "enum",
                "type": type_path(tv),
                "v": self.prep(v.value, f"{path}.value", depth + 1),
            }
        if isinstance(v, str):
            return str(v)
        if isinstance(v, int):
            return self.prep(int(v), path, depth)
        if isinstance(v, float):
            return _float(float(v))
        if isinstance(v, dict):
            return self._dict(dict(v), path, depth)
        if isinstance(v, list):
            return self._list(v, path, depth)
        if isinstance(v, tuple):
            return {TAG: "tuple", "v": self._list(v, path, depth)}
        if isinstance(v, (set, frozenset)):
            key = self._enter(v, path)
            try:
                items = [self.prep(x, f"{path}{{…}}", depth + 1) for x in v]
            finally:
                self.active.discard(key)
            items.sort(key=_sort_key)
            return {TAG: "frozenset" if isinstance(v, frozenset) else "set", "v": items}
        if isinstance(v, (bytes, bytearray, memoryview)):
            return {TAG: "bytes", "v": base64.b64encode(bytes(v)).decode("ascii")}
        if isinstance(v, _dt.datetime):
            return {TAG: "datetime", "v": v.isoformat()}
        if isinstance(v, _dt.date):
            return {TAG: "date", "v": v.isoformat()}
        if isinstance(v, _dt.time):
            return {TAG: "time", "v": v.isoformat()}
        if isinstance(v, _dt.timedelta):
            return {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]}
        if isinstance(v, decimal.Decimal):
            return {TAG: "decimal", "v": str(v)}
        if isinstance(v, uuid.UUID):
            return {TAG: "uuid", "v": str(v)}
        if isinstance(v, pathlib.PurePath):
            return {TAG: "path", "v": v.as_posix()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            key = self._enter(v, path)
            try:
                fields = {
                    f.name: self.prep(getattr(v, f.name), f"{path}.{f.name}", depth + 1)
                    for f in dataclasses.fields(v)
                }
            finally:
                self.active.discard(key)
            remember_type(tv)
            return {TAG: "dataclass", "type": type_path(tv), "v": fields}
        dump = getattr(v, "model_dump", None)
        if callable(dump) and hasattr(tv, "model_fields"):
            key = self._enter(v, path)
            try:
                data = self.prep(dump(mode="python", by_alias=True), path, depth + 1)
            finally:
                self.active.discard(key)
            remember_type(tv)
            return {TAG: "pydantic", "type": type_path(tv), "v": data}
        raise CanonicalEncodingError(
            f"value at {path} of type {tv.__module__}.{tv.__qualname__} has no canonical "
            "encoding; convert it to JSON types (dict, list, str, int, float, bool, None), "
            "a dataclass or a pydantic model before emitting or returning it",
            path=path,
            type_name=f"{tv.__module__}.{tv.__qualname__}",
        )


def _plain_key(key: Any) -> Any:
    """A str-subclass key as the plain string it holds (other keys unchanged)."""
    return str.__str__(key) if isinstance(key, str) and not isinstance(key, enum.Enum) else key


def _sort_key(prepared: Any) -> bytes:
    return dumps(prepared)


def _float(x: float) -> Any:
    if math.isnan(x):
        return {TAG: "float", "v": "NaN"}
    if math.isinf(x):
        return {TAG: "float", "v": "Infinity" if x > 0 else "-Infinity"}
    return orjson.Fragment(format_float(x).encode("ascii"))


def _parsed_number(n: int) -> Any:
    """The JCS form of a JSON number a parser read as an integer past 2^53 (a float such as
    ``1e17`` is written that way): the double it denotes, so a stored float re-checks."""
    try:
        return _float(float(n))
    except OverflowError:  # past the double range: JCS has no form for it
        return {TAG: "int", "v": str(n)}


def format_float(x: float) -> str:
    """Format a finite float as ECMAScript's Number.prototype.toString does (RFC 8785 3.2.2.3)."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))
    mant, _, exp = r.partition("e")
    e = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    digits = ip + fp
    stripped = digits.lstrip("0")
    n = len(ip) + e - (len(digits) - len(stripped))  # value = 0.<digits> * 10**n
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    tail = "." + digits[1:] if k > 1 else ""
    e10 = n - 1
    return f"{sign}{digits[0]}{tail}e{'+' if e10 >= 0 else '-'}{abs(e10)}"


def _utf16_sorted(v: Any) -> Any:
    if type(v) is dict:
        return {k: _utf16_sorted(v[k]) for k in sorted(v, key=_utf16_key)}
    if type(v) is list:
        return [_utf16_sorted(x) for x in v]
    return v


def _utf16_key(k: str) -> bytes:
    return k.encode("utf-16-be", "surrogatepass")


# --------------------------------------------------------------------------- decoding


class TaggedValue:
    """A tagged value read from ledger data that was not brought back to life.

    An unknown tag, a type that is not registered (``codon_sdk.identity.register_type``:
    ledger data never chooses what is imported or called), or a malformed encoding
    decodes to this inert value instead of failing: ``tag``, ``type_name`` and ``data``
    (the JSON under ``"v"``, unrevived) are kept as recorded, and encoding it again gives
    exactly the tagged object that was read.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def tag(self) -> str:
        return str(self.raw.get(TAG))

    @property
    def type_name(self) -> str | None:
        name = self.raw.get("type")
        return name if isinstance(name, str) else None

    @property
    def data(self) -> Any:
        return self.raw.get("v")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaggedValue) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(orjson.dumps(self.raw, option=_SORT))

    def __repr__(self) -> str:
        kind = f", type={self.type_name!r}" if self.type_name is not None else ""
        return f"TaggedValue({self.tag!r}{kind})"


#: Nesting beyond which decoding leaves values as parsed: the encoder refuses anything
#: deeper than ``MAX_DEPTH``, so only hostile data gets there.
_REVIVE_DEPTH: Final = MAX_DEPTH + 8
_DECODE_ERRORS: Final = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    AttributeError,
    binascii.Error,
    decimal.InvalidOperation,
)


def decode(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse canonical bytes back into Python values, reviving tagged encodings."""
    raw = bytes(data) if isinstance(data, (bytearray, memoryview)) else data
    value = orjson.loads(raw)
    needle: Any = _TAG_BYTES if isinstance(raw, bytes) else '"$codon"'
    if needle not in raw:
        return value
    return revive(value)


def revive(v: Any, depth: int = 0) -> Any:
    """Turn tagged encodings inside already-parsed JSON back into Python values.

    Total over any parsed JSON: it never raises, never imports, and calls only the
    constructors of the documented value types and of registered classes; whatever it
    cannot revive stays as it was (a tagged object as a :class:`TaggedValue`).
    """
    tv = type(v)
    if depth >= _REVIVE_DEPTH:
        return v
    if tv is dict:
        tag = v.get(TAG)
        if type(tag) is str and "v" in v:
            return _revive_tagged(tag, v, depth)
        return {k: revive(x, depth + 1) for k, x in v.items()}
    if tv is list:
        return [revive(x, depth + 1) for x in v]
    return v


def _revive_tagged(tag: str, obj: dict[str, Any], depth: int) -> Any:
    try:
        return _revive_known(tag, obj, depth)
    except _DECODE_ERRORS:
        return TaggedValue(obj)
    except Exception:  # a registered type whose constructor refuses the recorded data
        return TaggedValue(obj)


def _revive_known(tag: str, obj: dict[str, Any], depth: int) -> Any:
    raw = obj["v"]
    inner = depth + 1
    if tag == "int":
        return int(_text(raw))
    if tag == "float":
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[raw])
    if tag == "tuple":
        return tuple(revive(x, inner) for x in _items(raw))
    if tag == "set":
        return {revive(x, inner) for x in _items(raw)}
    if tag == "frozenset":
        return frozenset(revive(x, inner) for x in _items(raw))
    if tag == "map":
        return {
            _hashable(revive(k, inner), inner): revive(x, inner) for k, x in map(_pair, _items(raw))
        }
    if tag == "bytes":
        return base64.b64decode(_text(raw), validate=True)
    if tag == "datetime":
        return _dt.datetime.fromisoformat(_text(raw))
    if tag == "date":
        return _dt.date.fromisoformat(_text(raw))
    if tag == "time":
        return _dt.time.fromisoformat(_text(raw))
    if tag == "timedelta":
        days, seconds, micros = _items(raw)
        return _dt.timedelta(days=_int(days), seconds=_int(seconds), microseconds=_int(micros))
    if tag == "decimal":
        return decimal.Decimal(_text(raw))
    if tag == "uuid":
        return uuid.UUID(_text(raw))
    if tag == "path":
        return pathlib.PurePosixPath(_text(raw))
    cls = allowed_type(obj.get("type"))
    if cls is None:
        return TaggedValue(obj)
    if tag == "enum" and issubclass(cls, enum.Enum):
        return cls(revive(raw, inner))
    if tag == "dataclass" and dataclasses.is_dataclass(cls) and type(raw) is dict:
        return _build_dataclass(cls, revive(raw, inner))
    if tag == "pydantic" and callable(getattr(cls, "model_validate", None)):
        return cls.model_validate(revive(raw, inner))  # type: ignore[attr-defined]
    return TaggedValue(obj)


def _text(raw: Any) -> str:
    if type(raw) is not str:
        raise TypeError("expected a string")
    return raw


def _int(raw: Any) -> int:
    if type(raw) is not int:
        raise TypeError("expected an integer")
    return raw


def _items(raw: Any) -> list[Any]:
    if type(raw) is not list:
        raise TypeError("expected a list")
    return raw


def _pair(item: Any) -> tuple[Any, Any]:
    if type(item) is not list or len(item) != 2:
        raise TypeError("expected a [key, value] pair")
    return item[0], item[1]


def _hashable(k: Any, depth: int) -> Any:
    if depth >= _REVIVE_DEPTH:
        raise TypeError("key nested too deep")
    if isinstance(k, list):
        return tuple(_hashable(x, depth + 1) for x in k)
    if isinstance(k, dict):
        return tuple(sorted((key, _hashable(x, depth + 1)) for key, x in k.items()))
    return k


def _build_dataclass(cls: Any, fields: dict[str, Any]) -> Any:
    init = {f.name: fields[f.name] for f in dataclasses.fields(cls) if f.init and f.name in fields}
    obj = cls(**init)
    for f in dataclasses.fields(cls):
        if not f.init and f.name in fields:
            object.__setattr__(obj, f.name, fields[f.name])
    return obj


def _digits(n: int, path: str) -> str:
    """The decimal digits of a big integer, or CanonicalEncodingError past Python's limit on
    integer-to-string conversion (4,300 digits by default)."""
    try:
        return str(n)
    except ValueError as exc:
        raise CanonicalEncodingError(
            f"integer at {path} has more digits than can be converted to text ({exc}); "
            "record it as a string or bytes",
            path=path,
            type_name="int",
        ) from None


# --------------------------------------------------------------------------- re-checking entries

#: Nesting that :func:`json_canonical` accepts (``orjson`` refuses to write deeper than 255).
LITERAL_DEPTH: Final = 250


def _literal(v: Any, path: str, depth: int) -> Any:
    """An already-parsed JSON value prepared for its RFC 8785 bytes, taken literally: floats
    formatted the ECMAScript way, integers past 2^53 read as the doubles JCS sees, objects
    with keys outside the Basic Multilingual Plane sorted by UTF-16 code units."""
    tv = type(v)
    if tv is str or tv is bool or v is None:
        return v
    if tv is int:
        return v if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT else _parsed_number(v)
    if tv is float:
        return _float(v)
    if depth >= LITERAL_DEPTH:
        raise CanonicalEncodingError(
            f"value at {path} is nested more than {LITERAL_DEPTH} levels deep",
            path=path,
            type_name=tv.__name__,
        )
    if tv is list:
        return [_literal(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
    if tv is dict:
        out = {k: _literal(x, f"{path}[{k!r}]", depth + 1) for k, x in v.items()}
        if any(not k.isascii() and max(k) > "\uffff" for k in out):
            return orjson.Fragment(orjson.dumps(_utf16_sorted(out)))
        return out
    raise CanonicalEncodingError(
        f"value at {path} of type {tv.__name__} is not JSON", path=path, type_name=tv.__name__
    )


def unencodable(prepared: Any, exc: Exception) -> CanonicalEncodingError:
    """The CanonicalEncodingError for a prepared value ``orjson`` refused to write, naming
    where the offending string (a lone surrogate: not valid Unicode) or nesting is."""
    where = _bad_text(prepared, "$", 0)
    if where is not None:
        return CanonicalEncodingError(
            f"string at {where} is not valid Unicode (it holds a lone surrogate) and cannot be "
            "recorded; decode bytes with errors='replace' or 'backslashreplace' first",
            path=where,
            type_name="str",
        )
    return CanonicalEncodingError(f"value cannot be canonically encoded: {exc}", type_name="")


def _bad_text(v: Any, path: str, depth: int) -> str | None:
    """Path of the first string (or key) holding a lone surrogate in a prepared value."""
    tv = type(v)
    if tv is str:
        return None if _valid_unicode(v) else path
    if depth > LITERAL_DEPTH:
        return None
    if tv is dict:
        for k, x in v.items():
            if type(k) is str and not _valid_unicode(k):
                return f"{path}<key {k!r}>"
            found = _bad_text(x, f"{path}[{k!r}]", depth + 1)
            if found is not None:
                return found
    elif tv is list:
        for i, x in enumerate(v):
            found = _bad_text(x, f"{path}[{i}]", depth + 1)
            if found is not None:
                return found
    return None


def _valid_unicode(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
