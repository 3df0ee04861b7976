"""Joins (``add_join``): a node runs once on every token its sources sent it.

The joined node runs exactly once per fan-out, in order or concurrently (async nodes
awaiting random delays, sync nodes in threads), on a tuple of the joined messages in the
order of its sources, then of arrival; the ledger records what it joined; a join inside
a loop fires once per round; tokens from other nodes pass straight through; replay and
fork treat the join's token like any other; bad declarations are refused, naming what
is wrong.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport
from codon_sdk.errors import (
    LedgerError,
    LogicChangedError,
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.ledger import TOKEN_ENQUEUED, parse_entry
from codon_sdk.runtime import rebuild


def _joins(report: ExecutionReport) -> list[dict[str, Any]]:
    """The ``join`` metadata of every join token the run recorded, in ledger order."""
    return [
        e.metadata["join"]
        for e in report.ledger
        if e.event_type == TOKEN_ENQUEUED and "join" in e.metadata
    ]


def _fan_in(
    *, delay: bool = False, async_search: bool = False, join: bool = True, pause: bool = False
) -> CodonWorkload:
    """plan emits one token per query in its message to search; write joins the searches
    (``join=False``: the same graph without the join; ``pause``: plan asks a human first)."""
    wl = CodonWorkload(name="FanIn", version="1.0", org_namespace="tests")

    def plan(queries: list[str], *, runtime: Any, context: Any) -> None:
        if pause:
            runtime.interrupt("go?")
        for q in queries:
            runtime.emit("search", q)

    def search(query: str, *, runtime: Any, context: Any) -> None:
        if delay:
            time.sleep(random.random() / 500)
        runtime.state.update_with("searched", lambda n: n + 1, default=0)
        runtime.emit("write", query.upper())

    async def asearch(query: str, *, runtime: Any, context: Any) -> None:
        await asyncio.sleep(random.random() / 500)
        seen = runtime.state.get("seen", 0)
        await asyncio.sleep(random.random() / 1000)  # an await between read and write
        runtime.state["seen"] = seen + 1  # may lose updates: not the counter checked
        runtime.state.update_with("searched", lambda n: n + 1, default=0)
        await asyncio.sleep(0)
        runtime.emit("write", query.upper())

    def write(found: tuple[str, ...], *, runtime: Any, context: Any) -> str:
        runtime.state.update_with("writes", lambda n: n + 1, default=0)
        return "+".join(found)

    wl.add_node(plan, "plan", "planner")
    wl.add_node(asearch if async_search else search, "search", "searcher")
    wl.add_node(write, "write", "writer")
    wl.add_edge("plan", "search")
    wl.add_edge("search", "write")
    if join:
        wl.add_join(["search"], "write")
    return wl


def test_the_joined_node_runs_once_on_every_token_and_the_ledger_says_which() -> None:
    report = _fan_in().execute(["a", "b", "c"], deployment_id="dev")
    assert report.node_results("write") == ["A+B+C"]
    (join,) = _joins(report)
    emitted = [
        e.token_id
        for e in report.ledger
        if e.event_type == TOKEN_ENQUEUED and e.target_node == "write" and "join" not in e.metadata
    ]
    assert join == {"node": "write", "tokens": emitted, "sources": ["search"] * 3}
    (token,) = [e for e in report.ledger if e.event_type == TOKEN_ENQUEUED and "join" in e.metadata]
    assert token.source_node == "__join__"
    assert report.state["writes"] == 1


def test_without_the_join_the_node_runs_once_per_token() -> None:
    """The same graph without add_join: what the join prevents."""
    report = _fan_in(join=False).execute(["a", "b", "c"], deployment_id="dev")
    assert len(report.node_results("write")) == 3


@pytest.mark.parametrize("async_search", [False, True], ids=["threads", "async"])
def test_two_hundred_concurrent_fan_outs_each_run_the_joined_node_once(
    async_search: bool,
) -> None:
    """200 runs of random widths and delays, four activations at a time (async searchers
    await between reading and writing the state): every run's writer runs once, on every
    search's message, and no update_with is lost."""
    rng = random.Random(15)
    wl = _fan_in(delay=True, async_search=async_search)
    for i in range(200):
        queries = [f"q{i}-{k}" for k in range(rng.randint(1, 6))]
        report = wl.execute(queries, deployment_id="dev", max_concurrency=4)
        (written,) = report.node_results("write")
        assert sorted(written.split("+")) == sorted(q.upper() for q in queries)
        assert report.state["writes"] == 1
        assert report.state["searched"] == len(queries)
        (join,) = _joins(report)
        assert len(join["tokens"]) == len(queries)


