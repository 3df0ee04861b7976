"""``executors``: activations and runs per second in process vs on Ray (1 and 2 workers).

Two workloads, through the documented API: a fan-out of ``FAN`` sync activations that
each do a little work (``max_concurrency=8``: activations per second), and ``RUNS``
separate one-activation runs (runs per second). Each runs in process, then with
``executor=RayExecutor(...)`` on a local Ray cluster started with ``ray start --head``
on a free port (not 6379) with one, then two worker CPUs (so at most one or two task
worker processes). ``ray_cost_per_activation`` is what Ray adds to one activation run
one at a time (sequential run, per activation, Ray at one worker minus in process):
the round trip of a task, its ticket and its outcome. Skipped when ``ray`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._harness import Result, Settings, Verdict
from codon_sdk.agents import CodonWorkload

__all__ = ["run"]

GROUP = "executors"
FAN = 200
RUNS = 50
SEQ = 100


def _spread(n: int, *, runtime: Any, context: Any) -> None:
    for i in range(n):
        runtime.emit("work", i)


def _work(i: int, *, runtime: Any, context: Any) -> int:
    return sum(range(2_000)) + i


def _workload() -> CodonWorkload:
    wl = CodonWorkload(name="bench-executors", version="1.0", org_namespace="bench")
    wl.add_node(_spread, "spread", "router")
    wl.add_node(_work, "work", "worker")
    wl.add_edge("spread", "work")
    return wl


def _one() -> CodonWorkload:
    wl = CodonWorkload(name="bench-executors-one", version="1.0", org_namespace="bench")
    wl.add_node(_work, "work", "worker")
    return wl


def _measure(executor: Any) -> dict[str, float]:
    fan, one = _workload(), _one()
    opts = {} if executor is None else {"executor": executor}
    fan.execute(4, deployment_id="bench", max_concurrency=8, **opts)  # warm-up
    began = time.perf_counter()
    fan.execute(FAN, deployment_id="bench", max_concurrency=8, max_steps=FAN + 1, **opts)
    fan_s = time.perf_counter() - began
    began = time.perf_counter()
    for i in range(RUNS):
        one.execute(i, deployment_id="bench", **opts)
    runs_s = time.perf_counter() - began
    began = time.perf_counter()
    fan.execute(SEQ, deployment_id="bench", max_steps=SEQ + 1, **opts)
    seq_s = time.perf_counter() - began
    return {
        "activations_per_s": (FAN + 1) / fan_s,
        "runs_per_s": RUNS / runs_s,
        "sequential_us": seq_s / (SEQ + 1) * 1e6,
    }


@contextlib.contextmanager
def _cluster(cpus: int) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    root = Path(__file__).resolve().parents[2]
    temp = tempfile.mkdtemp(prefix="cb", dir="/tmp")  # Ray's socket paths must stay short
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}",
        "--node-ip-address=127.0.0.1",
    ]  # fmt: skip
    head = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start on port {port}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def run(settings: Settings) -> list[Result]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        import ray  # noqa: F401

        from codon_sdk.executors import RayExecutor
    except ImportError:
        return [Result(GROUP, "ray", None, "", status=Verdict.SKIP, details="ray not installed")]
    figures = {"in_process": _measure(None)}
    for cpus in (1, 2):
        with _cluster(cpus) as address:
            executor = RayExecutor(address=address)
            try:
                figures[f"ray_{cpus}_worker"] = _measure(executor)
            finally:
                executor.shutdown()
    results = []
    for label, got in figures.items():
        results.append(
            Result(
                GROUP,
                f"{label}_activations_per_s",
                got["activations_per_s"],
                "act/s",
                details=f"fan-out of {FAN} sync activations, max_concurrency=8",
            )
        )
        results.append(
            Result(
                GROUP,
                f"{label}_runs_per_s",
                got["runs_per_s"],
                "runs/s",
                details=f"{RUNS} one-activation runs, one after another",
            )
        )
    added = figures["ray_1_worker"]["sequential_us"] - figures["in_process"]["sequential_us"]
    results.append(
        Result(
            GROUP,
            "ray_cost_per_activation",
            added,
            "us",
            details=f"sequential {SEQ}-activation run: Ray (1 worker) minus in process",
        )
    )
    return results
