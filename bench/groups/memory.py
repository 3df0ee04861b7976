"""``memory``: memory a finished 100,000-step run retains per step, beyond its results.

Method. Each loop style (see ``bench._loops``) is measured in a fresh Python
process (``python -m bench.groups.memory VARIANT STEPS``), so that memory freed
by earlier benchmarks cannot hide or inflate anything. The child process:

1. warms up with a short run of the same loop (imports, caches), collects garbage;
2. RSS cross-check: reads the resident set size (``/proc/self/statm``), runs
   the loop, collects garbage, reads it again with the report alive;
3. tracemalloc: drops that report, starts ``tracemalloc``, collects garbage, reads
   the traced total, runs the loop, collects garbage and reads the traced total
   again, with the report alive and untouched: ``report.ledger`` and
   ``report.results`` are lazy views, so reading them before measuring would
   count views the engine itself never builds.

What the results themselves hold is then taken off: the result objects (ints,
which the node functions allocate, so tracemalloc attributes them to
``bench/_loops.py``; their traced size is summed from the snapshot, since a
result of ``i + 1`` can take more memory than ``sys.getsizeof`` says) and one
list slot (a pointer) per result. What is left, divided by the number of steps,
is the figure checked against the target of at most 1024 bytes per step: the
ledger entries, the engine's bookkeeping and anything leaked.

The RSS figure gets the same deductions and is only a cross-check: it also
counts allocator arenas that were freed but not handed back to the system, and
rounds to pages. Each is a single measurement (memory, unlike time, hardly
varies between runs).
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench._harness import HarnessError, Result, Settings, Target, fmt_number
from bench._loops import VARIANTS, Variant, check_report, make_node, sdk_loop

__all__ = ["probe", "run"]

GROUP = "memory"
PER_STEP_BYTES = Target("<=", 1024.0)
_REPO = Path(__file__).resolve().parents[2]
_POINTER = struct.calcsize("P")


def run(settings: Settings) -> list[Result]:
    steps = 20_000 if settings.quick else 100_000
    results: list[Result] = []
    for variant in VARIANTS:
        m = _measure_in_child(variant, steps)
        if m["result_objects"] < steps - 300:  # ints above 256 are fresh objects
            raise HarnessError(
                f"only {m['result_objects']} of {steps} result objects were traced to the node "
                "functions; the method (module docstring) no longer fits the engine"
            )
        held = m["result_bytes"] + m["slot_bytes"]
        retained = (m["traced_bytes"] - held) / steps
        top = ", ".join(f"{site} {fmt_number(size / steps)}" for site, size in m["top"][:2])
        results.append(
            Result(
                GROUP,
                f"sdk_{variant}_retained",
                retained,
                "B/step",
                PER_STEP_BYTES,
                f"{steps:,} steps, tracemalloc, n=1; results excluded "
                f"({fmt_number(held / steps)} B/step); ledger entries hold "
                f"{fmt_number(m['ledger_bytes'] / steps)} B/step; largest B/step: {top}",
                (retained,),
                extra=m,
            )
        )
        if m["rss_bytes"] is None:
            continue
        rss = (m["rss_bytes"] - held) / steps
        results.append(
            Result(
                GROUP,
                f"sdk_{variant}_rss",
                rss,
                "B/step",
                None,
                f"cross-check: RSS growth, same deductions, n=1; "
                f"peak traced {fmt_number(m['peak_bytes'] / steps)} B/step",
                (rss,),
            )
        )
    return results


def _measure_in_child(variant: Variant, steps: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.groups.memory", variant, str(steps)]
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(
            f"memory probe {' '.join(cmd[1:])} exited {proc.returncode}:\n{proc.stderr.strip()}"
        )
    try:
        measured: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise HarnessError(f"memory probe printed no JSON: {proc.stdout!r}") from exc
    return measured


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def probe(variant: Variant, steps: int) -> dict[str, Any]:
    """Run in the child process: measure one ``steps``-step run (see the module docstring)."""
    sdk_loop(variant, 1_000)()
    loop = sdk_loop(variant, steps)
    gc.collect()

    rss_before = _rss_bytes()
    report = loop()
    gc.collect()
    rss_after = _rss_bytes()
    del report
    gc.collect()

    tracemalloc.start()
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    report = loop()
    elapsed = time.perf_counter() - started
    gc.collect()
    traced_after, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()

    node_file = inspect.getsourcefile(make_node) or ""
    mine = snapshot.filter_traces([tracemalloc.Filter(True, node_file)])
    others = snapshot.filter_traces([tracemalloc.Filter(False, node_file)])
    result_traces = mine.statistics("filename")
    result_bytes = sum(stat.size for stat in result_traces)
    top = [
        (f"{Path(str(stat.traceback[0].filename)).name}:{stat.traceback[0].lineno}", stat.size)
        for stat in others.statistics("lineno")[:4]
    ]
    check_report(report, steps)  # only now: building the views allocates
    ledger_bytes = sum(len(entry) for entry in report.entries)
    return {
        "variant": variant,
        "steps": steps,
        "traced_bytes": traced_after - traced_before,
        "peak_bytes": peak - traced_before,
        "result_bytes": result_bytes,
        "result_objects": sum(stat.count for stat in result_traces),
        "slot_bytes": _POINTER * steps,
        "rss_bytes": None if rss_before is None or rss_after is None else rss_after - rss_before,
        "ledger_bytes": ledger_bytes,
        "ledger_events": report.event_count,
        "elapsed_traced_s": elapsed,
        "top": top,
    }


if __name__ == "__main__":
    _variant, _steps = sys.argv[1], int(sys.argv[2])
    if _variant not in VARIANTS:
        raise SystemExit(f"variant must be one of {VARIANTS}, got {_variant!r}")
    print(json.dumps(probe(_variant, _steps)))
