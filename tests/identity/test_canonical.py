"""Canonical encoding: RFC 8785 (JCS) bytes, proven against the ``rfc8785`` package.

Also pins the documented encoding of every non-JSON value (the table in the
docstring of ``codon_sdk.identity._canonical``) and the errors for the rest.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codon_sdk import CanonicalEncodingError, canonical_bytes
from codon_sdk.identity._canonical import decode

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"  # copy of ../shared/testdata
JCS = json.loads((TESTDATA / "jcs.json").read_text(encoding="utf-8"))
SAFE_INT = 2**53 - 1

# ----------------------------------------------------------------- JCS known answers


@pytest.mark.parametrize("case", JCS["objects"], ids=lambda c: c["jcs"][:30])
def test_jcs_object_vectors(case: dict[str, str]) -> None:
    """Every object vector of testdata/jcs.json encodes to its JCS bytes (and rfc8785 agrees)."""
    value = ast.literal_eval(case["input_python_repr"])
    expected = case["jcs"].encode("utf-8")
    assert canonical_bytes(value) == expected
    assert rfc8785.dumps(value) == expected


@pytest.mark.parametrize("case", JCS["floats"], ids=lambda c: c["ieee754_hex"])
def test_jcs_float_vectors(case: dict[str, str]) -> None:
    """Every float vector (IEEE 754 bits) encodes to its JCS number text."""
    (value,) = struct.unpack(">d", bytes.fromhex(case["ieee754_hex"]))
    assert canonical_bytes(value) == case["jcs"].encode("ascii")
    assert canonical_bytes([value]) == b"[" + case["jcs"].encode("ascii") + b"]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, b"1"),
        (-0.0, b"0"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (1e-7, b"1e-7"),
        (0.000001, b"0.000001"),
        (123456789.125, b"123456789.125"),
        (-1.5e-10, b"-1.5e-10"),
        (5e-324, b"5e-324"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
        (2.0**60, b"1152921504606847000"),
    ],
)
def test_float_formatting_follows_ecmascript(value: float, expected: bytes) -> None:
    """Floats are written the ECMAScript way JCS requires (where Python's repr differs)."""
    assert canonical_bytes(value) == expected
    assert rfc8785.dumps(value) == expected


def test_keys_outside_the_bmp_sort_by_utf16_code_units() -> None:
    """Object keys sort by UTF-16 code units: U+1F600 (D83D DE00) sorts before U+FFFF."""
    value = {"\uffff": 1, "\U0001f600": 2, "\ue000": 3, "a": 4}
    expected = rfc8785.dumps(value)
    assert canonical_bytes(value) == expected
    assert canonical_bytes({"outer": [value]}) == rfc8785.dumps({"outer": [value]})


def test_control_characters_are_escaped_as_jcs_requires() -> None:
    """Control characters use the short escapes or lower-case \\u00xx; DEL and U+2028 stay raw."""
    value = "".join(chr(c) for c in range(0x20)) + '\x7f\u2028"\\/'
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert b"\\u001f" in canonical_bytes(value)
    assert b"\\n" in canonical_bytes(value)


# ----------------------------------------------------------------- property tests

_SPECIAL = [
    "\x00",
    "\x08",
    "\x1f",
    "\x7f",
    "\u2028",
    "\ue000",
    "\uffff",
    "\U00010000",
    "\U0001f600",
    "\U0010ffff",
    '"',
    "\\",
    "/",
    "é",
    "€",
]
_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(max_codepoint=0x1F),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8"),
    st.sampled_from(_SPECIAL),
)
_text = st.text(_chars, max_size=8)
# An object with a "$codon" key is documented to be escaped as a tagged map, so it is
# the one JSON shape where our bytes differ from JCS on purpose.
_keys = _text.filter(lambda key: key != "$codon")
_finite_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-SAFE_INT, max_value=SAFE_INT),
    _finite_floats,
    _text,
)
json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(_keys, children, max_size=5),
    ),
    max_leaves=30,
)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(json_values)
def test_canonical_bytes_equal_rfc8785_on_generated_json(value: Any) -> None:
    """On 10,000 generated JSON values (non-BMP keys, controls, nesting) we equal rfc8785."""
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(max_examples=10_000, deadline=None, database=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_canonical_floats_equal_rfc8785_over_all_bit_patterns(bits: int) -> None:
    """Every finite double (drawn by bit pattern: subnormals, huge, tiny) matches rfc8785."""
    (value,) = struct.unpack(">d", bits.to_bytes(8, "big"))
    if value != value or value in (float("inf"), float("-inf")):
        return
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes({"x": [value]}) == rfc8785.dumps({"x": [value]})


# ----------------------------------------------------------------- documented encodings


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, int]


