"""``explorer``: API time of the run explorer's pages over a big store and a big run.

Set-up, not timed: a temporary SQLite ledger holding 10,000 real runs of a one-node
workload (``--quick``: 2,000) over two deployments, and one real run of 100,002 events (a
self-loop of 25,000 activations, four events each; ``--quick``: 20,002). The explorer is
served by its real uvicorn server in a thread; every request goes through HTTP on
loopback with ``httpx``, as the pages send them.

Contestants (median wall time per request, interleaved round by round):

* ``runs_page``: ``/api/runs?limit=50``, the runs page (each run's summary and verdict
  from the per-run cache, kept for ``RECHECK_S``);
* ``runs_page_20th``: the 20th page (``offset=950``);
* ``runs_filtered``: deployment and run-id search (``deployment=staging&q=77``);
* ``runs_page_cold``: the first page with its 50 runs dropped from the cache first: 50
  runs read and verified from the store;
* ``runs_listing_read``: reading the listing of every run (what the explorer does once,
  then aside every few seconds; no target: not a page);
* ``big_run_*``: pages of the 100,002-event run once it is open: the run page's header
  (``/api/runs/ID``), an activations page deep in the run, an events page deep in the
  run, one activation's panel, one token's lineage;
* ``big_run_open``: opening the big run with the cache dropped (read, verify, index it:
  paid once, then aside when the run grows; no target: not a page).

Target: every page under 100 ms. Memory: ``tracemalloc`` growth over 300 page requests,
measured after 100 traced warm-up requests (so objects replaced during the measurement
were traced when they were made), with the periodic re-verification paused (it reads a
run whole, aside; it is not a page's memory). Target: under 5 MB, i.e. flat.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._harness import (
    Contestant,
    HarnessError,
    Result,
    Settings,
    Stats,
    Target,
    fmt_number,
    interleave,
)
from codon_sdk import CodonWorkload, LedgerStore, open_store
from codon_sdk.ui import ExplorerServer

__all__ = ["run"]

GROUP = "explorer"
BIG = "bench-big-run"
PAGE_MS = Target("<=", 100.0)
MEMORY_KB = Target("<=", 5 * 1024.0)
_ONE_OFF = ("runs_listing_read", "big_run_open")  # not pages: informational rows


def _small() -> CodonWorkload:
    def answer(item: Any, *, runtime: Any, context: Any) -> Any:
        return {"answer": item * 2}

    workload = CodonWorkload(name="bench-small", version="1", org_namespace="bench")
    workload.add_node(answer, "answer", "worker")
    return workload


def _loop(steps: int) -> CodonWorkload:
    def step(message: Any, *, runtime: Any, context: Any) -> Any:
        i = message["i"]
        runtime.state["last"] = i
        if i + 1 < steps:
            runtime.emit("step", {"i": i + 1})
        return {"i": i}

    workload = CodonWorkload(name="bench-big", version="1", org_namespace="bench")
    workload.add_node(step, "step", "worker")
    workload.add_edge("step", "step")
    return workload


class _Ledger:
    def __init__(self, runs: int, steps: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="codon-bench-explorer-"))
        self.store: LedgerStore = open_store(f"sqlite:///{self.directory / 'ledger.db'}")
        _loop(steps).execute(
            {"i": 0}, deployment_id="bench", store=self.store, run_id=BIG, max_steps=steps
        )
        small = _small()
        for i in range(runs - 1):
            small.execute(
                i,
                deployment_id="staging" if i % 2 else "prod",
                store=self.store,
                run_id=f"bench-run-{i:05d}",
            )
        self.runs = runs
        self.events = self.store.get_run(BIG).event_count
        if self.events != steps * 4 + 2:
            raise HarnessError(f"the big run has {self.events} events, not {steps * 4 + 2}")

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _getter(http: httpx.Client, path: str, check: Callable[[Any], bool]) -> Callable[[], None]:
    def get() -> None:
        response = http.get(path)
        if response.status_code != 200 or not check(response.json()):
            raise HarnessError(f"GET {path}: {response.status_code} {response.text[:200]}")

    return get


def run(settings: Settings) -> list[Result]:
    runs, steps = (2_000, 5_000) if settings.quick else (10_000, 25_000)
    reps = settings.reps(full=15, quick=5)
    ledger = _Ledger(runs, steps)
    try:
        with (
            ExplorerServer(ledger.store, port=0) as server,
            httpx.Client(base_url=server.base_url, timeout=120) as http,
        ):
            return _measure(server, http, ledger, reps)
    finally:
        ledger.close()


def _contestants(server: ExplorerServer, http: httpx.Client, ledger: _Ledger) -> list[Contestant]:
    explorer = server.app.state.explorer
    acts = (ledger.events - 2) // 4
    full = _getter(http, "/api/runs?limit=50", lambda b: len(b["items"]) == 50)

    first_page = [f"bench-run-{i:05d}" for i in range(ledger.runs - 2, ledger.runs - 52, -1)]

    def cold() -> None:
        explorer.forget(first_page)  # the big run stays open
        full()

    def open_big() -> None:
        explorer.forget()
        _getter(http, f"/api/runs/{BIG}", lambda b: b["run"]["event_count"] == ledger.events)()

    def listing() -> None:
        if len(explorer._read_listing()) != ledger.runs:
            raise HarnessError("the runs listing does not hold every run")

    return [
        Contestant("runs_page", full),
        Contestant(
            "runs_page_20th",
            _getter(http, "/api/runs?offset=950&limit=50", lambda b: b["items"][0] is not None),
        ),
        Contestant(
            "runs_filtered",
            _getter(http, "/api/runs?deployment=staging&q=77&limit=50", lambda b: b["total"] > 0),
        ),
        Contestant("runs_page_cold", cold),
        Contestant("runs_listing_read", listing),
        Contestant(
            "big_run_header",
            _getter(
                http, f"/api/runs/{BIG}", lambda b: b["verification"]["status"] == "unanchored"
            ),
        ),
        Contestant(
            "big_run_activations",
            _getter(
                http,
                f"/api/runs/{BIG}/activations?offset={acts // 2}&limit=200",
                lambda b: len(b["items"]) == 200,
            ),
        ),
        Contestant(
            "big_run_events",
            _getter(
                http,
                f"/api/runs/{BIG}/events?offset={ledger.events // 2}&limit=100",
                lambda b: len(b["items"]) == 100,
            ),
        ),
        Contestant(
            "big_run_activation",
            _getter(
                http, f"/api/runs/{BIG}/activations/{acts - 10}", lambda b: b["node"] == "step"
            ),
        ),
        Contestant(
            "big_run_token",
            _getter(
                http, f"/api/runs/{BIG}/tokens/t{acts // 3}", lambda b: b["emitted_by"] is not None
            ),
        ),
        Contestant("big_run_open", open_big),
    ]


def _measure(
    server: ExplorerServer, http: httpx.Client, ledger: _Ledger, reps: int
) -> list[Result]:
    contestants = _contestants(server, http, ledger)
    for c in contestants:
        c.run()  # warm-up, checked
    contestants[-1].run()  # leave the big run open for the pages
    timings = interleave(contestants, reps)
    where = f"{ledger.runs:,} runs; big run {ledger.events:,} events"
    results = []
    for c in contestants:
        wall = Stats.of([s * 1000 for s in timings[c.name].wall])
        results.append(
            Result(
                GROUP,
                c.name,
                wall.median,
                "ms",
                None if c.name in _ONE_OFF else PAGE_MS,
                f"{where}; HTTP on loopback; {wall.describe()}; {timings[c.name].cpu_note('s')}",
                tuple(s * 1000 for s in timings[c.name].wall),
            )
        )
    pages = [c for c in contestants if c.name not in (*_ONE_OFF, "runs_page_cold")]
    results.append(_memory(server.app.state.explorer, pages))
    return results


def _memory(explorer: Any, pages: list[Contestant]) -> Result:
    """Traced memory growth over 300 page requests (everything already opened once; the
    periodic re-verification, which reads a run whole aside, is paused meanwhile: it is
    not a page's memory)."""
    explorer.recheck_s = 3600.0
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(100):
            pages[i % len(pages)].run()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            pages[i % len(pages)].run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    growth_kb = (after - before) / 1024
    return Result(
        GROUP,
        "memory_growth",
        growth_kb,
        "kB",
        MEMORY_KB,
        f"tracemalloc over 300 page requests after 100 traced ones ({len(pages)} kinds of "
        "page); "
        f"{fmt_number(growth_kb / 300)} kB/request",
        (growth_kb,),
    )
