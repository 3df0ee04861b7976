"""A join survives a crash: SIGKILL between two arrivals (or just after the join's token),
resume in a new process, and the joined node runs exactly once, on every arrival.

``plan`` fans out to ``search`` (one activation per query), whose results ``write`` joins.
A child process runs against a SQLite store and is killed (SIGKILL, from inside a node)
at a chosen point: in the middle of the second search (the first arrival committed), at
the start of the joined ``write`` (the join's token committed), or, with many runs in one
process, as a search that waited for a free slot starts (its run stands between two arrivals).
The run is then resumed from the store alone, and each run's ledger must show ``write``
completed exactly once, on the tuple of all its searches' results, every search completed
once, and a chain that checks. A ledger cut between the last arrival and the join's token
(what ``batch`` durability can lose) also fires the join once on resume.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codon_sdk.ledger import leaf_hash
from codon_sdk.stores import SQLiteStore

from ._support import (
    CHILD_TIMEOUT,
    assert_chain,
    child_env,
    completed_tokens,
    load_module,
    opened,
    outcome,
    parse,
    run_child,
    stored_entries,
)

WORKLOAD = '''
"""plan -> search (one per query) -> write (join of search); crashable at a chosen point."""

import asyncio
import os
import random
import signal
import sys

from codon_sdk import CodonWorkload

SEARCHES = [0]
LATE = [0]  # searches started for a run's fourth or later query


def _log(node, what):
    path = os.environ.get("ACTIVATION_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} {node} {what}\\n")


def _crash_if(point):
    if os.environ.get("CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def plan(queries, *, runtime, context):
    for q in queries:
        runtime.emit("search", q)


async def search(query, *, runtime, context):
    SEARCHES[0] += 1
    n = SEARCHES[0]
    _log("search", query)
    if query[-1].isdigit() and int(query[-1]) >= 3:  # waited for a slot: an arrival is durable
        LATE[0] += 1
        if os.environ.get("KILL_AT_LATE_SEARCH") == str(LATE[0]):
            os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(random.random() / 200)
    runtime.state.update_with("searched", lambda k: k + 1, default=0)
    await asyncio.sleep(random.random() / 200)
    _crash_if(f"search{n}:mid")
    runtime.emit("write", query.upper())


def write(found, *, runtime, context):
    _log("write", "+".join(found))
    _crash_if("write:start")
    return list(found)


workload = CodonWorkload(name="join-crash", version="1", org_namespace="durable-tests")
workload.add_node(plan, "plan", "planner")
workload.add_node(search, "search", "searcher")
workload.add_node(write, "write", "writer")
workload.add_edge("plan", "search")
workload.add_edge("search", "write")
workload.add_join(["search"], "write")


async def _many(store, runs):
    await asyncio.gather(
        *(
            workload.execute_async(
                queries,
                deployment_id="durable",
                run_id=run_id,
                store=store,
                durability="sync",
                max_concurrency=3,
            )
            for run_id, queries in runs
        )
    )


if __name__ == "__main__":  # python join_crash.py STORE RUNS_JSON: many runs at once
    asyncio.run(_many(sys.argv[1], [tuple(r) for r in __import__("json").loads(sys.argv[2])]))
'''

QUERIES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def workload_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("join_workload")
    path = directory / "join_crash.py"
    path.write_text(WORKLOAD)
    return path


def _assert_joined_once(url: str, run_id: str, queries: list[str]) -> None:
    """The run ended, ``write`` completed once on every search's result, each search once."""
    entries = stored_entries(url, run_id)
    assert_chain(entries, run_id, require_end=True)
    events = parse(entries)
    done = completed_tokens(events)
    assert all(n == 1 for n in done.values()), done
    targets = {e.token_id: e for e in events if e.type == "token_enqueued"}
    writes = [e for e in events if e.type == "node_completed" and e.node == "write"]
    assert len(writes) == 1, [e.token_id for e in writes]
    (write,) = writes
    assert sorted(write.value()) == sorted(q.upper() for q in queries)
    joined = targets[str(write.token_id)].metadata["join"]
    assert len(joined["tokens"]) == len(queries)
    searches = [e for e in events if e.type == "node_completed" and e.node == "search"]
    assert len(searches) == len(queries)
    assert events[-1].type == "run_finished"
    assert events[-1].metadata["status"] == "completed"


def _log_rows(path: Path) -> list[tuple[int, str, str]]:
    if not path.exists():
        return []
    return [
        (int(pid), node, what)
        for pid, node, what in (line.split(" ", 2) for line in path.read_text().splitlines())
    ]


