"""The token queue conformance suite: what every :class:`~codon_sdk.runtime.TokenQueue` must
do, as pytest tests.

Subclass :class:`TokenQueueConformance` in a test module, under a name pytest collects
(``Test...``), and say how to make an empty queue::

    class TestMyQueue(TokenQueueConformance):
        def make_queue(self) -> TokenQueue:
            return MyQueue(...)

The checks cover the queue on its own (every token put is taken once, in first-in
first-out order, iteration shows what ``take`` would return, ``load`` replaces and
``clear`` empties) and in runs: a fan-out with a join records the same ledger as with
the in-memory default, and a run paused with tokens pending is resumed with a new queue
that is rebuilt from the ledger alone. The node functions live in this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import ConfigurationError
from codon_sdk.runtime import CodonWorkload, QueuedToken, TokenQueue
from codon_sdk.stores import verify_run
from codon_sdk.testing._executor_conformance import ledger_shape

__all__ = ["TokenQueueConformance"]


def _fan(topic: str, *, runtime: Any, context: Any) -> None:
    for part in ("a", "b", "c"):
        runtime.emit("work", f"{topic}/{part}")


def _work(query: str, *, runtime: Any, context: Any) -> str:
    if query.endswith("/b") and context.get("ask"):
        answer = runtime.interrupt("go on?", payload={"q": query})
        query = f"{query}:{answer}"
    runtime.state.update_with("seen", lambda n: n + 1, default=0)
    runtime.emit("collect", query.upper())
    return query


def _collect(found: tuple[str, ...], *, runtime: Any, context: Any) -> str:
    return " + ".join(found)


def _flow() -> CodonWorkload:
    wl = CodonWorkload(name="QueueConformance", version="1.0", org_namespace="codon-tests")
    wl.add_node(_fan, "fan", "planner")
    wl.add_node(_work, "work", "worker")
    wl.add_node(_collect, "collect", "writer")
    wl.add_edge("fan", "work")
    wl.add_edge("work", "collect")
    wl.add_join("work", "collect")
    return wl


def _token(n: int) -> QueuedToken:
    return (f"t{n}", "work", {"n": n, "text": f"payload {n}"}, "fan", "t0", 1_000 + n)


class TokenQueueConformance:
    """The conformance suite of token queues (needs pytest): implement :meth:`make_queue`."""

    def make_queue(self) -> TokenQueue:
        """A new, empty queue for one test."""
        raise NotImplementedError(
            f"{type(self).__qualname__} runs the token queue conformance suite but does not "
            "say which queue: implement make_queue(self) to return an empty one"
        )

    @pytest.fixture
    def queue(self) -> TokenQueue:
        made = self.make_queue()
        assert isinstance(made, TokenQueue), f"make_queue returned {made!r}, not a TokenQueue"
        return made

    # ------------------------------------------------------------------ the queue alone

    def test_a_new_queue_is_empty(self, queue: TokenQueue) -> None:
        assert len(queue) == 0
        assert not queue
        assert list(queue) == []

    def test_tokens_come_out_first_in_first_out_each_once(self, queue: TokenQueue) -> None:
        for n in range(5):
            queue.put(_token(n))
        assert len(queue) == 5
        assert queue
        assert list(queue) == [_token(n) for n in range(5)]  # looking takes nothing
        assert [queue.take() for _ in range(3)] == [_token(n) for n in range(3)]
        queue.put(_token(9))
        assert list(queue) == [_token(3), _token(4), _token(9)]
        assert [queue.take() for _ in range(3)] == [_token(3), _token(4), _token(9)]
        assert len(queue) == 0
        assert not queue

    def test_take_from_an_empty_queue_raises_index_error(self, queue: TokenQueue) -> None:
        with pytest.raises(IndexError):
            queue.take()

    def test_load_replaces_the_contents_and_clear_empties(self, queue: TokenQueue) -> None:
        queue.put(_token(7))
        queue.load([_token(1), _token(2)])
        assert list(queue) == [_token(1), _token(2)]
        queue.load(queue)  # loading from itself keeps it
        assert list(queue) == [_token(1), _token(2)]
        queue.clear()
        assert len(queue) == 0
        assert list(queue) == []

    # ------------------------------------------------------------------ in runs

    def test_a_run_records_what_it_records_with_the_default_queue(self, queue: TokenQueue) -> None:
        here = _flow().execute("ai", deployment_id="dev")
        there = _flow().execute("ai", deployment_id="dev", token_queue=queue)
        assert there.status == here.status == "completed"
        assert there.node_results("collect") == here.node_results("collect")
        assert dict(there.state) == dict(here.state)
        assert ledger_shape(there) == ledger_shape(here)
        assert len(queue) == 0  # every token was taken

    def test_the_workload_factory_makes_one_queue_per_run(self) -> None:
        made: list[TokenQueue] = []

        def factory() -> TokenQueue:
            made.append(self.make_queue())
            return made[-1]

        wl = _flow()
        wl.token_queue = factory
        first = wl.execute("ai", deployment_id="dev")
        second = wl.execute("ml", deployment_id="dev")
        assert len(made) == 2
        assert made[0] is not made[1]
        assert ledger_shape(first) == ledger_shape(_flow().execute("ai", deployment_id="dev"))
        assert second.status == "completed"

    def test_a_resumed_run_rebuilds_its_queue_from_the_ledger(
        self, queue: TokenQueue, tmp_path: Path
    ) -> None:
        store = f"sqlite:///{tmp_path / 'ledger.db'}"
        ctx = {"ask": True}
        paused = _flow().execute(
            "ai", deployment_id="dev", store=store, context=ctx, token_queue=self.make_queue()
        )
        assert paused.status == "interrupted"
        queue.put(_token(99))  # whatever a queue holds, the ledger says what is pending
        done = _flow().resume(paused.run_id, store=store, input="yes", token_queue=queue)
        assert done.status == "completed"
        assert done.node_results("collect") == ["AI/A + AI/B:YES + AI/C"]
        assert len(queue) == 0
        assert verify_run(store, done.run_id).ok
        default = _flow().execute("ai", deployment_id="dev", store=store, context=ctx)
        again = _flow().resume(default.run_id, store=store, input="yes")
        assert ledger_shape(done) == ledger_shape(again)

    def test_a_fresh_run_refuses_a_queue_that_holds_tokens(self, queue: TokenQueue) -> None:
        queue.put(_token(1))
        with pytest.raises(ConfigurationError, match="already holds 1 token"):
            _flow().execute("ai", deployment_id="dev", token_queue=queue)
        assert list(queue) == [_token(1)]
