"""PostgreSQL faults in the middle of a run: backends terminated (``pg_terminate_backend`` from
another session) at random points, a commit whose acknowledgement is lost, a server restart
(played by a loopback proxy: the shared server itself is never restarted), and an outage that
outlasts the retry bound.

Each run must complete (or fail cleanly and resume), with a ledger that verifies: the chain
intact, every seq once, every activation completed once, the node results right.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError, verify_all
from codon_sdk.errors import InvalidStoreURLError, StoreConnectionError
from codon_sdk.stores import PostgresStore, open_store

from ._pg_proxy import PgProxy, wait_for
from ._support import assert_chain, completed_tokens, dequeued_tokens, parse, stored_entries

pytestmark = pytest.mark.postgres

STEPS = 16
SEEDS = [3, 17, 2026]
_LOST = "lost the connection to the ledger database"

Fault = Callable[[int], None]


def _chain(fault: Fault, *, name: str = "faults") -> CodonWorkload:
    """``STEPS`` steps in a chain; ``fault(i)`` runs inside step ``i`` before it returns."""

    def step(i: int, *, runtime: Any, context: Any) -> int:
        runtime.state["last"] = i
        runtime.record_event("working", metadata={"i": i})
        fault(i)
        time.sleep(0.005)
        if i < STEPS:
            runtime.emit("step", i + 1)
        return i

    workload = CodonWorkload(name=name, version="1", org_namespace="durable-tests")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    return workload


def _run(workload: CodonWorkload, url: str, durability: str, run_id: str) -> Any:
    return workload.execute(
        1,
        deployment_id="d",
        store=url,
        run_id=run_id,
        durability=durability,
        entry_nodes=["step"],
    )


def _check_ledger(url: str, run_id: str) -> None:
    """Completed, chain intact (every seq once, in order), each activation completed once,
    and the whole store (the run's row, the log of runs) verifies."""
    entries = stored_entries(url, run_id)
    assert_chain(entries, run_id, require_end=True)
    events = parse(entries)
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[-1].type == "run_finished"
    assert dequeued_tokens(events) == completed_tokens(events)
    assert completed_tokens(events).total() == STEPS
    assert set(completed_tokens(events).values()) == {1}
    assert [e.metadata["i"] for e in events if e.type == "working"][-STEPS:] == list(
        range(1, STEPS + 1)
    )
    report = verify_all(url)
    assert report.ok, report
    assert [r.status for r in report.runs] == ["unanchored"] * len(report.runs)


def _check_results(run: Any) -> None:
    assert run.status == "completed"
    assert run.node_results("step") == list(range(1, STEPS + 1))


@pytest.fixture
def app() -> str:
    """An ``application_name`` that tells this test's store connections apart."""
    return f"codon-faults-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def faulty_url(postgres_url: str, app: str) -> str:
    return f"{postgres_url}&application_name={app}"


@pytest.fixture
def lost_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="codon_sdk")
    return caplog


def _retries(caplog: pytest.LogCaptureFixture) -> tuple[int, list[str]]:
    """How many operations lost their connection, and the store's words on getting it back."""
    lost = [r for r in caplog.records if r.getMessage().startswith(_LOST)]
    back = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reconnected")]
    return len(lost), back


# --------------------------------------------------------------------------- terminate backends