class MyDict(dict):  # type: ignore[type-arg]
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
_HERE = f"{__name__}"

DOCUMENTED = [
    (2**53, b'{"$codon":"int","v":"9007199254740992"}'),
    (-(2**60), b'{"$codon":"int","v":"-1152921504606846976"}'),
    (SAFE_INT, b"9007199254740991"),
    (-SAFE_INT, b"-9007199254740991"),
    (float("nan"), b'{"$codon":"float","v":"NaN"}'),
    (float("inf"), b'{"$codon":"float","v":"Infinity"}'),
    (float("-inf"), b'{"$codon":"float","v":"-Infinity"}'),
    ((1, "a"), b'{"$codon":"tuple","v":[1,"a"]}'),
    ({3, 1, 2}, b'{"$codon":"set","v":[1,2,3]}'),
    (frozenset({"b", "a"}), b'{"$codon":"frozenset","v":["a","b"]}'),
    (b"\x00\xff", b'{"$codon":"bytes","v":"AP8="}'),
    (bytearray(b"\x00\xff"), b'{"$codon":"bytes","v":"AP8="}'),
    (
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        b'{"$codon":"datetime","v":"2024-01-02T03:04:05+00:00"}',
    ),
    (dt.date(2024, 1, 2), b'{"$codon":"date","v":"2024-01-02"}'),
    (dt.time(3, 4, 5), b'{"$codon":"time","v":"03:04:05"}'),
    (dt.timedelta(days=1, seconds=2, microseconds=3), b'{"$codon":"timedelta","v":[1,2,3]}'),
    (decimal.Decimal("1.10"), b'{"$codon":"decimal","v":"1.10"}'),
    (_UUID, b'{"$codon":"uuid","v":"12345678-1234-5678-1234-567812345678"}'),
    (pathlib.PurePosixPath("a/b"), b'{"$codon":"path","v":"a/b"}'),
    (pathlib.PureWindowsPath("a\\b"), b'{"$codon":"path","v":"a/b"}'),
    (Color.RED, b'{"$codon":"enum","type":"' + _HERE.encode() + b':Color","v":"red"}'),
    (
        Point(1, (2, 3)),
        b'{"$codon":"dataclass","type":"'
        + _HERE.encode()
        + b':Point","v":{"x":1,"y":{"$codon":"tuple","v":[2,3]}}}',
    ),
    ({1: "a", 2: "b"}, b'{"$codon":"map","v":[[1,"a"],[2,"b"]]}'),
    ({"$codon": "x"}, b'{"$codon":"map","v":[["$codon","x"]]}'),
    (MyDict(b=1, a=2), b'{"a":2,"b":1}'),
    (MyList([1, 2]), b"[1,2]"),
    (MyStr("s"), b'"s"'),
    (MyInt(7), b"7"),
    (True, b"true"),
    (None, b"null"),
]


@pytest.mark.parametrize(("value", "expected"), DOCUMENTED, ids=lambda v: type(v).__name__)
def test_documented_encoding_of_non_json_values(value: Any, expected: bytes) -> None:
    """Each non-JSON value gets the one tagged encoding the module docstring documents."""
    assert canonical_bytes(value) == expected


def test_str_subclass_keys_encode_as_plain_keys() -> None:
    """A dict keyed by a str subclass is a plain JSON object (str subclasses encode as str)."""
    assert canonical_bytes({MyStr("b"): 1, "a": 2}) == b'{"a":2,"b":1}'


def test_pydantic_model_encoding() -> None:
    """A pydantic model is tagged with its type and its model_dump."""
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        name: str
        qty: int

    expected = (
        b'{"$codon":"pydantic","type":"'
        + f"{Item.__module__}:{Item.__qualname__}".encode()
        + b'","v":{"name":"n","qty":2}}'
    )
    assert canonical_bytes(Item(name="n", qty=2)) == expected