def test_the_message_lists_sources_in_their_declared_order_then_by_arrival() -> None:
    wl = CodonWorkload(name="Sources", version="1.0", org_namespace="tests")

    def plan(message: Any, *, runtime: Any, context: Any) -> None:
        runtime.emit("db", "d1")
        runtime.emit("web", "w1")
        runtime.emit("db", "d2")
        runtime.emit("web", "w2")

    def relay(message: str, *, runtime: Any, context: Any) -> None:
        runtime.emit("merge", message)

    def merge(found: tuple[str, ...], *, runtime: Any, context: Any) -> tuple[str, ...]:
        return found

    wl.add_node(plan, "plan", "planner")
    wl.add_node(relay, "web", "searcher")
    wl.add_node(relay, "db", "searcher")
    wl.add_node(merge, "merge", "writer")
    for a, b in (("plan", "web"), ("plan", "db"), ("web", "merge"), ("db", "merge")):
        wl.add_edge(a, b)
    wl.add_join(["web", "db"], "merge")
    report = wl.execute(None, deployment_id="dev")
    assert report.node_results("merge") == [("w1", "w2", "d1", "d2")]
    assert _joins(report)[0]["sources"] == ["web", "web", "db", "db"]


def _loop(rounds: int) -> CodonWorkload:
    """plan -> search x2 -> write (join) -> review -> plan, ``rounds`` times; review also
    sends notes straight to write (not a source: each note activates write on its own)."""
    wl = CodonWorkload(name="Rounds", version="1.0", org_namespace="tests")

    def plan(n: int, *, runtime: Any, context: Any) -> None:
        runtime.emit("search", f"{n}a")
        runtime.emit("search", f"{n}b")

    def search(q: str, *, runtime: Any, context: Any) -> None:
        runtime.emit("write", q)

    def write(found: Any, *, runtime: Any, context: Any) -> Any:
        if isinstance(found, tuple):
            runtime.emit(
                "review",
                len(runtime.state.update_with("drafts", lambda d: [*d, found], default=[])),
            )
        return found

    def review(n: int, *, runtime: Any, context: Any) -> None:
        runtime.emit("write", f"note {n}")
        if n < rounds:
            runtime.emit("plan", n + 1)

    for fn, name in ((plan, "plan"), (search, "search"), (write, "write"), (review, "review")):
        wl.add_node(fn, name, "worker")
    for a, b in (("plan", "search"), ("search", "write"), ("write", "review")):
        wl.add_edge(a, b)
    wl.add_edge("review", "write")
    wl.add_edge("review", "plan")
    wl.add_join(["search"], "write")
    return wl


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_join_inside_a_loop_fires_once_per_round(concurrency: int) -> None:
    report = _loop(3).execute(
        1, deployment_id="dev", entry_nodes=["plan"], max_concurrency=concurrency
    )
    joined = [r for r in report.node_results("write") if isinstance(r, tuple)]
    assert [sorted(r) for r in joined] == [["1a", "1b"], ["2a", "2b"], ["3a", "3b"]]
    notes = [r for r in report.node_results("write") if isinstance(r, str)]
    assert sorted(notes) == ["note 1", "note 2", "note 3"]
    assert len(_joins(report)) == 3


def test_a_join_of_a_join_waits_for_the_first_to_run() -> None:
    """plan -> s x3 -> j1 (join of s) -> j2 (join of j1 and t), plan -> t -> j2."""
    wl = CodonWorkload(name="Nested", version="1.0", org_namespace="tests")

    def plan(message: Any, *, runtime: Any, context: Any) -> None:
        for i in range(3):
            runtime.emit("s", i)
        runtime.emit("t", "t")

    def s(i: int, *, runtime: Any, context: Any) -> None:
        runtime.emit("j1", i)

    def j1(found: tuple[int, ...], *, runtime: Any, context: Any) -> None:
        runtime.emit("j2", sum(found))

    def t(message: str, *, runtime: Any, context: Any) -> None:
        runtime.emit("j2", message)

    def j2(found: tuple[Any, ...], *, runtime: Any, context: Any) -> tuple[Any, ...]:
        return found

    for fn, name in ((plan, "plan"), (s, "s"), (j1, "j1"), (t, "t"), (j2, "j2")):
        wl.add_node(fn, name, "worker")
    for a, b in (("plan", "s"), ("s", "j1"), ("j1", "j2"), ("plan", "t"), ("t", "j2")):
        wl.add_edge(a, b)
    wl.add_join(["s"], "j1")
    wl.add_join(["j1", "t"], "j2")
    for concurrency in (1, 4):
        report = wl.execute(None, deployment_id="dev", max_concurrency=concurrency)
        assert report.node_results("j2") == [(3, "t")]