class Terminator:
    """Terminates this test's backends from another session, three ways: mid-write (a row lock
    held on the run makes the next write wait; its backend is terminated while it waits, then
    the lock is let go), idle (every connection of the pool), and from a thread at random
    moments of the run."""

    def __init__(self, url: str, app: str, rng: random.Random) -> None:
        self.url = url  # without the application name: these sessions are not terminated
        self.app = app
        self.rng = rng
        self.mid_write = 0  # backends terminated while they waited inside a write
        self.terminated = 0
        self._threads: list[threading.Thread] = []

    def _terminate(self, admin: psycopg.Connection[Any], where: str = "") -> int:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = %s {where}",
            (self.app,),
        ).fetchall()
        self.terminated += len(rows)
        return len(rows)

    def idle(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            self._terminate(admin)

    def during_next_write(self, run_id: str) -> None:
        holder = psycopg.connect(self.url)
        if (
            holder.execute(
                "SELECT 1 FROM codon_runs WHERE run_id = %s FOR UPDATE", (run_id,)
            ).fetchone()
            is None
        ):  # not in the store yet (its first write is still to come)
            holder.close()
            return

        def terminate() -> None:
            waiting = "AND wait_event_type = 'Lock'"
            try:
                with psycopg.connect(self.url, autocommit=True) as admin:
                    if wait_for(
                        lambda: (
                            admin.execute(
                                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                + waiting,
                                (self.app,),
                            ).fetchone()
                            != (0,)
                        )
                    ):
                        self.mid_write += self._terminate(admin, waiting)
            finally:
                holder.rollback()
                holder.close()

        self._start(terminate)

    def at_random_moments(self, count: int) -> None:
        delays = [self.rng.uniform(0.002, 0.03) for _ in range(count)]

        def terminate() -> None:
            with psycopg.connect(self.url, autocommit=True) as admin:
                for delay in delays:
                    time.sleep(delay)
                    self._terminate(admin)

        self._start(terminate)

    def _start(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)


@pytest.mark.parametrize("durability", ["sync", "batch"])
@pytest.mark.parametrize("seed", SEEDS)
def test_backends_terminated_at_random_points_of_a_run_are_retried_and_the_run_completes(
    postgres_url: str, faulty_url: str, app: str, durability: str, seed: int, lost_log: Any
) -> None:
    rng = random.Random(seed)
    run_id = f"term-{durability}-{seed}"
    killer = Terminator(postgres_url, app, rng)
    mid = set(rng.sample(range(3, STEPS, 3), 2))  # steps 3, 6, 9...: never two in a row
    idle = set(rng.sample(sorted(set(range(2, STEPS)) - mid), 2))
    loose = rng.choice(range(2, STEPS))

    def fault(i: int) -> None:
        if i in mid:
            killer.during_next_write(run_id)
        if i in idle:
            killer.idle()
        if i == loose:
            killer.at_random_moments(3)

    run = _run(_chain(fault), faulty_url, durability, run_id)
    killer.join()
    _check_results(run)
    _check_ledger(postgres_url, run_id)
    lost, _ = _retries(lost_log)
    assert killer.mid_write >= 1  # at least one write lost its backend in the middle...
    assert lost >= 1  # ...and was retried (a retry may lose its backend too, and go on)


def test_with_retrying_off_a_terminated_backend_fails_the_run_as_before(
    postgres_url: str, faulty_url: str, app: str
) -> None:
    """The fault above lands mid-write: without retries (``codon_retry_timeout=0``) the same
    termination fails the run, with everything committed before it kept."""
    killer = Terminator(postgres_url, app, random.Random(0))
    url = f"{faulty_url}&codon_retry_timeout=0"

    def fault(i: int) -> None:
        if i == 4:
            killer.during_next_write("no-retry")

    with pytest.raises(WorkloadRuntimeError, match="cannot reach the ledger database") as caught:
        _run(_chain(fault), url, "sync", "no-retry")
    killer.join()
    assert killer.mid_write == 1
    assert isinstance(caught.value.__cause__, StoreConnectionError)
    entries = stored_entries(postgres_url, "no-retry")
    assert_chain(entries, "no-retry", require_end=False)
    assert completed_tokens(parse(entries)).total() == 3


# --------------------------------------------------------------------------- through a proxy


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[PgProxy]:
    parts = urlsplit(postgres_url)
    with PgProxy((parts.hostname or "127.0.0.1", parts.port or 5432)) as served:
        yield served


@pytest.mark.parametrize("durability", ["sync", "batch", "exit"])
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_a_commit_whose_acknowledgement_was_lost_is_not_written_again(
    postgres_url: str, proxy: PgProxy, durability: str, seed: int, lost_log: Any
) -> None:
    """The server gets a whole transaction and commits it, the client never hears back: the
    retry finds the write in the store and goes on, rather than writing it twice (refused as
    a conflict) or losing it. In ``exit`` durability that write begins the run."""
    run_id = f"ack-{durability}-{seed}"
    at = STEPS if durability == "exit" else random.Random(seed).randrange(3, STEPS)

    def fault(i: int) -> None:
        if i == at:
            # sync/batch: the run's next write, whatever its form (a step's append is one
            # statement, with no COMMIT of its own); exit: the transaction that begins the run
            proxy.lose_next_reply(at=b"COMMIT" if durability == "exit" else run_id.encode())

    run = _run(_chain(fault), proxy.url_for(postgres_url), durability, run_id)
    _check_results(run)
    _check_ledger(postgres_url, run_id)
    assert proxy.lost_acks == 1
    lost, back = _retries(lost_log)
    assert lost >= 1
    assert any("had committed before the connection was lost" in line for line in back), back
    if durability == "sync":  # a step's own append: one statement, no COMMIT of its own
        assert any(re.search(r"append [1-9]\d* event", line) for line in back), back


@pytest.mark.parametrize("durability", ["sync", "batch"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("when", ["mid-write", "between-writes"])
def test_a_server_restart_during_a_run_is_ridden_out(
    postgres_url: str, proxy: PgProxy, durability: str, seed: int, when: str, lost_log: Any
) -> None:
    """Every connection cut, new ones refused for a while, then accepted again, either in the
    middle of a write transaction (its COMMIT never arrives) or while the pool's connections
    are idle: the writes wait (with backoff) and the run completes."""
    rng = random.Random(seed)
    run_id = f"restart-{durability}-{seed}-{when}"
    at, down_for = rng.randrange(3, STEPS), rng.uniform(0.3, 1.5)

    def fault(i: int) -> None:
        if i == at and when == "mid-write":
            proxy.restart_at_next_commit(down_for, at=run_id.encode())
        elif i == at:
            proxy.restart(down_for)

    run = _run(_chain(fault), proxy.url_for(postgres_url), durability, run_id)
    _check_results(run)
    _check_ledger(postgres_url, run_id)
    assert proxy.restarts == 1
    assert proxy.refused >= 1  # the store did try while the server was down
    if when == "mid-write":
        lost, back = _retries(lost_log)
        assert lost >= 1
        assert back


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_an_outage_longer_than_the_bound_fails_the_run_cleanly_and_resume_completes_it(
    postgres_url: str, proxy: PgProxy, durability: str
) -> None:
    run_id = f"outage-{durability}"
    url = proxy.url_for(postgres_url) + "&codon_retry_timeout=0.5"
    down = threading.Event()

    def fault(i: int) -> None:
        if i == 8 and not down.is_set():  # once: the resumed run goes through
            down.set()
            proxy.down()

    workload = _chain(fault)
    with pytest.raises(WorkloadRuntimeError) as caught:
        _run(workload, url, durability, run_id)
    cause = caught.value.__cause__
    assert isinstance(cause, StoreConnectionError)
    message = str(cause)
    assert "within 0.5s" in message
    assert f"127.0.0.1:{proxy.port}" in message  # names the store
    assert "workload.resume(run_id" in message  # and what to do
    assert "codon_retry_timeout=SECONDS" in message
    # nothing committed is lost: the store holds a prefix of what the run recorded, cut at
    # whole steps, chain intact
    before = stored_entries(postgres_url, run_id)
    recorded = list(caught.value.report.entries) if caught.value.report is not None else []
    assert before
    assert recorded[: len(before)] == before
    assert_chain(before, run_id, require_end=False)
    assert completed_tokens(parse(before)).total() < STEPS

    proxy.up()
    resumed = workload.resume(run_id, store=url)
    _check_results(resumed)
    _check_ledger(postgres_url, run_id)
    assert stored_entries(postgres_url, run_id)[: len(before)] == before


# --------------------------------------------------------------------------- the bound


def test_the_retry_bound_defaults_to_30s_and_is_set_by_the_url_or_the_constructor(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url, min_size=0, max_size=1) as store:
        assert isinstance(store, PostgresStore)
        assert store.retry_timeout == 30.0
    with open_store(f"{postgres_url}&codon_retry_timeout=2.5") as store:
        assert isinstance(store, PostgresStore)
        assert store.retry_timeout == 2.5
        assert store.runs() == []  # libpq never saw the option
    with PostgresStore(f"{postgres_url}&codon_retry_timeout=2.5", retry_timeout=0) as store:
        assert isinstance(store, PostgresStore)
        assert store.retry_timeout == 0


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan", ""])
def test_a_retry_bound_that_is_not_seconds_is_refused_naming_it(
    postgres_url: str, value: str
) -> None:
    with pytest.raises(InvalidStoreURLError, match=rf"codon_retry_timeout='{value}'.*seconds >= 0"):
        PostgresStore(f"{postgres_url}&codon_retry_timeout={value}")
    with pytest.raises(InvalidStoreURLError, match=r"retry_timeout=-2.*seconds >= 0"):
        PostgresStore(postgres_url, retry_timeout=-2)
