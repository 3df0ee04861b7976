"""``peers``: durable runs against the durable engines users would pick instead.

Peers (the ``bench`` extra: ``pip install "codon-sdk[bench]"``; each is skipped with
a note when it is not installed): DBOS (one workflow calling three steps, or one
step a thousand times; its system database in SQLite or PostgreSQL) and LangGraph
(a ``StateGraph`` of three nodes, or one node looping a thousand times, with its
``SqliteSaver`` or ``PostgresSaver`` checkpointer).

Scenarios, on SQLite (a fresh file per contestant) and on PostgreSQL (one throwaway
database on 127.0.0.1:5432, or ``CODON_BENCH_PG_URL``):

* ``short``: ``RUNS`` separate 3-step runs (2,000; ``--quick`` 100), runs per second;
* ``long``: one 1,000-step run, steps per second;
* ``threads`` (PostgreSQL only): ``RUNS`` 3-step runs made by 50 threads at once.

Durability modes are paired as they promise the same: Codon ``sync`` (every completed
step committed before the next starts) with LangGraph ``durability="sync"`` and with
DBOS (which always commits each step before the next); Codon ``batch`` (write-behind
group commit) with LangGraph ``"async"``; Codon ``exit`` with LangGraph ``"exit"``.
Every Codon contestant writes through one store per backend, opened once (as
``execute(store=url)`` now does by itself). Contestants run interleaved, one sample
each per round; a ratio is Codon's rate over the peer's. Target: at least 2x in every
pairing (3x for ``threads``).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypedDict

from bench._harness import (
    Contestant,
    HarnessError,
    Result,
    Settings,
    Stats,
    Target,
    interleave,
    paired_ratios,
)
from bench.groups.durable import _postgres
from codon_sdk import CodonWorkload, open_store

__all__ = ["run"]

GROUP = "peers"
LONG_STEPS = 1_000
THREADS = 50
VS_PEER = Target(">=", 2.0)
VS_PEER_THREADS = Target(">=", 3.0)
# (codon mode, peer contestant) pairs compared, per scenario
PAIRS = (
    ("sync", "langgraph_sync"),
    ("sync", "dbos"),
    ("batch", "langgraph_async"),
    ("exit", "langgraph_exit"),
)
_LG_MODES = {"langgraph_sync": "sync", "langgraph_async": "async", "langgraph_exit": "exit"}


# --------------------------------------------------------------------------- Codon


def _codon_short() -> CodonWorkload:
    workload = CodonWorkload(name="bench-peers", version="1.0", org_namespace="bench")
    chain = (("a", "b"), ("b", "c"), ("c", None))
    for name, following in chain:
        workload.add_node(_inc(following), name, "worker")
    for name, following in chain:
        if following is not None:
            workload.add_edge(name, following)
    return workload


def _inc(following: str | None) -> Callable[..., int]:
    def node(message: int, *, runtime: Any, context: Any) -> int:
        if following is not None:
            runtime.emit(following, message + 1)
        return message + 1

    return node


def _codon_long() -> CodonWorkload:
    last = LONG_STEPS - 1

    def loop(message: int, *, runtime: Any, context: Any) -> int:
        if message < last:
            runtime.emit("loop", message + 1)
        return message

    workload = CodonWorkload(name="bench-peers-long", version="1.0", org_namespace="bench")
    workload.add_node(loop, "loop", "worker")
    workload.add_edge("loop", "loop")
    return workload


def _codon(store: Any, mode: str, kind: str) -> Callable[[int], None]:
    workload = _codon_short() if kind != "long" else _codon_long()

    def one(_: int) -> None:
        report = workload.execute(
            0,
            deployment_id="bench",
            store=store,
            durability=mode,
            run_id=uuid.uuid4().hex,
            max_steps=LONG_STEPS,
        )
        done = report.node_results("c" if kind != "long" else "loop")
        if report.status != "completed" or done[-1] != (3 if kind != "long" else LONG_STEPS - 1):
            raise HarnessError(f"a Codon {mode} run ended {report.status!r} with {done[-1:]}")

    return one


# --------------------------------------------------------------------------- LangGraph


class _State(TypedDict):
    i: int


def _lg_app(checkpointer: Any, kind: str) -> Any:
    from langgraph.graph import END, START, StateGraph

    def inc(state: _State) -> _State:
        return {"i": state["i"] + 1}

    graph = StateGraph(_State)
    if kind == "long":
        graph.add_node("loop", inc)
        graph.add_edge(START, "loop")
        graph.add_conditional_edges(
            "loop", lambda s: END if s["i"] >= LONG_STEPS else "loop", ["loop", END]
        )
    else:
        for name in "abc":
            graph.add_node(name, inc)
        graph.add_edge(START, "a")
        graph.add_edge("a", "b")
        graph.add_edge("b", "c")
        graph.add_edge("c", END)
    return graph.compile(checkpointer=checkpointer)


def _langgraph(app: Any, mode: str, kind: str) -> Callable[[int], None]:
    expected = LONG_STEPS if kind == "long" else 3
    limit = {"recursion_limit": LONG_STEPS + 10}

    def one(_: int) -> None:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}, **limit}
        out = app.invoke({"i": 0}, config, durability=mode)
        if out["i"] != expected:
            raise HarnessError(f"a LangGraph {mode} run returned {out}")

    return one


# --------------------------------------------------------------------------- DBOS

_DBOS_FUNCTIONS: dict[str, Any] = {}


def _dbos_functions() -> dict[str, Any]:
    """The DBOS workflows, registered once per process (DBOS keeps a global registry)."""
    if not _DBOS_FUNCTIONS:
        from dbos import DBOS

        @DBOS.step()
        def codon_bench_step(i: int) -> int:
            return i + 1

        @DBOS.workflow()
        def codon_bench_short(i: int) -> int:
            return int(codon_bench_step(codon_bench_step(codon_bench_step(i))))

        @DBOS.workflow()
        def codon_bench_long(i: int) -> int:
            for _ in range(LONG_STEPS):
                i = codon_bench_step(i)
            return i

        _DBOS_FUNCTIONS.update(short=codon_bench_short, long=codon_bench_long)
    return _DBOS_FUNCTIONS


@contextmanager
def _dbos_session(url: str) -> Iterator[None]:
    from dbos import DBOS

    _dbos_functions()
    DBOS(
        config={
            "name": "codon-bench",
            "system_database_url": url,
            "log_level": "ERROR",
            "sys_db_pool_size": THREADS + 5,
        }
    )
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy(destroy_registry=False)


def _dbos(kind: str) -> Callable[[int], None]:
    workflow = _dbos_functions()["long" if kind == "long" else "short"]
    expected = LONG_STEPS if kind == "long" else 3

    def one(_: int) -> None:
        if workflow(0) != expected:
            raise HarnessError("a DBOS workflow returned a wrong result")

    return one


# --------------------------------------------------------------------------- measuring


def _batch(one: Callable[[int], None], runs: int, threads: int) -> Callable[[], None]:
    """One sample: ``runs`` runs one after the other, or spread over ``threads`` threads."""

    def serial() -> None:
        for i in range(runs):
            one(i)

    def spread() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(runs)))

    return serial if threads <= 1 else spread


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _backend_contestants(
    stack: ExitStack, backend: str, url: str, folder: Path, kind: str
) -> dict[str, Callable[[int], None]]:
    """One run of each contestant (name -> callable)."""
    codon_store = stack.enter_context(open_store(url, notary=None))
    ones = {f"codon_{mode}": _codon(codon_store, mode, kind) for mode in ("sync", "batch", "exit")}
    saver = (
        "langgraph.checkpoint.sqlite" if backend == "sqlite" else "langgraph.checkpoint.postgres"
    )
    if _installed(saver):
        app = _lg_app(stack.enter_context(_lg_saver(backend, url, folder)), kind)
        ones.update({name: _langgraph(app, mode, kind) for name, mode in _LG_MODES.items()})
    if _installed("dbos"):
        ones["dbos"] = _dbos(kind)
    return ones


@contextmanager
def _lg_saver(backend: str, url: str, folder: Path) -> Iterator[Any]:
    if backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(folder / f"langgraph-{uuid.uuid4().hex}.db", check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()
        return
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    with ConnectionPool(url, max_size=THREADS, kwargs=kwargs, open=True) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        yield saver


def run(settings: Settings) -> list[Result]:
    runs = 100 if settings.quick else 2_000
    reps = settings.reps(full=1, quick=1)
    results: list[Result] = []
    missing = [m for m in ("dbos", "langgraph.checkpoint.sqlite") if not _installed(m)]
    if missing:
        results.append(
            Result(
                GROUP,
                "peers",
                None,
                "",
                details=f"not installed: {', '.join(missing)} (pip install 'codon-sdk[bench]')",
                status="SKIP",
            )
        )
    folder = Path(tempfile.mkdtemp(prefix="codon-bench-peers-"))
    try:
        with _postgres() as pg_url:
            backends = [("sqlite", f"sqlite:///{folder / 'codon.db'}")]
            if pg_url is None:
                results.append(
                    Result(GROUP, "postgres", None, "", None, "no PostgreSQL server", (), "SKIP")
                )
            else:
                backends.append(("postgres", pg_url))
            for backend, url in backends:
                results += _backend(backend, url, folder, runs, reps)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _backend(backend: str, url: str, folder: Path, runs: int, reps: int) -> list[Result]:
    results: list[Result] = []
    dbos_url = (
        f"sqlite:///{folder / f'dbos-{uuid.uuid4().hex}.sqlite'}" if backend == "sqlite" else url
    )
    kinds = ["short", "long"] + (["threads"] if backend == "postgres" else [])
    with ExitStack() as stack:
        if _installed("dbos"):
            stack.enter_context(_dbos_session(dbos_url))
        for kind in kinds:
            ones = _backend_contestants(stack, backend, url, folder, kind)
            for one in ones.values():  # warm-up, checked (every run checks its result)
                for i in range(3):
                    one(i)
            threads = THREADS if kind == "threads" else 1
            count = 1 if kind == "long" else runs
            contestants = [Contestant(n, _batch(one, count, threads)) for n, one in ones.items()]
            timings = interleave(contestants, reps)
            results += _rates(backend, kind, runs, timings)
    return results


def _rates(backend: str, kind: str, runs: int, timings: dict[str, Any]) -> list[Result]:
    unit, per = ("steps/s", LONG_STEPS) if kind == "long" else ("runs/s", runs)
    rate = {name: [per / w for w in t.wall] for name, t in timings.items()}
    where = (
        f"one {LONG_STEPS:,}-step run"
        if kind == "long"
        else f"{runs:,} 3-step runs" + (f" from {THREADS} threads" if kind == "threads" else "")
    )
    results = [
        Result(
            GROUP,
            f"{backend}_{kind}_{name}",
            Stats.of(values).median,
            unit,
            None,
            f"{where}; {Stats.of(values).describe()}",
            tuple(values),
        )
        for name, values in rate.items()
    ]
    target = VS_PEER_THREADS if kind == "threads" else VS_PEER
    for mode, peer in PAIRS:
        ours = f"codon_{mode}"
        if peer not in rate or ours not in rate:
            continue
        ratios = paired_ratios(rate[ours], rate[peer])
        stats = Stats.of(ratios)
        results.append(
            Result(
                GROUP,
                f"{backend}_{kind}_{mode}_vs_{peer}",
                stats.median,
                "x",
                target,
                f"{ours} {unit} / {peer} {unit} ({where}); {stats.describe()}",
                tuple(ratios),
            )
        )
    return results
