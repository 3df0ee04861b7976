"""Verification holds no per-entry state: memory stays flat however long the run.

The chain walk feeds each leaf hash into a Merkle accumulator (O(log n)) and takes the
root at the sizes asked for (the checkpoints'), keeping only the last leaf: a run of ten
times the events retains about the same memory while it is verified (issue 14, item 3).
"""

from __future__ import annotations

import functools
import tracemalloc
from typing import Any

import orjson
import pytest

from codon_sdk import CodonWorkload
from codon_sdk.ledger import leaf_hash
from codon_sdk.ledger._chain import check_chain, walk_chain
from codon_sdk.ledger._merkle import EMPTY_ROOT, root
from codon_sdk.ledger._verify import verify_entries

RUN_ID = "flat-run-1"
STEPS = 5_000  # 15,002 events


@functools.lru_cache(maxsize=1)
def _entries() -> tuple[bytes, ...]:
    def step(message: Any, *, runtime: Any, context: Any) -> Any:
        i = message["i"]
        if i + 1 < STEPS:
            runtime.emit("step", {"i": i + 1})
        return {"i": i}

    workload = CodonWorkload(name="flat", version="1", org_namespace="tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    report = workload.execute({"i": 0}, deployment_id="flat", run_id=RUN_ID, max_steps=STEPS)
    assert report.status == "completed"
    return tuple(report.entries)


def _peak(entries: list[bytes]) -> int:
    """Bytes allocated at the peak of one verification of ``entries`` (held elsewhere)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        report = verify_entries(RUN_ID, entries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.event_count == len(entries)
    return peak - before


def test_verifying_ten_times_the_events_retains_about_the_same_memory() -> None:
    entries = list(_entries())
    small, large = entries[: len(entries) // 10], entries
    _peak(small)  # warm up: caches filled once, outside the figures
    grown = _peak(large) - _peak(small)
    # one 32-byte leaf per extra entry kept would be ~1 MB here (73 bytes a bytes object)
    assert grown < 8 * (len(large) - len(small)), f"{grown} bytes more for {len(large)} events"


def test_walk_keeps_the_roots_asked_for_and_the_last_leaf() -> None:
    entries = list(_entries()[:1_000])
    leaves = [leaf_hash(e) for e in entries]
    sizes = [0, 1, 255, 256, 257, 700, 1_000, 1_001, 5_000]
    walk = walk_chain(entries, run_id=RUN_ID, sizes=sizes)
    assert walk.problem is None
    assert walk.count == len(entries)
    assert walk.head == leaves[-1]
    assert walk.roots == {size: root(leaves[:size]) for size in sizes if size <= len(entries)}
    assert walk.roots[0] == EMPTY_ROOT
    assert not hasattr(walk, "leaves")
    assert not hasattr(walk, "__dict__")


@pytest.mark.parametrize("edit", [True, False], ids=["edited", "deleted"])
@pytest.mark.parametrize("position", [1, 2, 300, 511, 998])
def test_after_a_fault_the_roots_still_cover_every_entry(position: int, edit: bool) -> None:
    entries = list(_entries()[:1_000])
    if edit:  # edited in place: the link out of it breaks, and it is blamed
        obj = orjson.loads(entries[position])
        obj["ts"] += 1
        entries[position] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    else:  # deleted: the next entry is found at its position, carrying the wrong seq
        del entries[position]
    leaves = [leaf_hash(e) for e in entries]
    walk = walk_chain(entries, run_id=RUN_ID, sizes=[position, 600, 2_000])
    assert walk.bad_seq == position
    assert walk.count == len(entries)
    assert walk.roots == {position: root(leaves[:position]), 600: root(leaves[:600])} | {
        len(entries): root(leaves)
    }
    chain = check_chain(entries, run_id=RUN_ID)
    assert (chain.bad_seq, chain.head) == (position, leaves[position - 1].hex())
