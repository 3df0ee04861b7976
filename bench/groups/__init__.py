"""Benchmark groups: one module each, exposing ``run(settings) -> list[Result]``.

To add a group (a durable ledger, verification throughput, tracing overhead,
an adapter...), write ``bench/groups/<name>.py`` with a module docstring saying
what it measures and a ``run`` function, then list it in :data:`GROUPS`.
Modules are imported only when their group runs, so a group needing an
optional dependency cannot break the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bench._harness import Result, Settings

__all__ = ["GROUPS", "GroupRun", "load"]

GroupRun = Callable[[Settings], list[Result]]

# name -> one-line description, in the order the full run goes through them
GROUPS: dict[str, str] = {
    "loop": "10,000-step self-loop: SDK vs LangGraph vs a bare Python loop",
    "scale": "per-step cost of the SDK loop at 100,000 steps vs 10,000",
    "memory": "memory retained per step by a 100,000-step run",
    "fanout": "100 async activations awaiting 50 ms each, max_concurrency=100",
    "durable": "the loop on a durable SQLite/PostgreSQL ledger vs memory and raw inserts",
    "langgraph_adapter": "LangGraph loop adapted vs unadapted: the adapter's cost per step",
    "verify": "events per second verify_run checks over a 104,002-event SQLite run",
    "explorer": "run explorer API time: runs pages over 10,000 runs, pages of a 100,002-event run",
    "redaction": "the default redaction policy per activation vs none (and masking)",
    "sealing": "per-activation cost of sealing secrets vs masking them vs no redaction",
    "api": "execute a 10,000-step loop, then read it (node_results, len(ledger), summary)",
    "peers": "durable runs vs DBOS and LangGraph's SQLite/PostgreSQL savers (bench extra)",
    "bytes": "bytes per step on disk (SQLite, PostgreSQL) and retained in memory",
    "cache": "caching by identity per activation, hit and miss, vs no cache (SQLite, PostgreSQL)",
    "reads": "pages of runs list (filters, keyset paging) over 100,000 runs, SQLite and PostgreSQL",
    "sinks": "what an audit sink costs a run, and per-entry delivery to NATS JetStream",
    "stream": "memory of runs show, export and the report of a run vs one 10x as long",
    "executors": "activations/s and runs/s in process vs RayExecutor at 1 and 2 workers",
    "blobs": "durable ledger throughput with 256 KiB payloads behind digests vs inline",
    "governance": "per-activation cost of an allow-all policy and of budget accounting vs none",
    # last: it installs a global SDK tracer provider, which would make every later
    # group's spans real
    "tracing": "what enable_tracing adds per activation vs the same spans made with the SDK",
}


def load(name: str) -> GroupRun:
    """The ``run`` function of group ``name``."""
    module = importlib.import_module(f"bench.groups.{name}")
    run: GroupRun = module.run
    return run
