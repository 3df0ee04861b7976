"""``loop``: engine overhead per activation of a 10,000-step self-loop (DESIGN.md section 7).

Contestants, interleaved round by round in this one process (see ``bench._loops``):

* the SDK ``state`` loop and ``token`` loop with the default in-memory ledger
  (hash chain included): wall time of ``workload.execute(...)`` divided by the
  number of activations;
* a bare Python loop calling the same node functions with a stand-in runtime,
  each run right after the SDK loop it is compared with;
* LangGraph's equivalent loop (``StateGraph``, no checkpointer, ``.invoke``).

Each contestant runs once before timing (also checking it computed the right
results); a bare-loop sample is the mean of 10 back-to-back runs, since one run
takes only a few milliseconds. Targets: SDK at most 8 µs per activation
(median); LangGraph's per-step cost at least 15x the SDK's; the SDK's at most
30x the bare loop's. Ratios are medians of per-round ratios. Details give the
process CPU time beside the wall time: well under 100% means other processes
had the CPU, and absolute figures are inflated (ratios much less so).
"""

from __future__ import annotations

from bench._harness import (
    Contestant,
    Result,
    Settings,
    Stats,
    Target,
    Timings,
    interleave,
    paired_ratios,
)
from bench._loops import VARIANTS, LangGraphLoop, bare_loop, check_report, sdk_loop

__all__ = ["run"]

GROUP = "loop"
SDK_MAX_US = Target("<=", 8.0)
LANGGRAPH_OVER_SDK = Target(">=", 15.0)
SDK_OVER_BARE = Target("<=", 30.0)
BARE_RUNS_PER_SAMPLE = 10


def run(settings: Settings) -> list[Result]:
    steps = 2_000 if settings.quick else 10_000
    reps = settings.reps(full=9, quick=3)
    contestants: list[Contestant] = []
    for variant in VARIANTS:
        sdk = sdk_loop(variant, steps)
        check_report(sdk(), steps)  # the warm-up run, checked
        bare = bare_loop(variant, steps)
        bare()
        contestants.append(Contestant(f"sdk_{variant}", sdk))
        contestants.append(Contestant(f"bare_{variant}", bare, BARE_RUNS_PER_SAMPLE))
    langgraph_skip = ""
    try:
        langgraph = LangGraphLoop(steps)
    except ImportError as exc:
        langgraph_skip = f'langgraph is not installed ({exc}); pip install "codon-sdk[langgraph]"'
    else:
        langgraph.check()
        contestants.append(Contestant("langgraph", langgraph))

    timings = interleave(contestants, reps)
    per_step = {name: t.scaled(1e6 / steps) for name, t in timings.items()}
    where = f"{steps:,} steps"
    results = [
        _per_step(f"sdk_{v}_loop", per_step[f"sdk_{v}"], where, SDK_MAX_US) for v in VARIANTS
    ]
    if langgraph_skip:
        results.append(_skipped("langgraph_loop", "µs/step", langgraph_skip))
    else:
        results.append(_per_step("langgraph_loop", per_step["langgraph"], where, None))
    results += [_per_step(f"bare_{v}_loop", per_step[f"bare_{v}"], where, None) for v in VARIANTS]
    for variant in VARIANTS:
        name = f"langgraph_over_sdk_{variant}"
        if langgraph_skip:
            results.append(_skipped(name, "x", langgraph_skip))
            continue
        ratios = paired_ratios(per_step["langgraph"].wall, per_step[f"sdk_{variant}"].wall)
        results.append(_ratio(name, ratios, "LangGraph / SDK per step", LANGGRAPH_OVER_SDK))
    for variant in VARIANTS:
        ratios = paired_ratios(per_step[f"sdk_{variant}"].wall, per_step[f"bare_{variant}"].wall)
        results.append(
            _ratio(f"sdk_over_bare_{variant}", ratios, "SDK / bare per step", SDK_OVER_BARE)
        )
    return results


def _per_step(name: str, timings: Timings, where: str, target: Target | None) -> Result:
    stats = Stats.of(timings.wall)
    return Result(
        GROUP,
        name,
        stats.median,
        "µs/step",
        target,
        f"{where}; {stats.describe()}; {timings.cpu_note('µs')}",
        tuple(timings.wall),
        extra={"cpu": timings.cpu},
    )


def _ratio(name: str, ratios: list[float], what: str, target: Target) -> Result:
    stats = Stats.of(ratios)
    return Result(
        GROUP, name, stats.median, "x", target, f"{what}; {stats.describe()}", tuple(ratios)
    )


def _skipped(name: str, unit: str, why: str) -> Result:
    return Result(GROUP, name, None, unit, None, why, status="SKIP")
