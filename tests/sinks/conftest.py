"""NATS JetStream for the sink tests: the shared server on 127.0.0.1:4222 (a stream of each
test's own), and nats-server processes a test starts itself when it must stop one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import IN_CI

from codon_sdk.sinks import NatsSink

SHARED = "nats://127.0.0.1:4222"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def shared_sink() -> Iterator[NatsSink]:
    """A sink on the shared JetStream server, on a stream and subject of this test's own."""
    if not _reachable(4222):
        if IN_CI:
            pytest.fail("NATS JetStream is required under CI=true but 127.0.0.1:4222 is closed")
        pytest.skip("NATS JetStream not reachable on 127.0.0.1:4222")
    name = "T_" + uuid.uuid4().hex[:12]
    sink = NatsSink(SHARED, stream=name, subject=f"codontest.{name}")
    try:
        yield sink
    finally:
        sink.delete_stream()
        sink.close()


class OwnServer:
    """A nats-server with JetStream on a free port, its data in a directory of the test's."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tmp / "nats"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if _reachable(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start on port {self.port}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[OwnServer]:
    if not Path(NATS_SERVER).exists():
        if IN_CI:
            pytest.fail(f"nats-server is required under CI=true ({NATS_SERVER} is missing)")
        pytest.skip("nats-server is not installed")
    server = OwnServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()
