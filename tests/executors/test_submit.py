"""Whole runs on the cluster (``workload.submit``) and ``codon worker`` resuming them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codon_sdk import verify_run
from codon_sdk.cli import main
from codon_sdk.errors import WorkerLostError
from codon_sdk.executors import RayExecutor

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


def test_a_killed_driver_is_resumed_by_codon_worker_from_the_ledger(
    ray_address: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    marker = tmp_path / "m"
    executor = RayExecutor(address=ray_address)
    handle = w.submitted().submit(
        str(marker), store=pg_url, executor=executor, deployment_id="dev", lease_ttl=1.0
    )
    deadline = time.monotonic() + 60
    while not marker.exists():  # the run's node is running: its driver holds the lease
        assert time.monotonic() < deadline, "the submitted run never started"
        time.sleep(0.1)
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


def test_codon_worker_names_an_unreachable_cluster(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["worker", "--workload", "executors._workloads:SUBMITTED", "--ledger", pg_url]
    assert main([*argv, "--ray", "127.0.0.1:9", "--once"]) != 0
    assert "cannot reach the Ray cluster at '127.0.0.1:9'" in capsys.readouterr().err
