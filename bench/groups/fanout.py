"""``fanout``: 100 async activations that each await 50 ms, run at once.

An entry node emits 100 tokens to an async worker node that awaits
``asyncio.sleep(0.05)`` and returns its payload. With ``max_concurrency=100``
the run should take little more than one sleep: target at most 150 ms wall for
``workload.execute(...)`` (median of several runs after a warm-up).

For contrast the same graph runs with ``max_concurrency=1``, where the sleeps
queue up one after another (about 5 s for 100 tokens). To keep the harness
short that contrast uses 20 tokens, runs once, and is extrapolated linearly to
100 tokens; the table says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, Target, interleave
from codon_sdk.agents import CodonWorkload, ExecutionReport

__all__ = ["run"]

GROUP = "fanout"
TOKENS = 100
SLEEP_S = 0.05
CONTRAST_TOKENS = 20
WALL_MS = Target("<=", 150.0)


def _fan_out(tokens: int) -> Callable[..., None]:
    def entry(message: Any, *, runtime: Any, context: Any) -> None:
        for k in range(tokens):
            runtime.emit("worker", k)

    return entry


async def _worker(message: int, *, runtime: Any, context: Any) -> int:
    await asyncio.sleep(SLEEP_S)
    return message


def _fanout_run(tokens: int, concurrency: int) -> Callable[[], ExecutionReport]:
    workload = CodonWorkload(name="bench-fanout", version="1.0", org_namespace="bench")
    workload.add_node(_fan_out(tokens), "entry", "router")
    workload.add_node(_worker, "worker", "worker")
    workload.add_edge("entry", "worker")

    def run() -> ExecutionReport:
        report: ExecutionReport = workload.execute(
            None, deployment_id="bench", max_steps=tokens + 1, max_concurrency=concurrency
        )
        return report

    return run


def _check(report: ExecutionReport, tokens: int) -> None:
    got = sorted(report.node_results("worker"))
    if report.status != "completed" or got != list(range(tokens)):
        raise HarnessError(
            f"fan-out of {tokens} ended {report.status!r} with {len(got)} worker results"
        )


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=7, quick=3)
    wide = _fanout_run(TOKENS, concurrency=TOKENS)
    _check(wide(), TOKENS)  # the warm-up run, checked
    timings = interleave([Contestant("wide", wide)], reps)["wide"].scaled(1e3)
    wall_ms = timings.wall
    stats = Stats.of(wall_ms)
    results = [
        Result(
            GROUP,
            f"async_{TOKENS}x50ms_concurrency_{TOKENS}",
            stats.median,
            "ms",
            WALL_MS,
            f"wall of execute(); one sleep is {SLEEP_S * 1e3:.0f} ms; {stats.describe()}; "
            f"{timings.cpu_note('ms')}",
            tuple(wall_ms),
        )
    ]

    narrow = _fanout_run(CONTRAST_TOKENS, concurrency=1)
    started = time.perf_counter()
    report = narrow()
    once_s = time.perf_counter() - started
    _check(report, CONTRAST_TOKENS)
    extrapolated_ms = once_s * 1e3 * TOKENS / CONTRAST_TOKENS
    results.append(
        Result(
            GROUP,
            f"async_{TOKENS}x50ms_concurrency_1",
            extrapolated_ms,
            "ms",
            None,
            f"contrast: {CONTRAST_TOKENS} tokens measured once ({once_s * 1e3:,.0f} ms), "
            f"extrapolated x{TOKENS // CONTRAST_TOKENS} to {TOKENS} tokens",
            (extrapolated_ms,),
        )
    )
    return results
