"""The recorder's fixed-shape writers produce exactly the bytes of its generic path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codon_sdk.identity._canonical import prepare
from codon_sdk.ledger._chain import check_chain
from codon_sdk.ledger._events import TOKEN_ENQUEUED
from codon_sdk.runtime._recorder import Recorder

RUN = 'run "with" %s quotes'
TS = 1_767_225_600_000_000

NAMES = st.sampled_from(["loop", "__start__", 'we"ird', "100%", "ünï", "😀"])
VALUES = st.none() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False)
PAYLOADS = VALUES | st.dictionaries(st.text(max_size=4), VALUES, max_size=4) | st.lists(VALUES)
METADATA = st.none() | st.dictionaries(st.text(max_size=6), VALUES, max_size=4)


def started() -> Recorder:
    rec = Recorder(RUN)
    rec.append("run_started", TS, metadata={"workload": "w"})
    return rec


@given(
    origin=NAMES,
    target=NAMES,
    payload=PAYLOADS,
    metadata=METADATA,
    parent=st.none() | st.text(max_size=5),
    held=st.booleans(),
)
def test_enqueued_writes_what_append_writes(
    origin: str, target: str, payload: Any, metadata: Any, parent: str | None, held: bool
) -> None:
    fast, generic = started(), started()
    if held:  # a held dequeue is written out first on both paths
        fast.dequeued(origin, "t0", TS)
        generic.dequeued(origin, "t0", TS)
    prepared, meta = prepare(payload), prepare(metadata) if metadata else None
    fast.enqueued(origin, "t1", prepared, meta, target, parent, TS + 1)
    generic.append(TOKEN_ENQUEUED, TS + 1, origin, "t1", prepared, meta, target, parent)
    assert list(fast.entries()) == list(generic.entries())
    assert (fast.seq, fast.head) == (generic.seq, generic.head)
    assert check_chain(list(fast.entries())).ok


def test_enqueued_takes_the_generic_path_before_the_first_event() -> None:
    fast, generic = Recorder(RUN), Recorder(RUN)
    fast.enqueued("a", "t1", 1, {"seed": True}, "b", None, TS)
    generic.append(TOKEN_ENQUEUED, TS, "a", "t1", 1, {"seed": True}, "b", None)
    assert list(fast.entries()) == list(generic.entries())


def test_an_oversized_enqueue_is_refused_and_leaves_the_chain_as_it_was() -> None:
    rec = started()
    rec.max_event_bytes = 300
    head, seq = rec.head, rec.seq
    with pytest.raises(Exception, match="over the limit of 300"):
        rec.enqueued("a", "t1", "x" * 400, {"k": "v"}, "b", None, TS)
    assert (rec.head, rec.seq) == (head, seq)


IDS = st.none() | st.tuples(
    st.just("0af7651916cd43dd8448eb211c80319c"), st.just("b7ad6b7169203331")
)


@given(
    ids=IDS,
    payload=PAYLOADS,
    result=PAYLOADS,
    change=st.none() | st.just({"set": {"i": 1}}),
    emit=st.booleans(),
)
def test_an_activation_writes_what_the_generic_path_writes(
    ids: tuple[str, str] | None, payload: Any, result: Any, change: Any, emit: bool
) -> None:
    """Dequeue (held), emitted token, state change and completion, with trace ids stamped
    or not: the templates give the bytes the generic path gives."""
    fast, generic = started(), started()
    fast.trace_ids = generic.trace_ids = ids
    emitted = [("t2", "loop", payload, prepare(payload), None)] if emit else None
    fast.dequeued("loop", "t1", TS)
    fast.completion("loop", "t1", emitted, change, prepare(result), TS + 1)
    generic.append("token_dequeued", TS, "loop", "t1")
    if emit:
        generic.append(TOKEN_ENQUEUED, TS + 1, "loop", "t2", prepare(payload), None, "loop", "t1")
    if change is not None:
        generic.append("state_updated", TS + 1, "loop", "t1", change)
    generic.append(
        "node_completed", TS + 1, "loop", "t1", prepare(result), {"emissions": int(emit)}
    )
    assert list(fast.entries()) == list(generic.entries())
    if ids is not None:
        assert all(b'"span_id":"b7ad6b7169203331"' in e for e in list(fast.entries())[1:])


def test_a_held_dequeue_keeps_the_ids_it_was_recorded_under() -> None:
    rec = started()
    rec.trace_ids = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    rec.dequeued("loop", "t1", TS)
    rec.trace_ids = None  # the span ended before anything else was recorded
    rec.append("custom", TS + 1, "loop", "t1")
    dequeue, custom = list(rec.entries())[1:]
    assert b'"span_id":"b7ad6b7169203331"' in dequeue
    assert b"span_id" not in custom
