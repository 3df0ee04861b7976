"""Leases across real processes: a long node keeps its run, a suspended owner never charges twice.

The workload: ``long`` waits until the test lets it go (a file), then hands over to
``pay``, whose recorded effect ``charge`` appends a line to a file: the number of
lines is the number of times the card was charged. Lease 1 s throughout.

(a) While ``long`` runs for several leases, a second process tries to resume the
    run, again and again: refused every time, because the heartbeat keeps the
    lease; the card is charged once.
(b) The owner is suspended (SIGSTOP) inside ``long`` past its lease; a second
    process takes the run over and completes it. Woken (SIGCONT), the first owner
    never charges and never appends: it stops with ``LeaseLostError``; the ledger
    verifies and the card was charged once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import verify_run

from ._support import CHILD_TIMEOUT, opened, outcome, run_child, start_child, write_module

LEASE_S = 1.0

WORKLOAD = '''
"""Wait in ``long`` until released, then charge once in ``pay`` (a recorded effect)."""

import os
import pathlib
import time

from codon_sdk import CodonWorkload

FLAGS = pathlib.Path(os.environ["LEASE_FLAGS"])


def long(message, *, runtime, context):
    (FLAGS / f"started-{os.getpid()}").touch()
    while not (FLAGS / "release").exists():
        time.sleep(0.01)
    runtime.emit("pay", message)
    return "waited"


def charge(amount):
    with open(FLAGS / "charges", "a") as out:
        out.write(f"{os.getpid()} {amount}\\n")
    return "charged"


def pay(message, *, runtime, context):
    return runtime.effect("charge", charge, message["amount"])


workload = CodonWorkload(name="lease-processes", version="1")
workload.add_node(long, "long", "worker")
workload.add_node(pay, "pay", "payer")
workload.add_edge("long", "pay")
'''


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    directory = tmp_path / "flags"
    directory.mkdir()
    return directory


@pytest.fixture
def module(tmp_path: Path) -> Path:
    return write_module(tmp_path / "mods", "lease_workload", WORKLOAD)


def wait_for_file(path: Path, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the child exited before {path.name}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def charges(flags: Path) -> list[str]:
    path = flags / "charges"
    return path.read_text().splitlines() if path.exists() else []


def owner_of(url: str, run_id: str) -> tuple[str | None, int]:
    with opened(url) as store:
        info = store.get_run(run_id)
    return info.owner, info.event_count


def resume(module: Path, url: str, run_id: str, flags: Path) -> dict[str, Any]:
    proc = run_child(
        module,
        "resume",
        run_id=run_id,
        kwargs={"store": url, "lease_ttl": LEASE_S},
        env={"LEASE_FLAGS": str(flags)},
    )
    return outcome(proc)


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    return outcome((proc.returncode, out, err))


def test_a_long_node_keeps_its_run_from_a_second_resumer_and_charges_once(
    ledger_url: str, module: Path, flags: Path
) -> None:
    run_id = "long-node"
    owner = start_child(
        module,
        "execute",
        payload={"amount": 42},
        kwargs={"store": ledger_url, "run_id": run_id, "lease_ttl": LEASE_S},
        env={"LEASE_FLAGS": str(flags)},
    )
    try:
        wait_for_file(flags / f"started-{owner.pid}", owner)
        started = time.monotonic()
        refusals = []
        # keep trying until the node has run for well over three leases
        while len(refusals) < 2 or time.monotonic() - started < 3.5 * LEASE_S:
            time.sleep(LEASE_S * 1.2)
            refusals.append(resume(module, ledger_url, run_id, flags))
        (flags / "release").touch()
        done = finish(owner)
    finally:
        (flags / "release").touch()
        if owner.poll() is None:
            owner.kill()
    assert [r["error"] for r in refusals] == ["RunConflictError"] * len(refusals)
    assert all("is being executed by" in r["message"] for r in refusals)
    assert done["status"] == "completed", done
    assert done["results"]["pay"] == ["charged"]
    assert [line.split()[0] for line in charges(flags)] == [str(owner.pid)]
    assert verify_run(ledger_url, run_id).ok


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP/SIGCONT")
def test_a_suspended_owner_that_wakes_after_a_takeover_never_charges_or_appends(
    ledger_url: str, module: Path, flags: Path
) -> None:
    run_id = "suspended"
    first = start_child(
        module,
        "execute",
        payload={"amount": 7},
        kwargs={"store": ledger_url, "run_id": run_id, "lease_ttl": LEASE_S},
        env={"LEASE_FLAGS": str(flags)},
    )
    try:
        wait_for_file(flags / f"started-{first.pid}", first)
        os.kill(first.pid, signal.SIGSTOP)
        (flags / "release").touch()  # what the suspended owner would see on waking
        deadline = time.monotonic() + CHILD_TIMEOUT
        while True:  # refused until the suspended owner's lease has run out
            second = resume(module, ledger_url, run_id, flags)
            if second.get("error") != "RunConflictError":
                break
            assert time.monotonic() < deadline, second
            time.sleep(LEASE_S / 2)
        assert second["status"] == "completed", second
        after_takeover = owner_of(ledger_url, run_id)
        os.kill(first.pid, signal.SIGCONT)
        woken = finish(first)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
    assert woken["error"] == "LeaseLostError", woken
    assert "Nothing was written" in woken["message"]
    assert owner_of(ledger_url, run_id) == after_takeover  # not one more event
    assert after_takeover[0] is None  # the second owner finished and released it
    assert [line.split()[0] for line in charges(flags)] == [str(second["pid"])]
    report = verify_run(ledger_url, run_id)
    assert report.ok, report.summary()
