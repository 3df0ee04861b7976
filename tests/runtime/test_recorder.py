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