@pytest.mark.parametrize(
    ("point", "concurrency"),
    [
        pytest.param("search2:mid", 1, id="between-arrivals"),
        pytest.param("search4:mid", 3, id="between-arrivals-concurrent"),  # after a slot freed
        pytest.param("write:start", 1, id="after-the-join-token"),
        pytest.param("write:start", 3, id="after-the-join-token-concurrent"),
    ],
)
def test_a_run_killed_around_a_join_resumes_and_joins_once(
    workload_path: Path, sqlite_url: str, tmp_path: Path, point: str, concurrency: int
) -> None:
    log = tmp_path / "activations.log"
    run_id = f"join-{point.replace(':', '-')}-{concurrency}"
    kwargs = {
        "store": sqlite_url,
        "run_id": run_id,
        "durability": "sync",
        "max_concurrency": concurrency,
    }
    crashed = run_child(
        workload_path,
        "execute",
        payload=QUERIES,
        kwargs=kwargs,
        env={"CRASH_AT": point, "ACTIVATION_LOG": str(log)},
    )
    assert crashed.returncode == -9, crashed.stderr
    before = parse(stored_entries(sqlite_url, run_id))
    arrived = [e for e in before if e.type == "token_enqueued" and e.target == "write"]
    joined = [e for e in arrived if "join" in e.metadata]
    if point.startswith("search"):
        assert arrived  # killed between two arrivals
        assert not joined
    else:
        assert len(joined) == 1  # killed after the join's token was recorded
    resumed = run_child(
        workload_path,
        "resume",
        run_id=run_id,
        kwargs={"store": sqlite_url},
        env={"ACTIVATION_LOG": str(log)},
    )
    result = outcome(resumed)
    assert result["status"] == "completed", result
    assert result["state"]["searched"] >= len(QUERIES)
    _assert_joined_once(sqlite_url, run_id, QUERIES)
    inputs = {e.token_id: e.value() for e in before if e.type == "token_enqueued"}
    searched_before = {
        inputs[e.token_id] for e in before if e.type == "node_completed" and e.node == "search"
    }
    rows = [row for row in _log_rows(log) if row[0] == result["pid"]]
    # a search completed before the crash did not run again; the others ran once
    assert sorted(q for _, node, q in rows if node == "search") == sorted(
        set(QUERIES) - searched_before
    )
    # the joined node ran once in the resuming process, on every search's result
    (written,) = [q for _, node, q in rows if node == "write"]
    assert sorted(written.split("+")) == ["A", "B", "C", "D"]


@pytest.mark.parametrize("kill_after", [1, 9, 18])
def test_many_runs_killed_mid_fan_in_each_join_once_after_resume(
    workload_path: Path, sqlite_url: str, kill_after: int
) -> None:
    """24 runs at once in one process, killed as the ``kill_after``-th search for a run's
    fourth or later query starts (of 18). That search waited for a slot of ``max_concurrency=3``,
    so under ``sync`` one of its run's arrivals is durable and the join is not: the kill
    always catches a run between two arrivals, however loaded the machine (killing after a
    count of searches had started could land before any arrival committed). The other runs
    stand at every point of their fan-in; each resumed run joins exactly once."""
    runs = [(f"many-{kill_after}-{i}", [f"q{i}{k}" for k in range(2 + i % 4)]) for i in range(24)]
    SQLiteStore(sqlite_url[len("sqlite:///") :]).close()  # the file exists before the runs
    done = subprocess.run(
        [sys.executable, str(workload_path), sqlite_url, json.dumps(runs)],
        env=child_env({"KILL_AT_LATE_SEARCH": str(kill_after)}),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    workload = load_module(workload_path).workload
    between = 0
    with opened(sqlite_url) as store:
        for run_id, _ in runs:
            if not store.has_run(run_id):
                continue
            events = parse(store.read(run_id))
            arrived = [e for e in events if e.type == "token_enqueued" and e.target == "write"]
            if arrived and not any("join" in e.metadata for e in arrived):
                between += 1
    assert between >= 1  # the killed search's run stands between two arrivals
    for run_id, queries in runs:
        with opened(sqlite_url) as store:
            if not store.has_run(run_id):
                continue
        report = workload.resume(run_id, store=sqlite_url)
        assert report.status == "completed"
        _assert_joined_once(sqlite_url, run_id, queries)


def test_a_ledger_cut_after_the_last_arrival_fires_the_join_once_on_resume(
    workload_path: Path, sqlite_url: str, tmp_path: Path
) -> None:
    """What a crash in ``batch`` durability can leave: every arrival committed, the join's
    token not. Resume fires the join once, with the same tokens."""
    workload = load_module(workload_path).workload
    full = workload.execute(QUERIES, deployment_id="durable", store=sqlite_url, run_id="whole")
    events = parse(stored_entries(sqlite_url, "whole"))
    cut = next(e.seq for e in events if "join" in e.metadata)
    with opened(sqlite_url) as store:
        info = store.get_run("whole")
    planted = f"sqlite:///{tmp_path / 'planted.db'}"
    with opened(planted) as store:
        store.begin_run(
            dataclasses.replace(info, status="running", finished_us=None, owner=None),
            [(seq, e, leaf_hash(e)) for seq, e in enumerate(stored_entries(sqlite_url, "whole"))][
                :cut
            ],
        )
    report = workload.resume("whole", store=planted)
    assert report.node_results("write") == full.node_results("write")
    _assert_joined_once(planted, "whole", QUERIES)
    resumed = parse(stored_entries(planted, "whole"))
    (token,) = [e for e in resumed if "join" in e.metadata]
    assert token.metadata["join"] == events[cut].metadata["join"]
