"""Leases in one process: the period is recorded, a heartbeat keeps it, a lost lease stops the run.

Runs are real durable runs on SQLite and PostgreSQL; a second owner is played
by a second store object claiming the run while a node runs, as another process
would. Waiting is for events (a heartbeat written, a flag set), never a timed
assertion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import LeaseLostError, RunConflictError
from codon_sdk.runtime._lease import HEARTBEAT
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.stores._base import ClaimRun, new_owner

from ._support import opened

WAIT_S = 20.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def heartbeat(url: str, run_id: str) -> int:
    with opened(url) as store:
        beat = store.get_run(run_id).heartbeat_us
    assert beat is not None
    return beat


def one_node(fn: Callable[..., Any], *, retry: RetryPolicy | None = None) -> CodonWorkload:
    workload = CodonWorkload(name="lease-in-process", version="1", org_namespace="durable-tests")
    workload.add_node(fn, "work", "worker", retry=retry)
    return workload


# --------------------------------------------------------------------------- the lease period


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf"), "5", True, [1]], ids=repr)
def test_a_lease_ttl_that_is_not_a_positive_number_is_a_clear_value_error(
    ledger_url: str, bad: Any
) -> None:
    workload = one_node(lambda message, *, runtime, context: None)
    with pytest.raises(ValueError, match="lease_ttl must be a positive number of seconds"):
        workload.execute(None, deployment_id="d", store=ledger_url, lease_ttl=bad)
    report = workload.execute(None, deployment_id="d", store=ledger_url)
    with pytest.raises(ValueError, match="lease_ttl"):
        workload.fork(report.run_id, store=ledger_url, at_seq=1, lease_ttl=bad)


def test_the_lease_period_is_recorded_with_the_run_and_with_each_resume(ledger_url: str) -> None:
    def pause_once(message: Any, *, runtime: Any, context: Any) -> str:
        return str(runtime.interrupt("go on?"))

    workload = one_node(pause_once)
    paused = workload.execute(None, deployment_id="d", store=ledger_url, lease_ttl=2.5)
    with opened(ledger_url) as store:
        assert store.get_run(paused.run_id).lease_us == 2_500_000
    done = workload.resume(paused.run_id, store=ledger_url, input="yes", lease_ttl=7)
    assert done.status == "completed"
    with opened(ledger_url) as store:
        assert store.get_run(paused.run_id).lease_us == 7_000_000
    plain = workload.execute(None, deployment_id="d", store=ledger_url)
    with opened(ledger_url) as store:
        assert store.get_run(plain.run_id).lease_us is None


# --------------------------------------------------------------------------- the heartbeat


def test_a_long_node_keeps_its_lease_with_the_heartbeat(ledger_url: str) -> None:
    """With a 0.3 s lease, the heartbeat advances while the node runs without a single
    append, and the run stays held (a claim is refused) for several lease periods."""
    seen: list[int] = []

    def long(message: Any, *, runtime: Any, context: Any) -> str:
        first = heartbeat(ledger_url, runtime.run_id)
        for _ in range(4):  # four renewals, i.e. more than a whole lease (0.3 s) apart
            wait_for(lambda: heartbeat(ledger_url, runtime.run_id) > (seen or [first])[-1], "beat")
            seen.append(heartbeat(ledger_url, runtime.run_id))
        with opened(ledger_url) as other, pytest.raises(RunConflictError, match=r"lease 0\.3s"):
            other.claim(runtime.run_id, new_owner())
        return "done"

    report = one_node(long).execute(None, deployment_id="d", store=ledger_url, lease_ttl=0.3)
    assert report.status == "completed"
    assert len(set(seen)) == 4


def test_one_thread_renews_the_leases_of_every_run_of_the_process(ledger_url: str) -> None:
    both_inside = threading.Barrier(3)
    done = threading.Event()
    counted: list[tuple[int, int]] = []

    def wait(message: Any, *, runtime: Any, context: Any) -> None:
        both_inside.wait(timeout=WAIT_S)
        done.wait(timeout=WAIT_S)

    workload = one_node(wait)
    threads = [
        threading.Thread(
            target=workload.execute,
            args=(None,),
            kwargs={"deployment_id": "d", "store": ledger_url, "lease_ttl": 5},
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    both_inside.wait(timeout=WAIT_S)
    beaters = [t for t in threading.enumerate() if t.name == "codon-lease-heartbeat"]
    counted.append((len(beaters), HEARTBEAT.held()))
    done.set()
    for t in threads:
        t.join()
    assert counted == [(1, 2)]
    assert HEARTBEAT.held() == 0


# --------------------------------------------------------------------------- a lost lease


def take_over(url: str, run_id: str) -> None:
    """A second owner claims the run from under its holder, as another process would."""
    with opened(url) as store:
        held = store.get_run(run_id)
        store.execute(
            ClaimRun(
                run_id=run_id, expected=held.owner, owner=new_owner(), now_us=time.time_ns() // 1000
            )
        )


def counts(url: str, run_id: str) -> tuple[int, str | None]:
    with opened(url) as store:
        info = store.get_run(run_id)
    return info.event_count, info.owner


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_an_owner_that_lost_its_lease_never_runs_its_effect_and_writes_nothing(
    ledger_url: str, durability: str
) -> None:
    """Taken over in the middle of a node: the effect after it is checked against the store
    first, so it is never called, and the run stops with LeaseLostError, writing nothing."""
    calls: list[str] = []
    before: list[tuple[int, str | None]] = []

    def node(message: Any, *, runtime: Any, context: Any) -> str:
        runtime.effect("warm-up", calls.append, "warm-up")  # the run exists in the store now
        take_over(ledger_url, runtime.run_id)
        before.append(counts(ledger_url, runtime.run_id))
        runtime.effect("charge", calls.append, "charge")
        return "charged"

    run_id = f"lost-{durability}"
    workload = one_node(node)
    with pytest.raises(LeaseLostError, match="holds it now"):
        workload.execute(
            None, deployment_id="d", store=ledger_url, run_id=run_id, durability=durability
        )
    assert calls == ["warm-up"]
    assert counts(ledger_url, run_id) == before[0]


def test_a_lease_lost_while_a_node_runs_fails_the_next_write(ledger_url: str) -> None:
    """The heartbeat finds the lease gone; the node then ends without an effect: the run
    stops at its next ledger write, which never reaches the store."""
    before: list[tuple[int, str | None]] = []

    def node(message: Any, *, runtime: Any, context: Any) -> str:
        take_over(ledger_url, runtime.run_id)
        before.append(counts(ledger_url, runtime.run_id))
        wait_for(lambda: HEARTBEAT.held() == 0, "the heartbeat to find the lease lost")
        return "done"

    with pytest.raises(LeaseLostError):
        one_node(node).execute(
            None, deployment_id="d", store=ledger_url, run_id="beat-lost", lease_ttl=0.3
        )
    assert counts(ledger_url, "beat-lost") == before[0]


def test_a_lost_lease_is_not_retried(ledger_url: str) -> None:
    attempts: list[int] = []

    def node(message: Any, *, runtime: Any, context: Any) -> None:
        attempts.append(runtime.attempt)
        runtime.effect("warm-up", lambda: None)
        take_over(ledger_url, runtime.run_id)
        runtime.effect("charge", lambda: None)

    workload = one_node(node, retry=RetryPolicy(max_attempts=3, initial_delay=0))
    with pytest.raises(LeaseLostError):
        workload.execute(None, deployment_id="d", store=ledger_url)
    assert attempts == [0]


def test_an_exit_durability_run_has_no_lease_to_lose_until_it_is_written(
    sqlite_url: str,
) -> None:
    """In ``exit`` durability a new run reaches the store only when it ends: no other process
    can know it, so its effects need no round trip and nothing holds a lease meanwhile."""
    held: list[int] = []

    def node(message: Any, *, runtime: Any, context: Any) -> int:
        held.append(HEARTBEAT.held())
        return int(runtime.effect("n", lambda: 7))

    report = one_node(node).execute(None, deployment_id="d", store=sqlite_url, durability="exit")
    assert report.status == "completed"
    assert held == [0]


def test_a_memory_store_run_confirms_its_lease_too() -> None:
    """A durable run on MemoryStore goes through the same checks (the reference backend)."""
    from codon_sdk.stores._memory import MemoryStore

    memory = MemoryStore()
    calls: list[str] = []

    def node(message: Any, *, runtime: Any, context: Any) -> None:
        runtime.effect("warm-up", calls.append, "warm-up")
        held = memory.get_run(runtime.run_id)
        memory.execute(
            ClaimRun(run_id=runtime.run_id, expected=held.owner, owner="other", now_us=1)
        )
        runtime.effect("charge", calls.append, "charge")

    with pytest.raises(LeaseLostError):
        one_node(node).execute(None, deployment_id="d", store=memory)
    assert calls == ["warm-up"]
