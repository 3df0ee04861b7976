"""The token queue seam: the in-memory default and a bespoke queue pass the conformance
suite; bad queues are refused; a resumed run's queue is rebuilt from the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import ConfigurationError
from codon_sdk.runtime import InMemoryTokenQueue, QueuedToken, TokenQueue
from codon_sdk.testing import TokenQueueConformance


class ListQueue(TokenQueue):
    """A bespoke queue (a Python list), recording what the engine asked of it."""

    def __init__(self) -> None:
        self.items: list[QueuedToken] = []
        self.calls: list[str] = []

    def put(self, item: QueuedToken) -> None:
        self.calls.append("put")
        self.items.append(item)

    def take(self) -> QueuedToken:
        self.calls.append("take")
        return self.items.pop(0)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[QueuedToken]:
        return iter(list(self.items))

    def clear(self) -> None:
        self.calls.append("clear")
        self.items.clear()


class TestInMemoryTokenQueue(TokenQueueConformance):
    def make_queue(self) -> TokenQueue:
        return InMemoryTokenQueue()


class TestBespokeTokenQueue(TokenQueueConformance):
    def make_queue(self) -> TokenQueue:
        return ListQueue()


def _echo(message: Any, *, runtime: Any, context: Any) -> Any:
    return message


def _ask(message: Any, *, runtime: Any, context: Any) -> str:
    for n in range(2):
        runtime.emit("echo", f"{message}/{n}")
    return str(runtime.interrupt("go?"))


def _flow() -> CodonWorkload:
    wl = CodonWorkload(name="Queued", version="1.0", org_namespace="codon-tests")
    wl.add_node(_echo, "echo", "worker")
    return wl


def _pausing() -> CodonWorkload:
    wl = CodonWorkload(name="Pausing", version="1.0", org_namespace="codon-tests")
    wl.add_node(_ask, "ask", "human")
    wl.add_node(_echo, "echo", "worker")
    wl.add_edge("ask", "echo")
    return wl


def test_the_engine_takes_every_token_through_the_given_queue() -> None:
    queue = ListQueue()
    report = _flow().execute("hi", deployment_id="dev", token_queue=queue)
    assert report.node_results("echo") == ["hi"]
    assert queue.calls == ["put", "take"]


def test_resume_loads_the_queue_from_the_ledger_not_from_what_it_held(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    wl = _pausing()
    paused = wl.execute("x", deployment_id="dev", store=store, entry_nodes=["ask"])
    assert paused.status == "interrupted"
    queue = ListQueue()
    queue.items.append(("t99", "echo", "junk", "ask", None, 0))
    done = wl.resume(paused.run_id, store=store, input="yes", token_queue=queue)
    assert done.status == "completed"
    assert done.node_results("echo") == ["x/0", "x/1"]  # never "junk"
    assert queue.calls[0] == "clear"  # replaced by what the ledger left pending
    assert done.node_results("ask") == ["yes"]


def test_a_non_queue_is_refused_with_what_was_given() -> None:
    with pytest.raises(TypeError, match=r"token_queue must be a codon_sdk\.runtime\.TokenQueue"):
        _flow().execute("hi", deployment_id="dev", token_queue=[])
    with pytest.raises(TypeError, match="got <function"):
        _flow().execute("hi", deployment_id="dev", token_queue=lambda: "not a queue")


def test_a_queue_holding_tokens_is_refused_for_a_fresh_run() -> None:
    queue = InMemoryTokenQueue()
    queue.put(("t1", "echo", "x", "__entry__", None, 0))
    with pytest.raises(ConfigurationError, match="a queue belongs to one run"):
        _flow().execute("hi", deployment_id="dev", token_queue=queue)


def test_a_misspelt_token_queue_option_is_named() -> None:
    with pytest.raises(TypeError, match="token_queue"):
        _flow().execute("hi", deployment_id="dev", token_queu=ListQueue())
