"""``prepare``'s flat-dict fast path gives exactly what the full walk gives.

Small dicts of ASCII keys and plain scalars (state updates, task metadata) skip
the walk's set-up; with or without a redaction hook, the result must be the
walk's, the very same object when nothing changed, and a copy otherwise.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from codon_sdk.identity._canonical import TAG, _utf16_sorted, _Walk, prepare


def mask(text: str) -> str:
    """A redaction hook that changes strings containing SECRET and leaves others alone."""
    return "[masked]" if "SECRET" in text else text


def walked(value: Any, redact: Any) -> Any:
    """What ``prepare`` returned before the fast path: the walk, then its UTF-16 key sort."""
    walk = _Walk(redact=redact)
    out = walk.prep(value, "$", 0)
    return orjson.Fragment(orjson.dumps(_utf16_sorted(out))) if walk.utf16 else out


def encoded(prepared: Any) -> bytes:
    return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(max_size=6)
    | st.sampled_from(["SECRET-1", "task", "a SECRET", "Ω"])
    | st.floats(allow_nan=False, allow_infinity=False)
)
KEYS = st.text(max_size=5) | st.sampled_from(["SECRET", "i", "messages", TAG, "é", "😀"])


@given(st.dictionaries(KEYS, SCALARS, max_size=10), st.sampled_from([None, mask]))
def test_flat_dicts_prepare_as_the_walk_does(value: dict[str, Any], redact: Any) -> None:
    fast, slow = prepare(value, redact), walked(value, redact)
    assert encoded(fast) == encoded(slow)
    assert type(fast) is type(slow)
    assert (fast is value) == (slow is value)


def test_an_unchanged_dict_comes_back_as_itself_and_a_masked_one_as_a_copy() -> None:
    plain = {"i": 1, "task": "0/1/loop", "ok": True, "none": None}
    assert prepare(plain, mask) is plain
    secret = {"a": 1, "key": "SECRET-123", "z": "plain"}
    masked = prepare(secret, mask)
    assert masked == {"a": 1, "key": "[masked]", "z": "plain"}
    assert secret["key"] == "SECRET-123"  # the caller's dict is never changed
    assert list(prepare({"a": 1, "SECRET": 2}, mask)) == ["a", "[masked]"]


def test_values_the_fast_path_leaves_to_the_walk_still_encode() -> None:
    assert prepare({"big": 2**60}) == {"big": {TAG: "int", "v": str(2**60)}}
    assert prepare({TAG: 1}) == walked({TAG: 1}, None)
    assert prepare({"nested": {"i": 1}}) == {"nested": {"i": 1}}
