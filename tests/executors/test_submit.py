"""Whole runs on the cluster (``workload.submit``) and ``codon worker`` resuming them."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk import verify_run
from codon_sdk.cli import main
from codon_sdk.errors import LeaseLostError, WorkerLostError
from codon_sdk.executors import RayExecutor, Submission
from codon_sdk.runtime import display_status
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


# ---------------------------------------------------------------- runs whose driver never starts

REPO = Path(__file__).resolve().parents[2]
STAMPED = "executors._workloads:STAMPED"


def _submitted_elsewhere(
    ray_address: str, pg_url: str, stamps: Path, lease: float
) -> tuple[subprocess.Popen[str], str]:
    """Submit ``STAMPED`` from another process whose driver task never starts (it asks for
    a resource the cluster lacks); that process stays alive. Returns it and the run id."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "executors._submitter", ray_address, pg_url, str(stamps)]
    proc = subprocess.Popen(
        [*command, str(lease)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 90)
    if not ready:
        proc.kill()
        pytest.fail("the submitting process printed no run id in 90 s")
    run_id = proc.stdout.readline().strip()
    assert run_id, f"the submitting process exited ({proc.wait()}) without a run id"
    return proc, run_id


@pytest.fixture
def submitters() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _worker_once(pg_url: str, ray_address: str, workload: str = STAMPED) -> int:
    return main(
        ["worker", "--workload", workload, "--ledger", pg_url, "--ray", ray_address, "--once"]
    )


def _events(store: str, run_id: str) -> list[str]:
    from codon_sdk.ledger import parse_entry

    ledger = open_store(store)
    try:
        return [parse_entry(e).type for e in ledger.read(run_id, 0)]
    finally:
        ledger.close()


def _status(store: str, run_id: str) -> str:
    ledger = open_store(store)
    try:
        return display_status(ledger.get_run(run_id))
    finally:
        ledger.close()


def test_a_submitted_run_whose_driver_never_starts_is_resumed_within_one_lease_period(
    ray_address: str,
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    submitters: list[subprocess.Popen[str]],
) -> None:
    """Its start is in the store when submit returns; while the submitter's lease is fresh
    no worker takes it; once the lease expires, ``codon worker`` runs it, exactly once."""
    stamps = tmp_path / "stamps"
    proc, run_id = _submitted_elsewhere(ray_address, pg_url, stamps, lease=2.0)
    submitters.append(proc)
    submitted_at = time.monotonic()
    assert _events(pg_url, run_id) == ["run_started", "token_enqueued"]
    assert _worker_once(pg_url, ray_address) == 0  # the submitter's lease is still fresh
    assert run_id not in capsys.readouterr().out
    assert not stamps.exists()
    while _status(pg_url, run_id) != "stale":
        assert time.monotonic() - submitted_at < 2.0 + 5, "the run never went stale"
        time.sleep(0.1)
    assert _worker_once(pg_url, ray_address) == 0
    out = capsys.readouterr().out
    assert f"{run_id:<34} completed" in out, out
    (pid,) = stamps.read_text().split()  # the node ran once, in a Ray worker
    assert int(pid) not in (os.getpid(), proc.pid)
    assert _worker_once(pg_url, ray_address) == 0  # nothing left to do
    assert run_id not in capsys.readouterr().out
    assert stamps.read_text().split() == [pid]
    events = _events(pg_url, run_id)
    assert events.count("run_finished") == 1
    assert events.count("node_completed") == 1
    assert verify_run(pg_url, run_id).ok


def test_a_submitter_killed_right_after_submit_leaves_a_run_a_worker_completes(
    ray_address: str,
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    submitters: list[subprocess.Popen[str]],
) -> None:
    """SIGKILLed as soon as submit returned (default 60 s lease): its owner is a dead process
    on this host, so the run is stale at once and the next look of a worker completes it."""
    stamps = tmp_path / "stamps"
    proc, run_id = _submitted_elsewhere(ray_address, pg_url, stamps, lease=60.0)
    submitters.append(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert _status(pg_url, run_id) == "stale"
    assert _worker_once(pg_url, ray_address) == 0
    assert f"{run_id:<34} completed" in capsys.readouterr().out
    assert len(stamps.read_text().split()) == 1
    assert _events(pg_url, run_id).count("run_finished") == 1
    assert verify_run(pg_url, run_id).ok


def test_a_worker_with_other_logic_refuses_a_submitted_run_and_leaves_it(
    ray_address: str,
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    submitters: list[subprocess.Popen[str]],
) -> None:
    stamps = tmp_path / "stamps"
    proc, run_id = _submitted_elsewhere(ray_address, pg_url, stamps, lease=60.0)
    submitters.append(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert _worker_once(pg_url, ray_address, "executors._workloads:STAMPED_CHANGED") == 0
    out = capsys.readouterr().out
    assert f"{run_id:<34} refused" in out, out
    assert "was recorded with logic id" in out
    assert "changed nodes: stamp" in out
    assert not stamps.exists()  # nothing ran
    assert _events(pg_url, run_id) == ["run_started", "token_enqueued"]
    assert _status(pg_url, run_id) == "stale"  # left for a worker with the right code
    assert _worker_once(pg_url, ray_address) == 0
    assert f"{run_id:<34} completed" in capsys.readouterr().out
    assert verify_run(pg_url, run_id).ok


def test_a_driver_that_starts_after_a_worker_took_the_run_over_leaves_it_alone(
    ray_address: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The driver task is held up (a carried set-up waits on a file) past the run's lease; a
    worker runs the run meanwhile. When the driver gets going it finds the run ended and
    runs nothing; ``result()`` is the report the worker left."""
    from codon_sdk.integrations import integration

    stamps, gate = tmp_path / "stamps", tmp_path / "gate"
    door = integration("test-gate")
    door.carry(w.wait_for_file, path=str(gate))
    try:
        handle = w.STAMPED.submit(
            str(stamps),
            store=pg_url,
            executor=RayExecutor(address=ray_address),
            deployment_id="dev",
            lease_ttl=1.0,
        )
    finally:
        door.stop_carrying()
    deadline = time.monotonic() + 30
    while handle.status() != "stale":
        assert handle.status() == "submitted"
        assert time.monotonic() < deadline, "the run never went stale"
        time.sleep(0.1)
    assert _worker_once(pg_url, ray_address) == 0
    assert f"{handle.run_id:<34} completed" in capsys.readouterr().out
    gate.write_text("go")  # the driver task now tries to take the run over
    report = handle.result(timeout=60)
    assert report.status == handle.status() == "completed"
    assert len(stamps.read_text().split()) == 1  # run once, by the worker
    assert _events(pg_url, handle.run_id).count("run_resumed") == 1
    assert verify_run(pg_url, handle.run_id).ok


def test_driver_resources_are_checked_like_node_resources() -> None:
    with pytest.raises(ValueError, match="driver_resources: resource 'driver' must be a non-neg"):
        RayExecutor(driver_resources={"driver": -1})
    with pytest.raises(ValueError, match="driver_resources: resources must be a mapping"):
        RayExecutor(driver_resources=["driver"])  # type: ignore[arg-type]
    assert RayExecutor(driver_resources={"driver": 1}).driver_resources == {
        "num_cpus": 0.0,
        "driver": 1,
    }


def test_a_driver_that_turns_up_while_a_worker_runs_the_run_follows_it_to_its_end(
    ray_address: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The held-up driver's take-over is refused (the worker holds a live lease); it runs
    nothing, and ``result()`` follows the run in the store to the worker's report."""
    import threading

    from codon_sdk.integrations import integration

    marker, gate = tmp_path / "m", tmp_path / "gate"
    door = integration("test-gate")
    door.carry(w.wait_for_file, path=str(gate))
    try:
        handle = w.SUBMITTED.submit(
            str(marker),
            store=pg_url,
            executor=RayExecutor(address=ray_address),
            deployment_id="dev",
            lease_ttl=1.0,
        )
    finally:
        door.stop_carrying()
    deadline = time.monotonic() + 30
    while handle.status() != "stale":
        assert time.monotonic() < deadline, "the run never went stale"
        time.sleep(0.1)
    argv = ["worker", "--workload", "executors._workloads:SUBMITTED", "--ledger", pg_url]
    worker = threading.Thread(target=main, args=([*argv, "--ray", ray_address, "--once"],))
    worker.start()
    try:
        while not marker.exists():  # the worker's activation naps for 20 s
            assert time.monotonic() < deadline + 30, "the worker never ran the node"
            time.sleep(0.1)
        assert handle.status() == "running"
        gate.write_text("go")  # the driver task now tries to take the run over: refused
        report = handle.result(timeout=90)
    finally:
        worker.join(90)
    assert report.status == handle.status() == "completed"
    assert f"{handle.run_id:<34} completed" in capsys.readouterr().out
    events = _events(pg_url, handle.run_id)
    assert events.count("run_resumed") == 1  # the worker's; the driver appended nothing
    assert events.count("node_completed") == 1
    assert verify_run(pg_url, handle.run_id).ok
