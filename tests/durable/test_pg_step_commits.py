"""``sync`` durability on PostgreSQL commits once per step boundary, in one round trip.

Read off the real server: every event row carries the id of the transaction that inserted
it (``xmin``), so the events of one activation (its dequeue, state changes, enqueues and
completion) are seen to be committed together, and each step boundary to be its own
commit; a counting proxy in front of the server shows how many requests a run sends.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
from tests.durable._pg_proxy import PgProxy
from tests.durable._support import stored_entries

from codon_sdk import CodonWorkload, open_store

pytestmark = pytest.mark.postgres

SHORT, STEPS = 10, 40


def _chain() -> CodonWorkload:
    """a -> b -> c, each writing state and emitting to the next."""
    workload = CodonWorkload(name="step-commits", version="1", org_namespace="durable-tests")
    chain = (("a", "b"), ("b", "c"), ("c", None))

    def node(following: str | None) -> Any:
        def run(message: int, *, runtime: Any, context: Any) -> int:
            runtime.state[f"seen_{message}"] = message
            if following is not None:
                runtime.emit(following, message + 1)
            return message + 1

        return run

    for name, following in chain:
        workload.add_node(node(following), name, "w")
    for name, following in chain:
        if following is not None:
            workload.add_edge(name, following)
    return workload


def _loop(steps: int) -> CodonWorkload:
    workload = CodonWorkload(name=f"step-loop-{steps}", version="1", org_namespace="durable-tests")

    def loop(message: int, *, runtime: Any, context: Any) -> int:
        if message < steps - 1:
            runtime.emit("loop", message + 1)
        return message

    workload.add_node(loop, "loop", "w")
    workload.add_edge("loop", "loop")
    return workload


def _transactions(url: str, run_id: str) -> list[tuple[str, str]]:
    """(event type, id of the transaction that inserted it) for each event, by seq."""
    types = [orjson.loads(entry)["type"] for entry in stored_entries(url, run_id)]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT seq, xmin::text FROM codon_events WHERE run_id = %s ORDER BY seq", (run_id,)
        ).fetchall()
    assert [seq for seq, _ in rows] == list(range(len(types)))
    return [(kind, xid) for kind, (_, xid) in zip(types, rows, strict=True)]


def _groups(rows: list[tuple[str, str]]) -> list[list[str]]:
    """The event types, grouped by consecutive transaction."""
    groups: list[list[str]] = []
    last = None
    for kind, xid in rows:
        if xid != last:
            groups.append([])
            last = xid
        groups[-1].append(kind)
    return groups


def test_each_activation_of_a_sync_run_is_committed_whole_in_one_transaction(
    postgres_url: str,
) -> None:
    with open_store(postgres_url) as store:
        report = _chain().execute(1, deployment_id="d", store=store, durability="sync")
    assert report.status == "completed"
    rows = _transactions(postgres_url, report.run_id)
    groups = _groups(rows)
    assert len({xid for _, xid in rows}) == len(groups)  # no transaction comes back later
    start, *steps, end = groups
    assert start[0] == "run_started"
    assert "token_enqueued" in start
    assert end[-1] == "run_finished"
    # one transaction per activation, holding all it produced, and nothing of another
    assert len(steps) == 3
    for group in steps:
        assert group.count("node_completed") == 1
        assert group[-1] == "node_completed"
        assert "state_updated" in group
    assert [g.count("token_enqueued") for g in steps] == [1, 1, 0]


def test_a_sync_step_costs_one_round_trip(postgres_url: str) -> None:
    """The step boundary's commit is one request: no BEGIN/COMMIT of its own, no check of
    the pooled connection first, no owner look-up (the fence is part of the write). Runs of
    two lengths, so that what a run's start and end cost drops out."""
    parts = urlsplit(postgres_url)
    sent: dict[int, int] = {}
    upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
    with PgProxy(upstream) as proxy, open_store(proxy.url_for(postgres_url)) as store:
        for steps in (SHORT, SHORT + STEPS):
            workload = _loop(steps)
            workload.execute(0, deployment_id="d", store=store, durability="sync")  # warm
            before = proxy.requests
            report = workload.execute(0, deployment_id="d", store=store, durability="sync")
            sent[steps] = proxy.requests - before
            assert report.status == "completed"
            groups = _groups(_transactions(postgres_url, report.run_id))
            assert len(groups) == steps + 2  # a commit per step, the start, the end
    per_step = (sent[SHORT + STEPS] - sent[SHORT]) / STEPS
    assert per_step <= 1.25, sent  # about 1.1: now and then a request goes in two chunks


def test_an_exit_run_is_one_transaction_with_its_row_and_both_log_lines(
    postgres_url: str,
) -> None:
    """``exit`` durability writes a run once: its row, events, start and finish lines and its
    end (status, no owner) go in one commit (``BeginRun.then``), not a begin and an append."""
    with open_store(postgres_url) as store:
        report = _chain().execute(1, deployment_id="d", store=store, durability="exit")
    assert report.status == "completed"
    xids = {xid for _, xid in _transactions(postgres_url, report.run_id)}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xmin::text, status, owner FROM codon_runs WHERE run_id = %s",
            (report.run_id,),
        ).fetchone()
        lines = conn.execute(
            "SELECT xmin::text, size FROM codon_runs_log WHERE run_id = %s ORDER BY idx",
            (report.run_id,),
        ).fetchall()
    assert row is not None
    assert row[1:] == ("completed", None)
    assert len(lines) == 2
    assert lines[0][1] == 1  # the start line, then the finish line
    assert {row[0], *(xid for xid, _ in lines)} == xids
    assert len(xids) == 1
