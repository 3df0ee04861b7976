"""``durable``: the 10,000-step token loop with a durable ledger, against memory and raw inserts.

Contestants, interleaved in each round:

* ``memory``: the loop with the default in-memory ledger;
* ``sqlite``: the same loop with ``store="sqlite:///<fresh file>"`` and the default
  durability (``batch``: write-behind group commit at step boundaries), timed until
  ``execute`` returns, i.e. until every event is committed;
* ``sqlite_raw``: one ``executemany`` inserting the same rows (the entries of a
  recorded run of the same loop: run id, seq, entry bytes, leaf hash) into the
  events table of a fresh ledger file, in one transaction, with the store's
  schema (its indexes and append-only triggers included);
* the same two against PostgreSQL (a throwaway database on 127.0.0.1:5432, or
  ``CODON_BENCH_PG_URL``), beside them; skipped when no server answers.

Targets (DESIGN.md section 7): the durable SQLite loop costs at most 3x the
in-memory loop per step, and writes at least 40% as many events per second as
the raw insert of the same rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, Target, interleave
from bench._loops import DEPLOYMENT, NODE, make_node, seed_payload
from codon_sdk import CodonWorkload, SQLiteStore, open_store
from codon_sdk.ledger._merkle import leaf_hash

__all__ = ["run"]

GROUP = "durable"
STEPS = 10_000
VS_MEMORY = Target("<=", 3.0)
VS_RAW = Target(">=", 0.40)
PG_ADMIN = os.environ.get(
    "CODON_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _workload() -> CodonWorkload:
    workload = CodonWorkload(name="bench-durable", version="1.0", org_namespace="bench")
    workload.add_node(make_node("token", STEPS), NODE, "worker")
    workload.add_edge(NODE, NODE)
    return workload


def _loop(workload: CodonWorkload, store: Callable[[], Any] | None) -> Callable[[], Any]:
    def run() -> Any:
        target = None if store is None else store()
        return workload.execute(
            seed_payload("token"),
            deployment_id=DEPLOYMENT,
            max_steps=STEPS,
            store=target,
            run_id=uuid.uuid4().hex,
        )

    return run


def _check(report: Any) -> None:
    """The warm-up run of a loop contestant did what it claims (outside the timings)."""
    if report is None or isinstance(report, int):
        return
    if report.status != "completed" or len(report.node_results(NODE)) != STEPS:
        raise HarnessError(f"durable loop ended {report.status!r}")


def _rows(workload: CodonWorkload) -> list[tuple[str, int, bytes, bytes]]:
    """The rows one run of the loop writes: (run id, seq, entry, leaf hash)."""
    report = workload.execute(seed_payload("token"), deployment_id=DEPLOYMENT, max_steps=STEPS)
    return [(report.run_id, seq, e, leaf_hash(e)) for seq, e in enumerate(report.entries)]


def _sqlite_raw(folder: Path, rows: list[tuple[str, int, bytes, bytes]]) -> Callable[[], int]:
    def run() -> int:
        path = folder / f"raw-{uuid.uuid4().hex}.db"
        SQLiteStore(path).close()  # the store's schema, triggers and pragmas
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO codon_events VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return len(rows)

    return run


@contextlib.contextmanager
def _postgres() -> Iterator[str | None]:
    """A throwaway database URL, or None when no server answers."""
    if os.environ.get("CODON_BENCH_PG_URL"):
        yield os.environ["CODON_BENCH_PG_URL"]
        return
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception:
        yield None
        return
    name = f"codon_bench_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_raw(url: str, rows: list[tuple[str, int, bytes, bytes]]) -> Callable[[], int]:
    import psycopg

    def run() -> int:
        run_id = uuid.uuid4().hex
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO codon_events (run_id, seq, entry, leaf_hash) VALUES (%s, %s, %s, %s)",
                [(run_id, seq, entry, leaf) for _, seq, entry, leaf in rows],
            )
        return len(rows)

    return run


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=5, quick=2)
    workload = _workload()
    rows = _rows(workload)
    folder = Path(tempfile.mkdtemp(prefix="codon-bench-durable-"))
    try:
        with _postgres() as pg_url:
            pg_store = open_store(pg_url, notary=None) if pg_url else None
            contestants = [
                Contestant("memory", _loop(workload, None)),
                Contestant(
                    "sqlite",
                    _loop(
                        workload,
                        lambda: open_store(
                            f"sqlite:///{folder / uuid.uuid4().hex}.db", notary=None
                        ),
                    ),
                ),
                Contestant("sqlite_raw", _sqlite_raw(folder, rows)),
            ]
            if pg_store is not None:
                contestants += [
                    Contestant("postgres", _loop(workload, lambda: pg_store)),
                    Contestant("postgres_raw", _pg_raw(pg_url or "", rows)),
                ]
            for contestant in contestants:  # warm-up, checked
                _check(contestant.run())
            timings = interleave(contestants, reps)
            if pg_store is not None:
                pg_store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _results(timings, len(rows), pg=pg_store is not None)


def _results(timings: dict[str, Any], events: int, *, pg: bool) -> list[Result]:
    per_step = {name: [w / STEPS * 1e6 for w in t.wall] for name, t in timings.items()}
    rate = {name: [events / w for w in t.wall] for name, t in timings.items()}
    results: list[Result] = []
    for name in ("memory", "sqlite", "postgres"):
        if name in per_step:
            stats = Stats.of(per_step[name])
            results.append(
                Result(
                    GROUP,
                    f"{name}_loop",
                    stats.median,
                    "µs/step",
                    None,
                    f"{STEPS:,} steps, {events:,} events; {stats.describe()}",
                    tuple(per_step[name]),
                )
            )
    for backend in ("sqlite", "postgres") if pg else ("sqlite",):
        over = [d / m for d, m in zip(per_step[backend], per_step["memory"], strict=True)]
        share = [d / r for d, r in zip(rate[backend], rate[f"{backend}_raw"], strict=True)]
        stats_over, stats_share = Stats.of(over), Stats.of(share)
        raw_rate = Stats.of(rate[f"{backend}_raw"]).median
        loop_rate = Stats.of(rate[backend]).median
        results += [
            Result(
                GROUP,
                f"{backend}_over_memory",
                stats_over.median,
                "x",
                VS_MEMORY if backend == "sqlite" else None,
                f"durable {backend} loop / in-memory loop per step; {stats_over.describe()}",
                tuple(over),
            ),
            Result(
                GROUP,
                f"{backend}_share_of_raw_insert",
                stats_share.median,
                "x",
                VS_RAW if backend == "sqlite" else None,
                f"events/s of the durable loop ({loop_rate:,.0f}) / raw executemany of the "
                f"same rows ({raw_rate:,.0f}); {stats_share.describe()}",
                tuple(share),
            ),
        ]
    if not pg:
        results.append(
            Result(GROUP, "postgres", None, "", None, "no PostgreSQL server answered", (), "SKIP")
        )
    return results
