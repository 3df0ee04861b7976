"""``bytes``: what one step of the 10,000-step ``state`` self-loop costs in bytes.

* ``sqlite``: the loop run into a fresh SQLite ledger (default durability); the file's
  growth (its write-ahead log checkpointed into it: the store is closed) over an empty
  ledger's size, per step;
* ``postgres``: the same loop into a throwaway PostgreSQL database; the growth of
  ``pg_total_relation_size`` (table, indexes, TOAST) of the events and runs tables, per
  step (after ``VACUUM``-free inserts: what a writer leaves behind);
* ``memory``: bytes per step a finished run retains, measured exactly as the ``memory``
  group does (a fresh child process, tracemalloc; 100,000 steps, ``--quick`` 20,000).

Targets (issue 14, "half the bytes"): at most 500 bytes per step on disk and 512
retained in memory. Each figure is a single measurement: sizes do not vary between runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench._harness import HarnessError, Result, Settings, Target, fmt_number
from bench._loops import DEPLOYMENT, NODE, make_node
from bench.groups.durable import _postgres
from bench.groups.memory import _measure_in_child
from codon_sdk import CodonWorkload, open_store

__all__ = ["run"]

GROUP = "bytes"
STEPS = 10_000
DISK = Target("<=", 500.0)
MEMORY = Target("<=", 512.0)


def _loop(steps: int) -> CodonWorkload:
    workload = CodonWorkload(name="bench-bytes", version="1.0", org_namespace="bench")
    workload.add_node(make_node("state", steps), NODE, "worker")
    workload.add_edge(NODE, NODE)
    return workload


def _execute(store: Any, steps: int) -> int:
    report = _loop(steps).execute(
        None, deployment_id=DEPLOYMENT, max_steps=steps, store=store, run_id=uuid.uuid4().hex
    )
    if report.status != "completed" or len(report.node_results(NODE)) != steps:
        raise HarnessError(f"the bytes loop ended {report.status!r}")
    return report.event_count


def _sqlite(folder: Path, steps: int) -> Result:
    path = folder / "bytes.db"
    open_store(f"sqlite:///{path}", notary=None).close()
    empty = os.path.getsize(path)
    store = open_store(f"sqlite:///{path}", notary=None)
    events = _execute(store, steps)
    store.close()
    grown = os.path.getsize(path) - empty
    return Result(
        GROUP,
        "sqlite_per_step",
        grown / steps,
        "B/step",
        DISK,
        f"{steps:,} steps, {events:,} events ({fmt_number(grown / events)} B/event); file growth "
        "over an empty ledger, WAL checkpointed",
    )


def _pg_size(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('codon_events') + pg_total_relation_size('codon_runs')"
        ).fetchone()
    return int(row[0]) if row else 0


def _postgres_result(url: str, steps: int) -> Result:
    store = open_store(url, notary=None)
    try:
        _execute(store, 10)  # the tables exist and hold a run: what grows next is one run
        before = _pg_size(url)
        events = _execute(store, steps)
    finally:
        store.close()
    grown = _pg_size(url) - before
    return Result(
        GROUP,
        "postgres_per_step",
        grown / steps,
        "B/step",
        DISK,
        f"{steps:,} steps, {events:,} events ({fmt_number(grown / events)} B/event); growth of "
        "pg_total_relation_size(codon_events + codon_runs)",
    )


def run(settings: Settings) -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="codon-bench-bytes-"))
    try:
        results = [_sqlite(folder, STEPS)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with _postgres() as url:
        if url is None:
            results.append(
                Result(GROUP, "postgres", None, "", None, "no PostgreSQL server", (), "SKIP")
            )
        else:
            results.append(_postgres_result(url, STEPS))
    steps = 20_000 if settings.quick else 100_000
    m = _measure_in_child("state", steps)
    retained = (m["traced_bytes"] - m["result_bytes"] - m["slot_bytes"]) / steps
    results.append(
        Result(
            GROUP,
            "memory_retained_per_step",
            retained,
            "B/step",
            MEMORY,
            f"{steps:,}-step state loop, tracemalloc in a fresh process (the memory group's "
            f"method); ledger entries {fmt_number(m['ledger_bytes'] / steps)} B/step",
        )
    )
    return results
