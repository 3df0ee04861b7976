"""``runtime.state.update_with``: atomic read-compute-write under concurrency.

Async nodes that read, await and write lose updates; ``update_with`` does not. Sync nodes
in threads (``max_concurrency`` > 1) whose update function gives up the GIL between
the read and the write lose none either, nor do async and threaded nodes updating one
key together. Bad functions (async, returning an awaitable, not callable) are refused
with a TypeError that says what to pass; a missing key without a default is a KeyError;
a function that raises leaves the state as it was. The changes are recorded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport
from codon_sdk.runtime import RunState

N = 60


def _counting(node: Any, *, concurrency: int = 8) -> ExecutionReport:
    """A fan-out of N activations of ``node`` (which counts into ``state["n"]``)."""
    wl = CodonWorkload(name="Count", version="1.0", org_namespace="tests")

    def fan(message: Any, *, runtime: Any, context: Any) -> None:
        for i in range(N):
            runtime.emit("count", i)

    wl.add_node(fan, "fan", "worker")
    wl.add_node(node, "count", "worker")
    wl.add_edge("fan", "count")
    return wl.execute(None, deployment_id="dev", max_concurrency=concurrency)


def test_async_nodes_that_await_between_read_and_write_lose_updates() -> None:
    """The trap update_with exists for (documented in the guide)."""

    async def count(i: int, *, runtime: Any, context: Any) -> None:
        n = runtime.state.get("n", 0)
        await asyncio.sleep(0)
        runtime.state["n"] = n + 1

    assert _counting(count).state["n"] < N


def test_async_nodes_lose_no_update_with_update_with() -> None:
    async def count(i: int, *, runtime: Any, context: Any) -> None:
        await asyncio.sleep(0)
        runtime.state.update_with("n", lambda n: n + 1, default=0)
        await asyncio.sleep(0)
        runtime.state.update_with("seen", lambda seen: [*seen, i], default=[])

    report = _counting(count)
    assert report.state["n"] == N
    assert sorted(report.state["seen"]) == list(range(N))


def _slow_increment(n: int) -> int:
    time.sleep(0)  # gives up the GIL between the read and the write
    return n + 1


def test_threaded_nodes_lose_no_update_with_update_with() -> None:
    def count(i: int, *, runtime: Any, context: Any) -> None:
        for _ in range(20):
            runtime.state.update_with("n", _slow_increment, default=0)

    assert _counting(count).state["n"] == N * 20


def test_async_and_threaded_nodes_updating_one_key_lose_nothing() -> None:
    wl = CodonWorkload(name="Mixed", version="1.0", org_namespace="tests")

    def fan(message: Any, *, runtime: Any, context: Any) -> None:
        for i in range(N):
            runtime.emit("threaded" if i % 2 else "awaiting", i)

    def threaded(i: int, *, runtime: Any, context: Any) -> None:
        for _ in range(10):
            runtime.state.update_with("n", _slow_increment, default=0)

    async def awaiting(i: int, *, runtime: Any, context: Any) -> None:
        for _ in range(10):
            await asyncio.sleep(0)
            runtime.state.update_with("n", lambda n: n + 1, default=0)

    wl.add_node(fan, "fan", "worker")
    wl.add_node(threaded, "threaded", "worker")
    wl.add_node(awaiting, "awaiting", "worker")
    wl.add_edge("fan", "threaded")
    wl.add_edge("fan", "awaiting")
    report = wl.execute(None, deployment_id="dev", max_concurrency=6)
    assert report.state["n"] == N * 10


def test_a_locked_state_makes_plain_writes_wait_for_an_update_in_progress() -> None:
    """With max_concurrency > 1 the state is locked: a write from another thread cannot
    land between update_with's read and write (it waits, then overwrites)."""
    state = RunState(locked=True)
    state["k"] = "initial"
    inside = threading.Event()
    written: list[str] = []

    def writer() -> None:
        inside.wait()
        state["k"] = "plain write"
        written.append(dict.get(state, "k"))

    def slow(value: str) -> str:
        inside.set()
        for _ in range(50):
            time.sleep(0.001)
            assert dict.get(state, "k") == "initial"  # the plain write has not landed
        return value + " updated"

    thread = threading.Thread(target=writer)
    thread.start()
    assert state.update_with("k", slow) == "initial updated"
    thread.join()
    assert written == ["plain write"]


def test_update_with_returns_the_new_value_and_the_change_is_recorded() -> None:
    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.state.update_with("tags", lambda tags: [*tags, message], default=[])

    wl = CodonWorkload(name="Tags", version="1.0", org_namespace="tests")
    wl.add_node(node, "tag", "worker")
    report = wl.execute("x", deployment_id="dev")
    assert report.node_results("tag") == [["x"]]
    assert report.state == {"tags": ["x"]}
    (change,) = [e for e in report.ledger if e.event_type == "state_updated"]
    assert change.token_id is not None


def test_bad_update_functions_are_refused_and_leave_the_state_alone() -> None:
    state = RunState()
    state["n"] = 1

    async def later(n: int) -> int:
        return n + 1

    with pytest.raises(TypeError, match="fn must be a plain function, not async"):
        state.update_with("n", later)
    with pytest.raises(TypeError, match="fn returned an awaitable"):
        state.update_with("n", lambda n: later(n))
    with pytest.raises(TypeError, match="fn must be a function of the current value, got 3"):
        state.update_with("n", 3)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="missing"):
        state.update_with("missing", lambda n: n + 1)
    with pytest.raises(ZeroDivisionError):
        state.update_with("n", lambda n: n / 0)
    assert dict(state) == {"n": 1}
    assert state.update_with("missing", lambda n: n + 1, default=0) == 1


class _SlowKey(str):
    """A state key whose second hash (the dirty mark that follows the write) waits until
    another thread has taken the changes, or 0.3 s: it holds a writer between its write
    and its mark, where a change set taken meanwhile would lose the write."""

    __slots__ = ()
    calls = 0
    taken = threading.Event()

    def __hash__(self) -> int:
        type(self).calls += 1
        if type(self).calls == 2:
            type(self).taken.wait(0.3)
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def test_a_write_is_never_lost_to_changes_taken_between_it_and_its_mark() -> None:
    """The recorder takes the state's changes while a threaded node writes: a change set
    taken between the write and its dirty mark must not lose the write (the swap waits)."""
    _SlowKey.calls = 0
    _SlowKey.taken.clear()
    state = RunState(locked=True)
    state["other"] = 0  # another write, so there are changes to take meanwhile
    key = _SlowKey("hits")
    writer = threading.Thread(target=state.__setitem__, args=(key, 1))
    writer.start()
    while _SlowKey.calls < 2:  # the writer is between its write and its mark
        time.sleep(0.001)
    first = state.changes()
    _SlowKey.taken.set()
    writer.join()
    second = state.changes()
    sets = [d.get("set", {}) for d in (first, second) if d is not None]
    assert [s["hits"] for s in sets if "hits" in s] == [1]
