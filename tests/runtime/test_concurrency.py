"""max_concurrency: one activation at a time by default; above 1, async nodes run concurrently
on the loop and sync nodes in threads, with a consistent ledger."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport, WorkloadRuntimeError

WIDTH = 4


class InFlight:
    """Counts activations running at the same moment (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def _fan_out(worker: Any) -> CodonWorkload:
    def fan(message: Any, *, runtime: Any, context: Any) -> Any:
        for i in range(WIDTH):
            runtime.emit("worker", i)
        return "fanned"

    workload = CodonWorkload(name="Fan", version="1")
    workload.add_node(fan, "fan", "r")
    workload.add_node(worker, "worker", "r")
    workload.add_edge("fan", "worker")
    return workload


def _assert_consistent(report: ExecutionReport) -> None:
    assert report.check_chain().ok, str(report.check_chain())
    events = list(report.events())
    assert [e.seq for e in events] == list(range(len(events)))
    dequeued = [e.token_id for e in events if e.type == "token_dequeued"]
    completed = [e.token_id for e in events if e.type == "node_completed"]
    assert sorted(dequeued) == sorted(completed)
    assert len(set(dequeued)) == len(dequeued) == WIDTH + 1
    enqueued = [e.token_id for e in events if e.type == "token_enqueued"]
    assert len(set(enqueued)) == len(enqueued) == WIDTH + 1


def test_default_runs_one_activation_at_a_time() -> None:
    """Without max_concurrency, async nodes never overlap even when they await."""
    flight = InFlight()

    async def worker(message: Any, *, runtime: Any, context: Any) -> Any:
        flight.enter()
        await asyncio.sleep(0.01)
        flight.leave()
        return message

    report = _fan_out(worker).execute(None, deployment_id="d")
    assert flight.peak == 1
    assert report.node_results("worker") == list(range(WIDTH))


def test_async_nodes_run_concurrently_on_the_loop() -> None:
    """With max_concurrency=N, N async activations are in flight at once (a rendezvous)."""
    flight = InFlight()
    arrived = 0

    async def worker(message: Any, *, runtime: Any, context: Any) -> Any:
        nonlocal arrived
        flight.enter()
        arrived += 1
        deadline = time.monotonic() + 5
        while arrived < WIDTH:  # only passes if all WIDTH activations are running together
            assert time.monotonic() < deadline, "activations did not run concurrently"
            await asyncio.sleep(0.001)
        flight.leave()
        return message * 10

    report = _fan_out(worker).execute(None, deployment_id="d", max_concurrency=WIDTH)
    assert flight.peak == WIDTH
    assert sorted(report.node_results("worker")) == [0, 10, 20, 30]
    _assert_consistent(report)


def test_sync_nodes_run_concurrently_in_threads() -> None:
    """With max_concurrency=N, N sync activations run at once in worker threads."""
    barrier = threading.Barrier(WIDTH, timeout=5)
    threads: set[str] = set()

    def worker(message: Any, *, runtime: Any, context: Any) -> Any:
        threads.add(threading.current_thread().name)
        barrier.wait()  # raises BrokenBarrierError unless WIDTH threads arrive together
        runtime.state[f"w{message}"] = message
        return message

    report = _fan_out(worker).execute(None, deployment_id="d", max_concurrency=WIDTH)
    assert len(threads) == WIDTH
    assert threading.current_thread().name not in threads
    assert sorted(report.node_results("worker")) == list(range(WIDTH))
    assert report.state == {f"w{i}": i for i in range(WIDTH)}
    _assert_consistent(report)


def test_concurrency_above_the_work_available_is_fine() -> None:
    """max_concurrency larger than the number of tokens just runs everything."""

    async def worker(message: Any, *, runtime: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        return message

    report = _fan_out(worker).execute(None, deployment_id="d", max_concurrency=64)
    assert sorted(report.node_results("worker")) == list(range(WIDTH))
    assert report.status == "completed"


def test_concurrent_emits_get_unique_token_ids() -> None:
    """Many sync activations emitting at once never hand out the same token id twice."""
    emitters = 8
    per_node = 200

    def fan(message: Any, *, runtime: Any, context: Any) -> Any:
        for i in range(emitters):
            runtime.emit("emitter", i)
        return None

    def emitter(message: Any, *, runtime: Any, context: Any) -> Any:
        return [runtime.emit("sink", j) for j in range(per_node)]

    workload = CodonWorkload(name="Ids", version="1")
    workload.add_node(fan, "fan", "r")
    workload.add_node(emitter, "emitter", "r")
    workload.add_node(lambda m, *, runtime, context: None, "sink", "r")
    workload.add_edge("fan", "emitter")
    workload.add_edge("emitter", "sink")
    report = workload.execute(None, deployment_id="d", max_concurrency=emitters, max_steps=10_000)
    ids = [tid for result in report.node_results("emitter") for tid in result]
    assert len(ids) == len(set(ids)) == emitters * per_node
    assert report.check_chain().ok


@pytest.mark.parametrize("bad", [0, -1])
def test_max_concurrency_must_be_positive(bad: int) -> None:
    """A non-positive max_concurrency is refused before the run starts."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(lambda m, *, runtime, context: m, "n", "r")
    with pytest.raises((ValueError, WorkloadRuntimeError)):
        workload.execute(1, deployment_id="d", max_concurrency=bad)


def test_a_concurrent_failure_leaves_nothing_after_run_finished() -> None:
    """When one thread node fails, a sibling still running cannot append after the run ended."""
    sibling_done = threading.Event()
    late_error: list[BaseException] = []

    def fan(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("slow", 1)
        runtime.emit("boom", 2)
        return None

    def slow(message: Any, *, runtime: Any, context: Any) -> Any:
        time.sleep(0.3)
        try:
            runtime.record_event("late", metadata={"after": "failure"})
        except BaseException as exc:  # the run is over: refusing is the right answer
            late_error.append(exc)
        finally:
            sibling_done.set()
        return "slow"

    def boom(message: Any, *, runtime: Any, context: Any) -> Any:
        time.sleep(0.05)
        raise ValueError("boom")

    workload = CodonWorkload(name="W", version="1")
    for name, fn in (("fan", fan), ("slow", slow), ("boom", boom)):
        workload.add_node(fn, name, "r")
    workload.add_edge("fan", "slow")
    workload.add_edge("fan", "boom")
    with pytest.raises(WorkloadRuntimeError) as info:
        workload.execute(None, deployment_id="d", max_concurrency=2)
    assert sibling_done.wait(5)
    report = info.value.report
    assert report is not None
    check = report.check_chain()
    assert check.ok, str(check)
    types = [e.type for e in report.events()]
    assert types[-1] == "run_finished"
    assert "late" not in types
