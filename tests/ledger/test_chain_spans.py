"""The chain walk's span check gives the same answer as checking every entry on its own.

``walk_chain`` checks the ordinary entries of a run 256 at a time and leaves the
rest (the first and last entry, anything unusual, every fault) to ``check_entry``;
``walk_chain(..., spans=False)`` checks every entry with ``check_entry``, the
reference. Here both walk a real run of several spans, untouched and tampered in
every way the chain, shape and canonical rules forbid, at positions inside spans
and on their edges: everything the walk reports (its roots, the fault and its words,
the end, the pauses, the start metadata) must be equal. Forgeries are encoded
with the SDK's JCS encoder, and also re-chained (every later ``prev`` recomputed)
so that only the forged field itself is wrong and the span check must see it
without the help of a broken link.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from codon_sdk import CodonWorkload
from codon_sdk.identity import json_canonical as _jcs
from codon_sdk.ledger._chain import ChainWalk, check_chain, walk_chain
from codon_sdk.ledger._verify import verify_entries

RUN_ID = "span-run-1"  # a dash, like most run ids: the span check counts them
STEPS = 200
TEXTS = ("plain", "héllo", "emoji \U0001f600", "code-review e-mail 1e-6 x+y", "3.25")


@functools.lru_cache(maxsize=2)
def _entries(run: str = "varied") -> tuple[bytes, ...]:
    """A finished run of about 800 events: several spans, custom events, state changes.

    ``varied``: floats, whole doubles past 2^53, text outside ASCII and outside the BMP,
    dashes, dots and pluses in text (the span check then asks is_canonical entry by
    entry); ``plain``: none of that past the first entry, so the span check decides the
    canonical form of whole spans at once and a forged float must stand out on its own.
    """
    varied = run == "varied"
    texts = TEXTS if varied else ("plain",)

    def step(message: Any, *, runtime: Any, context: Any) -> Any:
        i = message["i"]
        runtime.state["last"] = i
        if i % 50 == 7:
            runtime.record_event("noted", metadata={"i": i, "ratio": 0.5 if varied else 1})
        if i + 1 < STEPS:
            runtime.emit("step", {"i": i + 1, "text": texts[i % len(texts)]})
        if i == 120 and varied:
            return {"i": i, "big": 2.0**60, "score": 0.25}
        return {"i": i}

    workload = CodonWorkload(name="spans", version="1", org_namespace="tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute({"i": 0}, deployment_id="spans", run_id=RUN_ID, max_steps=STEPS + 1)
    assert report.status == "completed"
    return tuple(report.entries)


def _leaf(entry: bytes) -> str:
    return hashlib.sha256(b"\x00" + entry).hexdigest()


def _same(entries: list[Any], run_id: str | None = RUN_ID) -> ChainWalk:
    """Walk both ways, assert the answers are equal, return the span walk."""
    fast = walk_chain(entries, run_id=run_id)
    full = walk_chain(entries, run_id=run_id, spans=False)
    names = ("count", "head", "roots", "prior", "ended", "bad_seq", "problem", "started")
    for name in (*names, "pauses", "end_after_fault"):  # the root commits to every leaf
        assert getattr(fast, name) == getattr(full, name), name
    return fast


def _rechain(
    entries: list[bytes], position: int, forge: Callable[[dict[str, Any]], Any]
) -> list[bytes]:
    """The run with entry ``position`` replaced by ``forge(its content)`` (an object, encoded
    canonically, or bytes as they are) and every later ``prev`` recomputed."""
    out: list[bytes] = []
    for seq, entry in enumerate(entries):
        obj = json.loads(entry)
        if seq:
            obj["prev"] = _leaf(out[-1])
        if seq == position:
            forged = forge(obj)
            out.append(forged if isinstance(forged, bytes) else _jcs(forged))
        else:
            out.append(_jcs(obj))
    return out


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def forge(obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, **changes}

    return forge


def _without(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def forge(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k != name}

    return forge


def _raw(encode: Callable[[dict[str, Any]], bytes]) -> Callable[[dict[str, Any]], bytes]:
    return encode


def _orjson_payload(value: Any) -> Callable[[dict[str, Any]], bytes]:
    """The entry as orjson writes it with ``value`` as payload: not JCS for these values."""
    return _raw(lambda obj: orjson.dumps({**obj, "payload": value}, option=orjson.OPT_SORT_KEYS))


def _duplicate_key(obj: dict[str, Any]) -> bytes:
    return _jcs(obj).replace(b'"node":', b'"node":"twice","node":', 1)


# (name, forge): each is applied at several positions, once re-chained and once as is
FORGERIES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("seq_plus_one", lambda obj: {**obj, "seq": obj["seq"] + 1}),
    ("seq_true", _with(seq=True)),
    ("seq_string", lambda obj: {**obj, "seq": str(obj["seq"])}),
    (
        "seq_float",
        _raw(lambda obj: _jcs(obj).replace(b'"seq":%d' % obj["seq"], b'"seq":%d.0' % obj["seq"])),
    ),
    ("ts_string", _with(ts="yesterday")),
    ("ts_float", _with(ts=1.5)),
    ("ts_bool", _with(ts=True)),
    ("ts_null", _with(ts=None)),
    (
        "ts_past_2_53",
        _raw(lambda obj: _jcs(obj).replace(b'"ts":%d' % obj["ts"], b'"ts":9007199254740993')),
    ),
    ("v_2", _with(v=2)),
    ("v_true", _with(v=True)),
    ("v_string", _with(v="1")),
    ("v_float", _raw(lambda obj: _jcs(obj).replace(b'"v":1}', b'"v":1.0}'))),
    ("type_int", _with(type=7)),
    ("type_run_started", _with(type="run_started")),
    ("type_run_finished", _with(type="run_finished")),
    (
        "type_run_finished_counted",
        lambda obj: {**obj, "type": "run_finished", "metadata": {"events": obj["seq"]}},
    ),
    ("type_custom", _with(type="my.custom")),
    ("type_run_interrupted", _with(type="run_interrupted")),
    ("run_other", _with(run_id="other-run")),
    ("run_int", _with(run_id=5)),
    ("prev_zeros", _with(prev="0" * 64)),
    ("prev_missing", _without("prev")),
    ("prev_int", _with(prev=5)),
    ("prev_short", lambda obj: {**obj, "prev": obj["prev"][:63]}),
    ("prev_upper", lambda obj: {**obj, "prev": obj["prev"].upper()}),
    ("prev_null", _with(prev=None)),
    ("node_int", _with(node=5)),
    ("node_null", _with(node=None)),
    ("node_list", _with(node=["a"])),
    ("target_int", _with(target=5)),
    ("token_null", _with(token_id=None)),
    ("parent_int", _with(parent_token_id=1)),
    ("actor_int", _with(actor=3)),
    ("actor_string", _with(actor="ops@example.com")),
    ("trace_list", _with(trace_id=[])),
    ("span_dict", _with(span_id={})),
    ("metadata_null", _with(metadata=None)),
    ("metadata_list", _with(metadata=[1])),
    ("metadata_string", _with(metadata="m")),
    ("metadata_float", _with(metadata={"ratio": 1.5})),
    ("unknown_field", _with(extra=1)),
    ("missing_type", _without("type")),
    ("missing_run_id", _without("run_id")),
    ("missing_ts", _without("ts")),
    ("missing_v", _without("v")),
    ("missing_seq", _without("seq")),
    ("payload_float", _with(payload=0.5)),
    ("payload_whole_double", _with(payload=2.0**60)),
    ("payload_non_bmp", _with(payload="\U0001f600 é")),
    ("payload_negative", _with(payload=-5)),
    ("payload_dashes", _with(payload="e-1 e+1 1.0")),
    ("orjson_whole_float", _orjson_payload(1.0)),
    ("orjson_small_float", _orjson_payload(1e-6)),
    ("orjson_large_float", _orjson_payload(1e16)),
    ("orjson_negative_exponent", _orjson_payload(-2e-6)),
    # orjson sorts keys by code point, JCS by UTF-16 unit: these two differ
    ("orjson_key_order", _orjson_payload({"\U0001f600": 1, "\uff61": 2})),
    ("jcs_key_order", _with(payload={"\U0001f600": 1, "\uff61": 2})),
    (
        "int_no_double_holds",
        _raw(
            lambda obj: _jcs({**obj, "payload": 1}).replace(
                b'"payload":1', b'"payload":9007199254740993'
            )
        ),
    ),
    ("spaces", _raw(lambda obj: json.dumps(obj, sort_keys=True).encode())),
    (
        "unsorted",
        _raw(
            lambda obj: json.dumps(
                dict(reversed(list(obj.items()))), separators=(",", ":")
            ).encode()
        ),
    ),
    ("escaped_ascii", _raw(lambda obj: _jcs(obj).replace(b'"type"', b'"\\u0074ype"'))),
    (
        "escaped_non_ascii",
        _raw(
            lambda obj: json.dumps(
                {**obj, "payload": "é"}, sort_keys=True, separators=(",", ":")
            ).encode()
        ),
    ),
    ("duplicate_key", _raw(_duplicate_key)),
    ("trailing_newline", _raw(lambda obj: _jcs(obj) + b"\n")),
    ("leading_space", _raw(lambda obj: b" " + _jcs(obj))),
    ("empty", _raw(lambda obj: b"")),
    ("null", _raw(lambda obj: b"null")),
    ("array", _raw(lambda obj: b"[1,2]")),
    ("empty_object", _raw(lambda obj: b"{}")),
    ("not_utf8", _raw(lambda obj: b'{"a":"\xff"}')),
    ("not_json", _raw(lambda obj: b"{not json")),
    ("nan", _raw(lambda obj: b'{"a":NaN}')),
    ("deep", _raw(lambda obj: b"[" * 2000 + b"]" * 2000)),
    # deeper than the SDK writes, shallow enough for orjson: the SDK's encoder refuses it
    (
        "deep_float",
        _raw(
            lambda obj: _jcs({**obj, "payload": 0}).replace(
                b'"payload":0', b'"payload":' + b"[" * 252 + b"0.5" + b"]" * 252
            )
        ),
    ),
    (
        "deep_payload",
        _raw(
            lambda obj: _jcs({**obj, "payload": 0}).replace(
                b'"payload":0', b'"payload":' + b"[" * 300 + b"0" + b"]" * 300
            )
        ),
    ),
]

N = len(_entries())
# span edges (spans start at seq 1 and hold 256 entries), a middle, the last before the end
POSITIONS = (1, 2, 256, 257, 300, N - 2)


def test_the_run_spans_several_spans() -> None:
    types = [json.loads(e)["type"] for e in _entries()]
    assert N > 700
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert "noted" in types
    assert "state_updated" in types
    plain = b"".join(_entries("plain")[1:])
    assert len(_entries("plain")) == N
    assert plain.isascii()
    for mark in (b".", b"+", b"e-"):
        assert mark not in plain


def test_an_untouched_run_is_checked_in_spans_with_the_same_answer() -> None:
    """Only the first and the last entry are checked one by one (without spans: all)."""
    entries = list(_entries())
    walk = _same(entries)
    assert walk.problem is None
    assert walk.ended
    assert walk.alone == 2
    assert walk_chain(entries, spans=False).alone == N
    assert walk_chain(entries).alone == 2  # the run id read from the first entry
    assert check_chain(entries, run_id=RUN_ID, require_end=True).ok


def test_a_prefix_and_a_suffix_give_the_same_answer() -> None:
    entries = list(_entries())
    for cut in (1, 2, 256, 257, 258, 600):
        _same(entries[:cut])
        _same(entries[cut:])


@pytest.mark.parametrize("run", ["varied", "plain"])
@pytest.mark.parametrize("name", [name for name, _ in FORGERIES])
def test_a_forged_entry_gets_the_same_verdict(name: str, run: str) -> None:
    """Each forgery, re-chained or not, at each position: the same walk both ways."""
    forge = dict(FORGERIES)[name]
    entries = list(_entries(run))
    for position in POSITIONS:
        rechained = _same(_rechain(entries, position, forge))
        forged = list(entries)
        forged[position] = _rechain(entries, position, forge)[position]
        _same(forged)
        if rechained.problem is not None:  # the forged entry itself is named, or the one before
            assert rechained.bad_seq in (position - 1, position, position + 1), rechained.problem


@pytest.mark.parametrize("run", ["varied", "plain"])
def test_a_forgery_only_the_entry_can_show_is_named_inside_a_span(run: str) -> None:
    """Re-chained forgeries whose every link holds: the fault is the forged entry's own,
    found in the middle of a span, in the words check_entry uses."""
    entries = list(_entries(run))
    for forge, words in (
        (_with(node=5), "field 'node' must be a string"),
        (_with(metadata=None), "metadata must be an object"),
        (_with(seq=True), "wrong types"),
        (_orjson_payload(1.0), "canonical"),
        (_orjson_payload(1e-6), "canonical"),
        (_orjson_payload(1e16), "canonical"),
        (_orjson_payload(-2e-6), "canonical"),
        (_orjson_payload({"\U0001f600": 1, "\uff61": 2}), "canonical"),
        (_raw(_duplicate_key), "twice"),
        (_with(type="run_started"), "may only be the first event"),
        (_with(run_id="other-run"), "belongs to run 'other-run'"),
    ):
        walk = _same(_rechain(entries, 300, forge))
        assert walk.bad_seq == 300, walk.problem
        assert words in str(walk.problem)


def test_forgeries_that_break_no_rule_pass_both_ways() -> None:
    """Re-chained entries that are still sound (a custom type, an actor, a float, a pause)
    pass both ways; a pause in a span is recorded where it stands."""
    entries = list(_entries())
    for forge in (
        _with(type="my.custom"),
        _with(actor="ops@example.com"),
        _with(payload=0.5),
        _with(payload=2.0**60),
        _with(payload="\U0001f600"),
        _with(metadata={"ratio": 1.5}),
        _with(payload={"\U0001f600": 1, "\uff61": 2}),
    ):
        walk = _same(_rechain(entries, 300, forge))
        assert walk.problem is None
        assert walk.ended
    paused = _same(_rechain(entries, 300, _with(type="run_interrupted")))
    assert paused.problem is None
    assert paused.pauses == [300]


def test_a_prev_split_across_two_entries_is_caught() -> None:
    """Entry 300 keeps 63 characters of its prev and entry 301 carries the 64th before its
    own: the prevs joined are the leaves joined, but neither prev is the leaf before it."""
    entries = list(_entries("plain"))
    out = entries[:300]
    for seq in range(300, N):
        obj = json.loads(entries[seq])
        obj["prev"] = _leaf(out[-1])
        if seq == 300:
            carried = obj["prev"][-1]
            obj["prev"] = obj["prev"][:-1]
        elif seq == 301:
            obj["prev"] = carried + obj["prev"]
        out.append(_jcs(obj))
    walk = _same(out)
    assert walk.bad_seq == 300
    assert "prev hash" in str(walk.problem)


@pytest.mark.parametrize("position", POSITIONS)
def test_structural_tampering_gets_the_same_verdict(position: int) -> None:
    entries = list(_entries())
    foreign = _jcs({**json.loads(entries[position]), "run_id": "another-run"})
    cases = [
        entries[:position] + entries[position + 1 :],  # dropped
        entries[: position + 1] + entries[position:],  # duplicated
        [*entries[:position], entries[position + 1], entries[position], *entries[position + 2 :]],
        entries[:position],  # truncated
        [*entries[:position], foreign, *entries[position + 1 :]],
        [*entries, entries[position]],  # appended after the end
    ]
    for case in cases:
        walk = _same(case)
        assert walk.problem is not None or case == entries[:position]


@pytest.mark.parametrize(
    "stored", ["a string", None, 5, 1.5, ["list"]], ids=["str", "none", "int", "float", "list"]
)
def test_entries_that_are_not_bytes_get_the_same_verdict(stored: Any) -> None:
    entries: list[Any] = list(_entries())
    for position in (1, 300):
        hostile = list(entries)
        hostile[position] = stored
        walk = _same(hostile)
        assert walk.bad_seq == position


def test_bytes_handed_out_as_buffers_are_checked_as_bytes() -> None:
    """A driver may hand out bytearray or memoryview: the same verdict, and still sound."""
    entries: list[Any] = list(_entries())
    entries[300] = bytearray(entries[300])
    entries[301] = memoryview(entries[301])
    walk = _same(entries)
    assert walk.problem is None
    assert walk.ended


def test_verification_reports_are_the_same_as_without_spans() -> None:
    """verify_entries (what ``codon verify`` and ``verify_run`` call) over a forged run."""
    entries = list(_entries())
    for forged in (
        entries,
        _rechain(entries, 300, _with(node=5)),
        _rechain(entries, 300, _orjson_payload(1.0)),
        entries[:300] + entries[301:],
    ):
        report = verify_entries(RUN_ID, forged, index_says_ended=True)
        walk = walk_chain(forged, run_id=RUN_ID, spans=False)
        chain = [f for f in report.findings if f.code == "chain"]
        if walk.problem is None:
            assert report.status == "unanchored"
            assert not chain
        else:
            assert report.status == "tampered"
            assert [(f.seq, f.message) for f in chain] == [(walk.bad_seq, walk.problem)]
