"""The executor conformance suite: what every :class:`~codon_sdk.executors.Executor` must
do, as pytest tests.

Subclass :class:`ExecutorConformance` in a test module, under a name pytest collects
(``Test...``), and say how to make your executor::

    class TestMyExecutor(ExecutorConformance):
        def make_executor(self) -> Executor:
            return MyExecutor(...)

Each check runs a workload twice, in process and through the executor, and compares
what the runs recorded: results, state and the ledger event for event (apart from
timings and ids), for sync and async nodes, emitted tokens, custom events, recorded
effects, ``update_with``, retries, interrupts and resume, and node errors. The node
functions live in this module, so a remote worker with the SDK installed imports them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.errors import WorkloadRuntimeError
from codon_sdk.ledger import NODE_FAILED, RUN_STARTED
from codon_sdk.runtime import CodonWorkload, ExecutionReport, Executor
from codon_sdk.stores import verify_run

__all__ = ["ExecutorConformance"]


def _plan(topic: str, *, runtime: Any, context: Any) -> str:
    runtime.record_event("planned", metadata={"topic": topic})
    for part in ("a", "b"):
        runtime.emit("work", f"{topic}/{part}", audit_metadata={"part": part})
    runtime.state["topic"] = topic
    return f"plan:{topic}"


def _work(query: str, *, runtime: Any, context: Any) -> dict[str, Any]:
    found = runtime.effect("search", _search, query)
    runtime.state.update_with("done", lambda n: n + 1, default=0)
    runtime.emit("finish", found)
    return {"query": query, "found": found, "attempt": runtime.attempt}


def _search(query: str) -> str:
    return f"found {query}"


async def _finish(found: str, *, runtime: Any, context: Any) -> str:
    stamp: str = await runtime.effect("stamp", _astamp, found)
    if context.get("stop_after_finish"):
        runtime.stop("enough")
    return stamp.upper()


async def _astamp(text: str) -> str:
    await asyncio.sleep(0)
    return f"[{text}]"


def _flaky(message: Any, *, runtime: Any, context: Any) -> str:
    if runtime.attempt == 0:
        raise ValueError("the first attempt fails")
    return f"attempt {runtime.attempt}"


def _broken(message: Any, *, runtime: Any, context: Any) -> None:
    raise KeyError("missing")


def _ask(question: str, *, runtime: Any, context: Any) -> str:
    runtime.record_event("asking", metadata={"q": question})
    answer = runtime.interrupt("approve?", payload={"q": question})
    return f"{question}: {answer}"


def _flow() -> CodonWorkload:
    wl = CodonWorkload(name="ConformanceFlow", version="1.0", org_namespace="codon-tests")
    wl.add_node(_plan, "plan", "planner")
    wl.add_node(_work, "work", "worker")
    wl.add_node(_finish, "finish", "writer")
    wl.add_edge("plan", "work")
    wl.add_edge("work", "finish")
    return wl


def _single(fn: Any, name: str, **node: Any) -> CodonWorkload:
    wl = CodonWorkload(name=f"Conformance-{name}", version="1.0", org_namespace="codon-tests")
    wl.add_node(fn, name, "worker", **node)
    return wl


def ledger_shape(report: ExecutionReport) -> list[tuple[Any, ...]]:
    """A run's ledger without what differs between any two runs (timings, ids, hashes)."""
    rows = []
    for ev in report.events():
        meta = {k: v for k, v in ev.metadata.items() if k not in ("run_id", "workload")}
        if ev.type == RUN_STARTED:
            meta = {k: v for k, v in meta.items() if k in ("entry_nodes", "limits")}
        rows.append(
            (ev.type, ev.node, ev.target, ev.token_id, ev.parent_token_id, ev.payload, meta)
        )
    return rows


class ExecutorConformance:
    """The conformance suite of executors (needs pytest): implement :meth:`make_executor`."""

    def make_executor(self) -> Executor:
        """A ready executor for one test (the suite does not shut it down)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} runs the executor conformance suite but does not say "
            "which executor: implement make_executor(self) to return one"
        )

    @pytest.fixture
    def executor(self) -> Executor:
        return self.make_executor()

    def test_a_run_records_what_it_records_in_process(self, executor: Executor) -> None:
        """Results, state and the ledger equal the in-process run's, event for event."""
        here = _flow().execute("ai", deployment_id="dev")
        there = _flow().execute("ai", deployment_id="dev", executor=executor)
        assert there.status == here.status == "completed"
        for node in ("plan", "work", "finish"):
            assert there.node_results(node) == here.node_results(node)
        assert dict(there.state) == dict(here.state)
        assert ledger_shape(there) == ledger_shape(here)

    def test_a_durable_run_verifies(self, executor: Executor, tmp_path: Path) -> None:
        store = f"sqlite:///{tmp_path / 'ledger.db'}"
        report = _flow().execute("ai", deployment_id="dev", store=store, executor=executor)
        assert report.status == "completed"
        assert verify_run(store, report.run_id).ok

    def test_stop_from_a_node_ends_the_run(self, executor: Executor) -> None:
        ctx = {"stop_after_finish": True}
        here = _flow().execute("ai", deployment_id="dev", context=ctx)
        there = _flow().execute("ai", deployment_id="dev", context=ctx, executor=executor)
        assert there.status == here.status == "stopped"
        assert ledger_shape(there) == ledger_shape(here)

    def test_a_failed_attempt_is_retried_under_the_node_policy(self, executor: Executor) -> None:
        here = _single(_flaky, "flaky", retry=2).execute("x", deployment_id="dev")
        there = _single(_flaky, "flaky", retry=2).execute(
            "x", deployment_id="dev", executor=executor
        )
        assert there.node_results("flaky") == here.node_results("flaky") == ["attempt 1"]
        assert [r[:4] for r in ledger_shape(there)] == [r[:4] for r in ledger_shape(here)]

    def test_a_node_error_fails_the_run_with_its_type(self, executor: Executor) -> None:
        with pytest.raises(WorkloadRuntimeError, match="missing") as caught:
            _single(_broken, "broken").execute("x", deployment_id="dev", executor=executor)
        assert isinstance(caught.value.__cause__, KeyError)
        assert caught.value.report is not None
        failed = [ev for ev in caught.value.report.events() if ev.type == NODE_FAILED]
        assert [ev.metadata["error_type"] for ev in failed] == ["KeyError"]

    def test_an_interrupt_pauses_and_resume_continues(
        self, executor: Executor, tmp_path: Path
    ) -> None:
        store = f"sqlite:///{tmp_path / 'ledger.db'}"
        paused = _single(_ask, "ask").execute(
            "ship?", deployment_id="dev", store=store, executor=executor
        )
        assert paused.status == "interrupted"
        done = _single(_ask, "ask").resume(
            paused.run_id, store=store, input="yes", actor="ana", executor=executor
        )
        assert done.status == "completed"
        assert done.node_results("ask") == ["ship?: yes"]
        assert verify_run(store, done.run_id).ok

    def test_the_workload_executor_is_the_default(self, executor: Executor) -> None:
        wl = _flow()
        wl.executor = executor
        here = _flow().execute("ai", deployment_id="dev")
        assert ledger_shape(wl.execute("ai", deployment_id="dev")) == ledger_shape(here)
