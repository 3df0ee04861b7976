"""Every write path records canonical, escaped entries, and every bad value is a clean failure.

Untrusted data copied into state (an LLM answer, a webhook body) must never become a live
tagged object in the ledger, every entry must be exactly RFC 8785 (the reference encoder
agrees), and a value the encoding cannot take fails the run cleanly: a
``CanonicalEncodingError`` naming where, the node's own exception kept, ``node_failed``
and ``run_finished`` recorded, and the ledger still verifies.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.hostile._watch import forbidden, watched

from codon_sdk import (
    CanonicalEncodingError,
    CodonWorkload,
    WorkloadRuntimeError,
    check_chain,
)
from codon_sdk.ledger._events import parse_entry
from codon_sdk.redaction import Redactor

FORGED = {"$codon": "enum", "type": "subprocess:Popen", "v": "touch /tmp/pwned"}


def _workload(node: Any, *, redact: bool = False) -> CodonWorkload:
    wl = CodonWorkload(
        name="hostile",
        version="1",
        org_namespace="tests",
        redactor=None if redact else Redactor.disabled(),
    )
    wl.add_node(node, "n", "worker")
    return wl


@pytest.mark.parametrize("redact", [False, True], ids=["no-redactor", "default-redactor"])
def test_untrusted_json_copied_into_state_is_recorded_escaped(redact: bool, tmp_path: Any) -> None:
    """A node copying a dict shaped like a tagged object into ``runtime.state`` key by key
    (keys ``$codon``, ``type``, ``v`` with plain string values: the plain-diff fast path)
    writes it escaped, and a resume reads the same plain values back, running nothing."""
    store = f"sqlite:///{tmp_path / 'l.db'}"

    def copy(message: Any, *, runtime: Any, context: Any) -> Any:
        for key, value in FORGED.items():
            runtime.state[key] = value
        runtime.emit("wait", None)

    def wait(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("look")

    wl = CodonWorkload(
        name="hostile",
        version="1",
        org_namespace="tests",
        redactor=None if redact else Redactor.disabled(),
    )
    wl.add_node(copy, "copy", "worker")
    wl.add_node(wait, "wait", "worker")
    wl.add_edge("copy", "wait")
    report = wl.execute("x", deployment_id="dev", store=store)
    assert report.status == "interrupted"
    assert any(ev.type == "state_updated" for ev in report.events())
    for entry in report.entries:
        for obj in _objects(orjson.loads(entry)):
            assert not (obj.get("$codon") == "enum" and obj.get("type") == "subprocess:Popen")
    with watched() as events:
        resumed = wl.resume(report.run_id, store=store, input="ok")
    assert forbidden(events) == []
    assert resumed.status == "completed"
    assert resumed.state == FORGED


def _objects(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


_KEYS = st.text(max_size=6)
_SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=8,
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    state=st.dictionaries(_KEYS, _VALUES, max_size=5),
    result=_VALUES,
    payload=_VALUES,
    meta=st.dictionaries(_KEYS, _VALUES, max_size=3),
    redact=st.booleans(),
)
def test_every_entry_is_exactly_what_the_reference_encoder_writes(
    state: dict[str, Any], result: Any, payload: Any, meta: dict[str, Any], redact: bool
) -> None:
    """Arbitrary Unicode keys and values (characters from U+E000 up beside ones outside the
    BMP included) through state, results, emitted payloads and custom events: every entry,
    fast paths included, equals ``rfc8785.dumps`` of its own parse, and the chain checks."""

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state.update(state)
        runtime.record_event("seen", metadata=meta)
        runtime.emit("second", payload)
        return result

    def second(message: Any, *, runtime: Any, context: Any) -> Any:
        for key in list(state)[:2]:
            del runtime.state[key]
        return message

    wl = CodonWorkload(
        name="unicode",
        version="1",
        org_namespace="tests",
        redactor=None if redact else Redactor.disabled(),
    )
    wl.add_node(first, "first", "worker")
    wl.add_node(second, "second", "worker")
    wl.add_edge("first", "second")
    report = wl.execute(payload, deployment_id="dev")
    for entry in report.entries:
        assert entry == _reference(entry)
    assert report.check_chain().ok


def _reference(entry: bytes) -> bytes:
    """What the reference encoder writes for an entry's parse (JCS reads numbers as doubles:
    an integer past 2^53 in an entry is a whole double)."""
    return rfc8785.dumps(json.loads(entry, parse_int=_jcs_number))


def _jcs_number(text: str) -> int | float:
    value = int(text)
    return value if abs(value) <= 2**53 - 1 else float(value)


def test_keys_mixing_private_use_and_astral_characters_keep_the_run_verifiable() -> None:
    """The case that once made a run's own ledger read as tampered: state keys with
    characters from U+E000..U+FFFF beside characters outside the BMP."""

    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["\ue000"] = 1
        runtime.state["\U0001f600"] = 2
        runtime.state["a"] = 3
        return None

    report = _workload(node).execute("x", deployment_id="dev")
    assert report.check_chain().ok
    for entry in report.entries:
        assert entry == _reference(entry)


def _sets_state_key(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["bad\ud800key"] = 1


def _sets_state_value(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["k"] = "bad \udc00 value"


def _sets_nested_state(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["k"] = {"deep": ["ok", "bad \ud83d"]}


def _sets_huge_int(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.state["n"] = 10**5000


def _returns_surrogate(message: Any, *, runtime: Any, context: Any) -> Any:
    return "bad \ud800"


def _returns_huge_int(message: Any, *, runtime: Any, context: Any) -> Any:
    return [10**5000]


BAD_VALUES = [
    (_sets_state_key, "state"),
    (_sets_state_value, "state"),
    (_sets_nested_state, "state"),
    (_sets_huge_int, "state"),
    (_returns_surrogate, "result"),
    (_returns_huge_int, "result"),
]


@pytest.mark.parametrize(("node", "part"), BAD_VALUES, ids=lambda v: getattr(v, "__name__", v))
def test_a_value_the_encoding_cannot_take_fails_the_run_cleanly(node: Any, part: str) -> None:
    """Lone surrogates and integers past the conversion limit, in state keys, state values
    and results: CanonicalEncodingError naming the part, node_failed and run_finished
    recorded, and the ledger verifies."""
    with pytest.raises(WorkloadRuntimeError) as failed:
        _workload(node).execute("x", deployment_id="dev")
    cause = failed.value.__cause__
    assert isinstance(cause, CanonicalEncodingError)
    expected = "set a state value" if part == "state" else "returned a result"
    assert expected in str(failed.value)
    _assert_failed_cleanly(failed.value)


def _emits_surrogate(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.emit("n", {"text": "bad \ud800"})


def _records_surrogate(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.record_event("seen", metadata={"bad\udfff": 1})


@pytest.mark.parametrize("node", [_emits_surrogate, _records_surrogate])
def test_a_bad_value_given_to_the_runtime_is_refused_where_it_is_given(node: Any) -> None:
    """emit and record_event refuse a value with a lone surrogate at the call, naming it;
    the run fails cleanly and its ledger verifies."""
    wl = _workload(node)
    wl.add_edge("n", "n")
    with pytest.raises(WorkloadRuntimeError) as failed:
        wl.execute("x", deployment_id="dev")
    assert "cannot be recorded" in str(failed.value)
    _assert_failed_cleanly(failed.value)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def _raises_surrogate(message: Any, *, runtime: Any, context: Any) -> Any:
    raise ValueError("card \ud800 declined")


def _raises_unprintable(message: Any, *, runtime: Any, context: Any) -> Any:
    raise _Unprintable()


@pytest.mark.parametrize("node", [_raises_surrogate, _raises_unprintable])
def test_the_nodes_own_exception_is_kept_whatever_its_text(node: Any) -> None:
    """An exception whose message holds a lone surrogate, or whose __str__ raises, is still
    the failure's cause; its text is recorded escaped (or described) in node_failed."""
    with pytest.raises(WorkloadRuntimeError) as failed:
        _workload(node).execute("x", deployment_id="dev")
    assert type(failed.value.__cause__) in (ValueError, _Unprintable)
    events = _assert_failed_cleanly(failed.value)
    failure = next(ev for ev in events if ev.type == "node_failed")
    assert failure.metadata["exception"] in (
        "ValueError: card \\ud800 declined",
        "_Unprintable: <the exception's __str__ raised RuntimeError>",
    )


def _effect_fails_with_surrogate(message: Any, *, runtime: Any, context: Any) -> Any:
    def charge() -> None:
        raise ValueError("declined \ud800")

    try:
        runtime.effect("charge", charge)
    except ValueError as exc:
        return f"caught {type(exc).__name__}"
    return "no error"


def test_an_effect_error_with_a_bad_message_is_recorded_and_raised_as_it_was() -> None:
    """The effect's own ValueError reaches the node (not an encoding error) and is recorded."""
    report = _workload(_effect_fails_with_surrogate).execute("x", deployment_id="dev")
    assert report.node_results("n") == ["caught ValueError"]
    effect = next(ev for ev in report.events() if ev.type == "effect_recorded")
    assert effect.metadata["error"]["message"] == "declined \\ud800"
    assert report.check_chain().ok


def _assert_failed_cleanly(error: WorkloadRuntimeError) -> list[Any]:
    report = error.report
    assert report is not None
    events = [parse_entry(e) for e in report.entries]
    kinds = [ev.type for ev in events]
    assert "node_failed" in kinds
    assert kinds[-1] == "run_finished"
    assert events[-1].metadata["status"] == "failed"
    assert check_chain(report.entries, require_end=True).ok
    return events
