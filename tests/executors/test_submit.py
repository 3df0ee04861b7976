"""Whole runs on the cluster (``workload.submit``) and ``codon worker`` resuming them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from codon_sdk import verify_run
from codon_sdk.cli import main
from codon_sdk.errors import LeaseLostError, WorkerLostError
from codon_sdk.executors import RayExecutor, Submission
from codon_sdk.stores import open_store

from . import _workloads as w

pytestmark = pytest.mark.timeout(300)


def test_a_submitted_run_runs_on_the_cluster_with_its_ledger_in_postgresql(
    ray_address: str, pg_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "m"
    marker.with_name("m.resumed").write_text("no nap")
    handle = w.submitted().submit(
        str(marker), store=pg_url, executor=RayExecutor(address=ray_address), deployment_id="dev"
    )
    report = handle.result(timeout=120)
    assert report.run_id == handle.run_id
    assert report.status == handle.status() == "completed"
    assert verify_run(pg_url, handle.run_id).ok


def _submit_and_wait(ray_address: str, pg_url: str, marker: Path) -> tuple[Submission, float]:
    """Submit the napping run with a 1 s lease; return once its node runs (its driver
    holds the lease), with a deadline for the rest of the test."""
    executor = RayExecutor(address=ray_address)
    handle = w.submitted().submit(
        str(marker), store=pg_url, executor=executor, deployment_id="dev", lease_ttl=1.0
    )
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert time.monotonic() < deadline, "the submitted run never started"
        time.sleep(0.1)
    return handle, deadline


def test_a_killed_driver_is_resumed_by_codon_worker_from_the_ledger(
    ray_address: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    marker = tmp_path / "m"
    handle, deadline = _submit_and_wait(ray_address, pg_url, marker)
    ray.cancel(handle._ref, force=True)  # kills the worker process driving the run
    with pytest.raises((WorkerLostError, ray.exceptions.TaskCancelledError)):
        handle.result(timeout=60)
    while handle.status() != "stale":  # the lease expires: nobody renews it
        assert time.monotonic() < deadline, f"status stayed {handle.status()}"
        time.sleep(0.2)
    marker.with_name("m.resumed").write_text("resumed")
    argv = ["worker", "--workload", "executors._workloads:SUBMITTED", "--ledger", pg_url]
    assert main([*argv, "--ray", ray_address, "--once"]) == 0
    out = capsys.readouterr().out
    assert handle.run_id in out, out
    assert handle.status() == "completed", out
    assert verify_run(pg_url, handle.run_id).ok


def _driver_pid(store: str, run_id: str) -> int:
    """The pid of the process holding the run's lease (owner ids are ``host:pid:nonce``)."""
    ledger = open_store(store)
    try:
        owner = ledger.get_run(run_id).owner
    finally:
        ledger.close()
    assert owner is not None, f"run {run_id} has no owner"
    return int(owner.split(":")[-2])


def _event_count(store: str, run_id: str) -> int:
    ledger = open_store(store)
    try:
        return ledger.get_run(run_id).event_count
    finally:
        ledger.close()


def test_a_suspended_driver_that_returns_after_another_worker_finished_cannot_append(
    ray_address: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old owner of a submitted run, stopped (SIGSTOP) past its lease while a worker
    resumes and completes the run, is fenced when it wakes: it fails with
    ``LeaseLostError`` and the ledger keeps exactly what the new owner wrote."""
    marker = tmp_path / "m"
    handle, deadline = _submit_and_wait(ray_address, pg_url, marker)
    pid = _driver_pid(pg_url, handle.run_id)
    assert pid != os.getpid()
    os.kill(pid, signal.SIGSTOP)  # the driver is alive but silent: its heartbeat stops
    try:
        while handle.status() != "stale":
            assert time.monotonic() < deadline, f"status stayed {handle.status()}"
            time.sleep(0.2)
        marker.with_name("m.resumed").write_text("resumed")
        argv = ["worker", "--workload", "executors._workloads:SUBMITTED", "--ledger", pg_url]
        assert main([*argv, "--ray", ray_address, "--once"]) == 0
        out = capsys.readouterr().out
        assert handle.run_id in out, out
        assert handle.status() == "completed", out
        events = _event_count(pg_url, handle.run_id)
        assert verify_run(pg_url, handle.run_id).ok
    finally:
        os.kill(pid, signal.SIGCONT)  # the old owner comes back, its first activation still due
    with pytest.raises(LeaseLostError, match=f"run {handle.run_id} lost its lease") as lost:
        handle.result(timeout=90)
    assert type(lost.value) is LeaseLostError  # not Ray's wrapper, with its traceback text
    assert _event_count(pg_url, handle.run_id) == events  # it appended nothing
    assert handle.status() == "completed"
    assert verify_run(pg_url, handle.run_id).ok


def test_codon_worker_names_an_unreachable_cluster(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["worker", "--workload", "executors._workloads:SUBMITTED", "--ledger", pg_url]
    assert main([*argv, "--ray", "127.0.0.1:9", "--once"]) != 0
    assert "cannot reach the Ray cluster at '127.0.0.1:9'" in capsys.readouterr().err
