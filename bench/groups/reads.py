"""``reads``: pages of ``runs list`` over 100,000 runs, on SQLite and PostgreSQL.

Set-up, not timed: a fresh store (a temporary SQLite file; a throwaway PostgreSQL
database) holding 100,000 runs (``--quick``: 20,000). 99,000 of them are rows of the runs
index written by one SQL statement, the shape ``begin_run`` writes (three workloads,
four deployments, the five statuses, a fork every 97th run, one start every 10 ms);
the newest 1,000 are real runs of a one-node workload made through ``execute``. Listing
reads the runs index only, so the pages cost what they would over 100,000 real runs.

Contestants (median wall time per page, interleaved round by round), each through the
documented API, ``store.runs(...)`` on an open store, and the first through the CLI too:

* ``first_page``: the newest 50 runs;
* ``deep_page``: 50 runs after a run 90% of the way down (keyset paging: ``after=``);
* ``by_workload_status``: one workload's failed runs, 50;
* ``by_deployment_since``: one deployment's runs of the last quarter of the time range;
* ``by_parent``: the forks of one run;
* ``cli_page`` (SQLite): ``codon runs list --workload ... --limit 50`` run in-process
  (argument parsing, opening the store, the query, the printed table; not the
  interpreter's start-up).

Target: every page under 50 ms.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, Target, interleave
from bench.groups.durable import _postgres
from codon_sdk import CodonWorkload, LedgerStore, open_store
from codon_sdk.cli import main as codon_main

__all__ = ["run"]

GROUP = "reads"
PAGE_MS = Target("<=", 50.0)
REAL = 1_000
T0 = 1_700_000_000_000_000  # microseconds; the synthetic rows start here, 10 ms apart

# The runs-index rows ``begin_run`` would write, made by one statement. SQLite counts
# with a recursive CTE, PostgreSQL with generate_series; the columns are the same.
_COLUMNS = (
    "run_id, workload_name, workload_version, logic_id, deployment_id, status, "
    "started_us, finished_us, event_count, head, parent_run_id, owner, heartbeat_us"
)


def _row(mod: Callable[[int], str]) -> str:
    """The select list of the synthetic rows; ``mod(k)`` is the dialect's ``n mod k``."""
    return (
        f"'bench-' || n, 'workload-' || {mod(3)}, '1.0.0', 'logic-' || {mod(3)}, "
        f"'dep-' || {mod(4)}, "
        f"CASE {mod(5)} WHEN 0 THEN 'completed' WHEN 1 THEN 'failed' "
        "WHEN 2 THEN 'interrupted' WHEN 3 THEN 'running' ELSE 'stopped' END, "
        f"{T0} + n * 10000, {T0} + n * 10000 + 5000, 4, NULL, "
        f"CASE WHEN {mod(97)} = 0 AND n > 0 THEN 'bench-0' ELSE NULL END, NULL, NULL"
    )


_SQLITE_FILL = (
    "WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
    f"INSERT INTO codon_runs ({_COLUMNS}) SELECT {_row(lambda k: f'(n % {k})')} FROM c"
)
_PG_FILL = (
    f"INSERT INTO codon_runs ({_COLUMNS}) "
    f"SELECT {_row(lambda k: f'mod(n, {k})')} FROM generate_series(0, %s) AS n"
)


def _real_runs(store: LedgerStore) -> None:
    workload = CodonWorkload(name="workload-real", version="1.0.0", org_namespace="bench")
    workload.add_node(lambda message, *, runtime, context: message, "echo", "worker")
    for i in range(REAL):
        workload.execute(i, deployment_id="dep-real", store=store, durability="exit")


def _fill_sqlite(path: Path, synthetic: int) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(_SQLITE_FILL, (synthetic - 1,))
        conn.execute("ANALYZE")


def _fill_postgres(url: str, synthetic: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_PG_FILL, (synthetic - 1,))
        conn.execute("ANALYZE codon_runs")


def _check(runs: list[Any], at_least: int) -> None:
    if len(runs) < at_least:
        raise HarnessError(f"a page held {len(runs)} runs, expected at least {at_least}")


def _contestants(store: LedgerStore, synthetic: int, url: str | None) -> list[Contestant]:
    from datetime import datetime, timedelta, timezone

    deep = f"bench-{synthetic // 10}"  # 90% of the way down, newest first
    since = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
        microseconds=T0 + (synthetic * 3 // 4) * 10_000
    )

    def page(check: int, **filters: Any) -> Callable[[], None]:
        return lambda: _check(store.runs(**filters), check)

    contestants = [
        Contestant("first_page", page(50, limit=50)),
        Contestant("deep_page", page(50, limit=50, after=deep)),
        Contestant(
            "by_workload_status",
            page(50, workload_name="workload-1", status="failed", limit=50),
        ),
        Contestant(
            "by_deployment_since",
            page(50, deployment_id="dep-2", since=since, limit=50),
        ),
        Contestant("by_parent", page(10, parent_run_id="bench-0", limit=50)),
    ]
    if url is not None:

        def cli() -> None:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = codon_main(
                    ["runs", "list", "--ledger", url, "--workload", "workload-2", "--limit", "50"]
                )
            if code != 0 or out.getvalue().count("workload-2:1.0.0") != 50:
                raise HarnessError(f"codon runs list exited {code}: {out.getvalue()[:200]}")

        contestants.append(Contestant("cli_page", cli))
    return contestants


def _measure(
    backend: str, store: LedgerStore, synthetic: int, url: str | None, reps: int
) -> list[Result]:
    contestants = _contestants(store, synthetic, url)
    for c in contestants:
        c.run()  # warm-up, checked
    timings = interleave(contestants, reps)
    where = f"{backend}, {synthetic + REAL:,} runs"
    results = []
    for c in contestants:
        wall = Stats.of([s * 1000 for s in timings[c.name].wall])
        results.append(
            Result(
                GROUP,
                f"{backend}_{c.name}",
                wall.median,
                "ms",
                PAGE_MS,
                f"{where}; {wall.describe()}; {timings[c.name].cpu_note('s')}",
                tuple(s * 1000 for s in timings[c.name].wall),
            )
        )
    return results


def _backend(
    backend: str, url: str, fill: Callable[[], None], cli_url: str | None, sizes: tuple[int, int]
) -> list[Result]:
    """Open ``url``, fill it (the synthetic rows, then the real runs), measure its pages."""
    synthetic, reps = sizes
    store = open_store(url)
    try:
        fill()
        _real_runs(store)
        return _measure(backend, store, synthetic, cli_url, reps)
    finally:
        store.close()


def run(settings: Settings) -> list[Result]:
    synthetic = (20_000 if settings.quick else 100_000) - REAL
    sizes = (synthetic, settings.reps(full=15, quick=5))
    directory = Path(tempfile.mkdtemp(prefix="codon-bench-reads-"))
    try:
        path = directory / "ledger.db"
        url = f"sqlite:///{path}"
        results = _backend("sqlite", url, lambda: _fill_sqlite(path, synthetic), url, sizes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    with _postgres() as pg_url:
        if pg_url is None:
            skipped = Result(GROUP, "postgres", None, "", None, "no PostgreSQL server", (), "SKIP")
            return [*results, skipped]
        filled = pg_url
        return results + _backend(
            "postgres", pg_url, lambda: _fill_postgres(filled, synthetic), None, sizes
        )