def test_two_joins_that_wait_for_each_other_fire_first_registered_first() -> None:
    """a -> ja (join of a) -> b -> jb (join of b) -> a: each join feeds the other."""
    wl = CodonWorkload(name="Mutual", version="1.0", org_namespace="tests")
    order: list[str] = []

    def relay(to: str) -> Any:
        def node(message: Any, *, runtime: Any, context: Any) -> None:
            if runtime.state.update_with("hops", lambda n: n + 1, default=0) <= 6:
                runtime.emit(to, message)

        return node

    def join(to: str) -> Any:
        def node(found: tuple[Any, ...], *, runtime: Any, context: Any) -> None:
            order.append(runtime.node)
            runtime.emit(to, len(found))

        return node

    wl.add_node(relay("ja"), "a", "worker")
    wl.add_node(join("b"), "ja", "worker")
    wl.add_node(relay("jb"), "b", "worker")
    wl.add_node(join("a"), "jb", "worker")
    for x, y in (("a", "ja"), ("ja", "b"), ("b", "jb"), ("jb", "a")):
        wl.add_edge(x, y)
    wl.add_join(["a"], "ja")
    wl.add_join(["b"], "jb")
    report = wl.execute(None, deployment_id="dev", entry_nodes=["a", "b"])
    assert report.status == "completed"
    assert order[0] == "ja"
    assert report.node_results("ja")[0] is None
    assert len(_joins(report)) == len(order)


