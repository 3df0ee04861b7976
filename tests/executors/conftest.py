"""One real local Ray cluster for the whole session (head on a free port, not 6379).

Started with ``ray start --head --block`` in a process group of its own and stopped at
the end by signalling that group (never ``ray stop``, which would stop every Ray on the
machine). Its workers import this repository's ``tests`` package (``PYTHONPATH``), so
node functions defined in test modules run there as they are.
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

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return port if port != 6379 else _free_port()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a running local Ray cluster (2 CPUs), connected to from this process."""
    # read when ray is imported: set first, or ray resolves 127.0.0.1 to the host's address
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token file in ~/.ray to trip over
    ray = pytest.importorskip("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="cr", dir="/tmp")  # Ray's socket paths must stay short
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    ray_bin = str(Path(sys.executable).with_name("ray"))
    command = [
        ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
        "--node-ip-address=127.0.0.1",
    ]  # fmt: skip
    head = subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start on {address} (exit {head.poll()})")
            time.sleep(0.2)
        ray.init(address=address, log_to_driver=False)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # whatever of its group is left
        shutil.rmtree(temp, ignore_errors=True)
