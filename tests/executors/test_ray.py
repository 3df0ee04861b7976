"""RayExecutor on a real local Ray cluster (one per session, ``conftest.py``)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import verify_run
from codon_sdk.errors import ActivationTransferError, ExecutorUnavailableError, WorkloadRuntimeError
from codon_sdk.executors import RayExecutor
from codon_sdk.governance import Policy

from . import _workloads as w

pytestmark = pytest.mark.timeout(300)

_VOLATILE = {"ts", "run_id", "prev", "trace_id", "span_id", "entry"}


def _shape(report: Any) -> list[tuple[Any, ...]]:
    """The ledger without what differs between any two runs (timings, ids, hashes)."""
    rows = []
    for ev in report.events():
        meta = {k: v for k, v in ev.metadata.items() if k not in ("run_id", "workload")}
        if ev.type == "run_started":
            meta = {k: v for k, v in meta.items() if k in ("entry_nodes", "limits")}
        rows.append(
            (ev.type, ev.node, ev.target, ev.token_id, ev.parent_token_id, ev.payload, meta)
        )
    return rows


@pytest.fixture
def ray_exec(ray_address: str) -> RayExecutor:
    return RayExecutor(address=ray_address)


def test_activations_run_in_ray_worker_processes_not_the_driver(ray_exec: RayExecutor) -> None:
    report = w.pids().execute(
        "x", deployment_id="dev", entry_nodes=["sync_pid", "async_pid"], executor=ray_exec
    )
    assert report.status == "completed"
    (sync_pid,) = report.node_results("sync_pid")
    (async_pid,) = report.node_results("async_pid")
    assert sync_pid != os.getpid()
    assert async_pid != os.getpid()


def test_a_governed_run_keeps_its_activations_in_the_driver(ray_exec: RayExecutor) -> None:
    """Policies must see each call before it is sent: a remote worker would bypass them."""
    workload = w.pids()
    workload.add_policy(Policy())  # allows everything, but is there
    report = workload.execute(
        "x", deployment_id="dev", entry_nodes=["sync_pid", "async_pid"], executor=ray_exec
    )
    assert report.status == "completed"
    assert report.node_results("sync_pid") == [os.getpid()]
    assert report.node_results("async_pid") == [os.getpid()]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_ledger_equals_the_in_process_run_and_verifies(
    ray_exec: RayExecutor, tmp_path: Path, concurrency: int
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    here = w.research_flow().execute("ai", deployment_id="dev", max_concurrency=concurrency)
    there = w.research_flow().execute(
        "ai", deployment_id="dev", store=store, executor=ray_exec, max_concurrency=concurrency
    )
    assert there.status == here.status == "completed"
    assert sorted(map(str, there.node_results("write"))) == sorted(
        map(str, here.node_results("write"))
    )
    assert there.state["searches"] == here.state["searches"] == 3  # no update lost
    if concurrency == 1:  # one at a time: the same ledger, event for event
        assert dict(there.state) == dict(here.state)
        assert _shape(there) == _shape(here)
    else:  # in the order things happened, token ids handed out in that order: the same
        # events apart from ids and order (the state's notes list in another order)
        def loose(report: Any) -> list[str]:
            return sorted(
                repr(row[:3] + row[5:])
                for row in _shape(report)
                if row[0] not in ("state_updated", "run_finished")  # their count varies
            )

        assert loose(there) == loose(here)
    assert verify_run(store, there.run_id).ok


def test_a_fan_out_of_100_sleeping_nodes_overlaps(ray_exec: RayExecutor) -> None:
    began = time.monotonic()
    report = w.fan_out().execute(100, deployment_id="dev", executor=ray_exec, max_concurrency=100)
    took = time.monotonic() - began
    assert sorted(report.node_results("nap")) == list(range(100))
    assert took < 5.0 * 0.6, f"100 x 50 ms took {took:.2f}s: the activations did not overlap"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_killed_worker_runs_the_activation_again_and_it_completes_once(
    ray_exec: RayExecutor, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    marker = tmp_path / "pid"
    killed: list[int] = []

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = marker.read_text().split() if marker.exists() else []
            if len(seen) == 2:  # written whole: "<pid> <attempt>"
                pid, attempt = int(seen[0]), seen[1]
                if attempt == "0" and pid != os.getpid():  # never this test's own process
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_attempt)
    killer.start()
    store = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    report = w.killable().execute(str(marker), deployment_id="dev", store=store, executor=ray_exec)
    killer.join()
    assert killed, "the first attempt never started"
    assert report.status == "completed"
    (result,) = report.node_results("slow")
    assert result["attempt"] == 1
    assert result["pid"] != killed[0]
    types = [ev.type for ev in report.events()]
    assert types.count("node_completed") == 1
    (retry,) = [ev for ev in report.events() if ev.type == "node_retrying"]
    assert retry.metadata["error_type"] == "WorkerLostError"
    assert verify_run(store, report.run_id).ok


def test_an_unreachable_cluster_fails_the_run_at_start_naming_the_address(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    with pytest.raises(ExecutorUnavailableError, match=r"127\.0\.0\.1:9"):
        w.echo_flow().execute(
            "x", deployment_id="dev", store=store, executor=RayExecutor(address="127.0.0.1:9")
        )
    assert not (tmp_path / "ledger.db").exists()  # refused before the store was touched


def test_a_result_that_cannot_cross_names_the_node_and_the_type(ray_exec: RayExecutor) -> None:
    with pytest.raises(WorkloadRuntimeError) as caught:
        w.bad_result().execute("x", deployment_id="dev", executor=ray_exec)
    assert isinstance(caught.value.__cause__, ActivationTransferError)
    message = str(caught.value)
    assert "'locker'" in message
    assert "lock" in message
    assert "result" in message


def test_interrupt_and_resume_across_the_cluster(ray_exec: RayExecutor, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    paused = w.approval().execute("ship?", deployment_id="dev", store=store, executor=ray_exec)
    assert paused.status == "interrupted"
    done = w.approval().resume(
        paused.run_id, store=store, input="yes", actor="ana", executor=ray_exec
    )
    assert done.status == "completed"
    assert done.node_results("ask") == ["ship?: yes"]
    assert verify_run(store, done.run_id).ok


def test_a_node_error_is_retried_under_its_policy_as_in_process(ray_exec: RayExecutor) -> None:
    here = w.flaky_flow().execute("x", deployment_id="dev")
    there = w.flaky_flow().execute("x", deployment_id="dev", executor=ray_exec)
    assert there.node_results("flaky") == here.node_results("flaky") == ["ok on attempt 1"]
    strip = [(t, n, tok, p) for t, n, _, tok, _, p, _ in _shape(here)]
    assert [(t, n, tok, p) for t, n, _, tok, _, p, _ in _shape(there)] == strip


def test_the_workload_executor_is_used_when_execute_names_none(ray_exec: RayExecutor) -> None:
    wl = w.pids()
    wl.executor = ray_exec
    report = wl.execute("x", deployment_id="dev", entry_nodes=["sync_pid"])
    assert report.node_results("sync_pid") != [os.getpid()]
