"""``cache``: what caching by identity costs per activation, hit and miss, on SQLite and
PostgreSQL, beside the same loop without a cache.

One run: a ``fan`` node emits 200 tokens with distinct payloads to a trivial ``work``
node (so what is measured is the cache, not the work). Contestants, per backend
(a SQLite file, and a throwaway PostgreSQL database on 127.0.0.1:5432 or
``CODON_BENCH_PG_URL``, skipped when no server answers), interleaved in each round:

* ``plain``: ``work`` without a cache policy, a fresh input each run;
* ``miss``: ``work`` with ``CachePolicy()``, a fresh input each run: every activation
  looks up, misses, runs, and indexes its completion (a flush, then a put);
* ``hit``: ``work`` with ``CachePolicy()`` on the input a warm-up run completed: every
  activation looks up, reads and checks its source in that run's ledger, and is served.

Figures: µs per ``work`` activation of each, and the cost of a lookup per activation,
(miss - plain) and (hit - plain), paired per round. No targets: the figures are quoted in
the caching guide.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, interleave
from bench.groups.durable import _postgres
from codon_sdk import CachePolicy, CodonWorkload, open_store

__all__ = ["run"]

GROUP = "cache"
FANOUT = 200


def _fan(salt: str, *, runtime: Any, context: Any) -> None:
    for i in range(FANOUT):
        runtime.emit("work", [salt, i])


def _work(item: list[Any], *, runtime: Any, context: Any) -> int:
    return int(item[1]) * 2


def _workload(cached: bool) -> CodonWorkload:
    workload = CodonWorkload(name="bench-cache", version="1.0", org_namespace="bench")
    workload.add_node(_fan, "fan", "worker")
    workload.add_node(_work, "work", "worker", cache=CachePolicy() if cached else None)
    workload.add_edge("fan", "work")
    return workload


def _loop(workload: CodonWorkload, store: Any, salt: Callable[[], str]) -> Callable[[], Any]:
    def run() -> Any:
        report = workload.execute(salt(), deployment_id="bench", store=store, max_steps=10_000)
        if report.status != "completed" or len(report.node_results("work")) != FANOUT:
            raise HarnessError(f"the cache bench run ended {report.status!r}")
        return report

    return run


def _contestants(backend: str, store: Any) -> list[Contestant]:
    plain, cached = _workload(False), _workload(True)
    fresh = lambda: uuid.uuid4().hex  # noqa: E731 - a new input: every lookup misses
    warm = uuid.uuid4().hex
    warmed = _loop(cached, store, lambda: warm)()  # the source every hit is served from
    hits = _loop(cached, store, lambda: warm)()
    if sum(1 for e in hits.events() if e.type == "cache_hit") != FANOUT:
        raise HarnessError(f"the {backend} hit run was not served from {warmed.run_id}")
    return [
        Contestant(f"{backend}_plain", _loop(plain, store, fresh)),
        Contestant(f"{backend}_miss", _loop(cached, store, fresh)),
        Contestant(f"{backend}_hit", _loop(cached, store, lambda: warm)),
    ]


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=5, quick=2)
    folder = Path(tempfile.mkdtemp(prefix="codon-bench-cache-"))
    stores: list[Any] = []
    results: list[Result] = []
    try:
        with _postgres() as pg_url:
            sqlite = open_store(f"sqlite:///{folder / 'cache.db'}", notary=None)
            stores.append(sqlite)
            contestants = _contestants("sqlite", sqlite)
            backends = ["sqlite"]
            if pg_url is not None:
                pg = open_store(pg_url, notary=None)
                stores.append(pg)
                contestants += _contestants("postgres", pg)
                backends.append("postgres")
            timings = interleave(contestants, reps)
            for store in stores:
                store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per = {name: [w / FANOUT * 1e6 for w in t.wall] for name, t in timings.items()}
    for backend in backends:
        for kind in ("plain", "miss", "hit"):
            stats = Stats.of(per[f"{backend}_{kind}"])
            results.append(
                Result(
                    GROUP,
                    f"{backend}_{kind}",
                    stats.median,
                    "µs/activation",
                    None,
                    f"{FANOUT} activations of work per run; {stats.describe()}",
                    tuple(per[f"{backend}_{kind}"]),
                )
            )
        for kind in ("miss", "hit"):
            extra = [
                c - p
                for c, p in zip(per[f"{backend}_{kind}"], per[f"{backend}_plain"], strict=True)
            ]
            stats = Stats.of(extra)
            results.append(
                Result(
                    GROUP,
                    f"{backend}_{kind}_cost",
                    stats.median,
                    "µs/activation",
                    None,
                    f"{kind} - plain per activation, paired per round; {stats.describe()}",
                    tuple(extra),
                )
            )
    if "postgres" not in backends:
        results.append(
            Result(GROUP, "postgres", None, "", None, "no PostgreSQL server answered", (), "SKIP")
        )
    return results