def test_set_encoding_does_not_depend_on_insertion_order() -> None:
    """Sets with the same elements encode identically whatever order they were built in."""
    words = [f"w{i}" for i in range(50)]
    forward = set(words)
    backward: set[str] = set()
    for word in reversed(words):
        backward.add(word)
    assert canonical_bytes(forward) == canonical_bytes(backward)
    assert canonical_bytes(frozenset(words)) == canonical_bytes(frozenset(reversed(words)))


def test_shared_references_are_not_cycles() -> None:
    """The same list referenced twice (no cycle) encodes normally."""
    shared = [1, 2]
    assert canonical_bytes({"a": shared, "b": shared}) == b'{"a":[1,2],"b":[1,2]}'


ROUND_TRIP = [
    2**70,
    float("inf"),
    (1, (2, "x")),
    {1, 2},
    frozenset({"a"}),
    b"bytes",
    dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc),
    dt.date(2020, 2, 29),
    dt.time(23, 59),
    dt.timedelta(hours=5),
    decimal.Decimal("3.14159"),
    _UUID,
    Color.RED,
    Point(1, (2, 3)),
    {1: "one", (2, 3): "pair"},
    {"$codon": "literal"},
    {"nested": [{"when": dt.date(2021, 1, 1)}]},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda v: type(v).__name__)
def test_documented_encodings_decode_back(value: Any) -> None:
    """``decode`` revives every tagged encoding into an equal Python value."""
    assert decode(canonical_bytes(value)) == value


def test_nan_decodes_back_to_nan() -> None:
    """NaN survives a round trip (as NaN)."""
    revived = decode(canonical_bytes(float("nan")))
    assert revived != revived


# ----------------------------------------------------------------- errors


class Opaque:
    pass


def test_unknown_type_is_a_clear_error_with_path_and_type() -> None:
    """A value with no encoding raises CanonicalEncodingError naming its path and type."""
    with pytest.raises(CanonicalEncodingError) as info:
        canonical_bytes({"items": [1, Opaque()]})
    err = info.value
    assert isinstance(err, TypeError)
    assert err.path == "$['items'][1]"
    assert "Opaque" in err.type_name
    assert "Opaque" in str(err)
    assert "$['items'][1]" in str(err)


@pytest.mark.parametrize("value", [object(), lambda: None, iter([1]), 1 + 2j])
def test_no_silent_repr_for_unencodable_values(value: Any) -> None:
    """Objects, functions, iterators and complex numbers are refused, never repr'd."""
    with pytest.raises(CanonicalEncodingError):
        canonical_bytes(value)


def test_list_cycle_is_a_clear_error() -> None:
    """A list containing itself raises CanonicalEncodingError mentioning the cycle."""
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(CanonicalEncodingError, match="cycle"):
        canonical_bytes(loop)


def test_dict_cycle_is_a_clear_error() -> None:
    """A dict reachable from itself raises CanonicalEncodingError naming where."""
    outer: dict[str, Any] = {"a": {}}
    outer["a"]["back"] = outer
    with pytest.raises(CanonicalEncodingError) as info:
        canonical_bytes(outer)
    assert info.value.path == "$['a']['back']"


def test_lone_surrogate_is_a_clear_error() -> None:
    """A string with a lone surrogate (not valid Unicode) raises CanonicalEncodingError."""
    with pytest.raises(CanonicalEncodingError):
        canonical_bytes({"k": "\ud800"})


def test_excessive_nesting_is_a_clear_error_not_a_recursion_error() -> None:
    """Nesting far deeper than any real payload raises CanonicalEncodingError, not a crash."""
    value: Any = 0
    for _ in range(10_000):
        value = [value]
    with pytest.raises(CanonicalEncodingError, match="deep"):
        canonical_bytes(value)


def test_moderate_nesting_is_fine() -> None:
    """A 100-level nested structure encodes and matches rfc8785."""
    value: Any = "leaf"
    for i in range(100):
        value = {"k": [value, i]}
    assert canonical_bytes(value) == rfc8785.dumps(value)