def test_replay_of_a_run_with_joins_is_identical(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = _loop(2).execute(1, deployment_id="dev", entry_nodes=["plan"], store=store)
    replay = _loop(2).replay(report.run_id, store=store)
    assert replay.identical, [str(d) for d in replay.divergences]


def test_a_fork_between_two_arrivals_joins_the_waiting_and_the_new_tokens(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = _fan_in().execute(["a", "b", "c"], deployment_id="dev", store=store)
    events = [parse_entry(e) for e in report.entries]
    first_arrival = next(e.seq for e in events if e.type == TOKEN_ENQUEUED and e.target == "write")
    fork = _fan_in().fork(report.run_id, store=store, at_seq=first_arrival + 1)
    assert fork.node_results("write") == ["A+B+C"]
    assert len(_joins(fork)) == 1


def test_resume_consumes_the_joined_tokens_and_refuses_a_forged_join() -> None:
    report = _fan_in().execute(["a", "b"], deployment_id="dev")
    events = [parse_entry(e) for e in report.entries]
    join_seq = next(e.seq for e in events if "join" in e.metadata)
    waiting = rebuild(events[:join_seq])
    assert [item[1] for item in waiting.queue] == ["write", "write"]
    joined = rebuild(events[: join_seq + 1])
    assert [(item[1], item[3]) for item in joined.queue] == [("write", "__join__")]
    assert joined.queue[0][2] == ("A", "B")
    forged = events[join_seq]
    forged.metadata["join"]["tokens"] = ["t99"]
    with pytest.raises(LedgerError, match="joins token 't99', which is not a token waiting"):
        rebuild([*events[:join_seq], forged])
    forged.metadata["join"] = "everything"
    with pytest.raises(LedgerError, match="does not list the tokens it joined"):
        rebuild([*events[:join_seq], forged])


def test_a_join_is_part_of_the_logic_and_resume_names_the_change(tmp_path: Path) -> None:
    wl = _fan_in(pause=True)
    plain = _fan_in(pause=True, join=False)
    assert wl.logic_id != plain.logic_id
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    paused = plain.execute(["a"], deployment_id="dev", store=store)
    assert paused.status == "interrupted"
    with pytest.raises(LogicChangedError, match="joins changed: write"):
        wl.resume(paused.run_id, store=store, input="yes")
    resumed = wl.resume(paused.run_id, store=store, input="yes", allow_logic_change=True)
    assert resumed.node_results("write") == ["A"]


# --------------------------------------------------------------------------- bad input


def _three() -> CodonWorkload:
    wl = CodonWorkload(name="Bad", version="1.0", org_namespace="tests")
    for name in ("a", "b", "w"):
        wl.add_node(lambda m, *, runtime, context: m, name, "worker")
    wl.add_edge("a", "w")
    return wl


@pytest.mark.parametrize(
    ("sources", "node", "message"),
    [
        (["a"], "nowhere", "node 'nowhere' is not registered; known nodes: a, b, w"),
        (["ghost"], "w", "source 'ghost' of join 'w' is not registered"),
        (["b"], "w", r"no edge 'b' -> 'w'.*workload.add_edge\('b', 'w'\)"),
        ([], "w", "name at least one source node"),
        (["a", "a"], "w", "source 'a' of join 'w' is named twice"),
        (42, "w", "sources must be a list of node names, got 42"),
        ([None], "w", "source None of join 'w' is not registered"),
    ],
)
def test_a_bad_join_is_refused_naming_what_is_wrong(sources: Any, node: Any, message: str) -> None:
    with pytest.raises(WorkloadRegistrationError, match=message):
        _three().add_join(sources, node)


def test_a_node_has_one_join_and_a_string_names_one_source() -> None:
    wl = _three()
    wl.add_join("a", "w")
    assert wl.joins == {"w": ["a"]}
    wl.add_edge("b", "w")
    with pytest.raises(WorkloadRegistrationError, match="already a join of \\['a'\\]"):
        wl.add_join(["b"], "w")


def test_the_join_origin_is_a_reserved_node_name() -> None:
    wl = CodonWorkload(name="Reserved", version="1.0", org_namespace="tests")
    with pytest.raises(WorkloadRegistrationError, match="'__join__' is reserved"):
        wl.add_node(lambda m, *, runtime, context: m, "__join__", "worker")


def test_a_join_whose_message_is_too_large_fails_the_run_naming_the_join() -> None:
    wl = CodonWorkload(name="Big", version="1.0", org_namespace="tests")

    def fan(n: int, *, runtime: Any, context: Any) -> None:
        for i in range(n):
            runtime.emit("join", str(i) * 1500)

    wl.add_node(fan, "fan", "worker")
    wl.add_node(lambda m, *, runtime, context: m, "join", "worker")
    wl.add_edge("fan", "join")
    wl.add_join(["fan"], "join")
    with pytest.raises(WorkloadRuntimeError, match=r"join 'join' cannot record the 3 token\(s\)"):
        wl.execute(3, deployment_id="dev", max_event_bytes=4000)
    assert wl.execute(2, deployment_id="dev", max_event_bytes=4000).status == "completed"


def test_a_join_waits_for_a_paused_source_and_fires_once_after_the_resume(tmp_path: Path) -> None:
    """A search pauses for a human while the others arrived: the join waits (in order and
    concurrently), and after the resume the writer runs once on every result."""
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    wl = CodonWorkload(name="PausedSource", version="1.0", org_namespace="tests")

    def plan(queries: list[str], *, runtime: Any, context: Any) -> None:
        for q in queries:
            runtime.emit("search", q)

    def search(query: str, *, runtime: Any, context: Any) -> None:
        if query == "b":
            query = runtime.interrupt("which b?")
        runtime.emit("write", query)

    wl.add_node(plan, "plan", "planner")
    wl.add_node(search, "search", "searcher")
    wl.add_node(lambda found, *, runtime, context: sorted(found), "write", "writer")
    wl.add_edge("plan", "search")
    wl.add_edge("search", "write")
    wl.add_join(["search"], "write")
    for concurrency in (1, 3):
        paused = wl.execute(
            ["a", "b", "c"], deployment_id="dev", store=store, max_concurrency=concurrency
        )
        assert paused.status == "interrupted"
        assert _joins(paused) == []
        resumed = wl.resume(paused.run_id, store=store, input="bee")
        assert resumed.node_results("write") == [["a", "bee", "c"]]
        assert len(_joins(resumed)) == 1


def test_replay_with_a_join_added_says_the_joins_changed(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = _fan_in(join=False).execute(["a", "b"], deployment_id="dev", store=store)
    replay = _fan_in().replay(report.run_id, store=store)
    assert replay.logic_changed
    assert replay.logic_diff["changed_joins"] == ["write"]
    assert "(changed nodes: none; joins changed: write)" in replay.summary()
    assert not replay.identical  # the writer ran once instead of twice


def test_a_stopped_run_counts_the_tokens_waiting_at_a_join_as_pending() -> None:
    """``runtime_stopped``'s ``pending`` counts tokens still queued and those waiting at
    joins: a search that stops the run leaves the searches that arrived before it."""
    wl = CodonWorkload(name="Stopper", version="1.0", org_namespace="tests")

    def plan(queries: list[str], *, runtime: Any, context: Any) -> None:
        for q in queries:
            runtime.emit("search", q)

    def search(query: str, *, runtime: Any, context: Any) -> None:
        if query == "stop":
            runtime.stop("enough")
            return
        runtime.emit("write", query)

    wl.add_node(plan, "plan", "planner")
    wl.add_node(search, "search", "searcher")
    wl.add_node(lambda found, *, runtime, context: found, "write", "writer")
    wl.add_edge("plan", "search")
    wl.add_edge("search", "write")
    wl.add_join(["search"], "write")
    report = wl.execute(["a", "b", "stop", "c"], deployment_id="d")
    assert report.status == "stopped"
    (stopped,) = [e for e in report.ledger if e.event_type == "runtime_stopped"]
    assert stopped.metadata["pending"] == 3  # a and b wait at the join, c is queued
