"""``api``: the documented path, end to end: run a 10,000-step self-loop, then read its results.

A user's loop does not stop at ``execute``: it reads the results. Contestants,
interleaved round by round:

* ``sdk``: ``workload.execute(...)`` of the ``token`` self-loop (see ``bench._loops``)
  with the default in-memory ledger, then, on the report, the first
  ``node_results("loop")``, the first ``len(report.ledger)`` and the first
  ``summary()``; each part is timed on its own inside the sample;
* ``langgraph``: LangGraph's equivalent loop compiled with its in-memory checkpointer
  (``InMemorySaver``), ``invoke`` then ``get_state``.

Figures: µs per step of the whole sample (target: the SDK at most 8), LangGraph's
over the SDK's per round (target: at least 20x), and each first read of the SDK
over its ``execute`` time in the same sample (target: at most 0.2x each).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

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
from bench._loops import NODE, sdk_loop

__all__ = ["run"]

GROUP = "api"
STEPS = 10_000
SDK_MAX_US = Target("<=", 8.0)
LANGGRAPH_OVER_SDK = Target(">=", 20.0)
READ_OVER_EXECUTE = Target("<=", 0.2)
READS = ("node_results", "len_ledger", "summary")


class _Sdk:
    """One sample: execute, then the three first reads, each timed."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self._run = sdk_loop("token", steps)
        self.parts: dict[str, list[float]] = {"execute": [], **{r: [] for r in READS}}

    def __call__(self) -> None:
        clock = time.perf_counter
        t0 = clock()
        report = self._run()
        t1 = clock()
        results = report.node_results(NODE)
        t2 = clock()
        events = len(report.ledger)
        t3 = clock()
        text = report.summary()
        t4 = clock()
        for name, seconds in zip(
            ("execute", *READS), (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True
        ):
            self.parts[name].append(seconds)
        if len(results) != self.steps or results[-1] != self.steps - 1:
            raise HarnessError(f"the SDK loop returned {len(results)} results")
        if events != 3 * self.steps + 2 or "activation(s)" not in text:
            raise HarnessError(f"the SDK ledger holds {events} events")


class _LangGraph:
    """LangGraph's loop with its in-memory checkpointer: ``invoke`` then ``get_state``."""

    def __init__(self, steps: int) -> None:
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import END, START, StateGraph

        from bench._loops import _Counter

        def step(state: _Counter) -> dict[str, int]:
            return {"i": state["i"] + 1}

        graph = StateGraph(_Counter)
        graph.add_node(NODE, step)
        graph.add_edge(START, NODE)
        graph.add_conditional_edges(NODE, lambda s: NODE if s["i"] < steps else END, [NODE, END])
        self.steps = steps
        self._app = graph.compile(checkpointer=InMemorySaver())

    def __call__(self) -> None:
        config: Any = {
            "configurable": {"thread_id": uuid.uuid4().hex},
            "recursion_limit": self.steps + 10,
        }
        self._app.invoke({"i": 0}, config)
        state = self._app.get_state(config)
        if state.values.get("i") != self.steps:
            raise HarnessError(f"LangGraph's loop ended at {state.values!r}")


def run(settings: Settings) -> list[Result]:
    steps = 2_000 if settings.quick else STEPS
    reps = settings.reps(full=5, quick=3)
    sdk = _Sdk(steps)
    contestants = [Contestant("sdk", sdk)]
    try:
        langgraph: _LangGraph | None = _LangGraph(steps)
    except ImportError:
        langgraph = None
    if langgraph is not None:
        contestants.append(Contestant("langgraph", langgraph))
    for contestant in contestants:  # warm-up, checked
        contestant.run()
    for values in sdk.parts.values():
        values.clear()
    timings = interleave(contestants, reps)
    per_step = {name: [w / steps * 1e6 for w in t.wall] for name, t in timings.items()}
    sdk_stats = Stats.of(per_step["sdk"])
    results = [
        Result(
            GROUP,
            "sdk_per_step",
            sdk_stats.median,
            "µs/step",
            SDK_MAX_US,
            f"{steps:,} steps: execute + node_results + len(ledger) + summary(); "
            f"{sdk_stats.describe()}; {timings['sdk'].cpu_note('s')}",
            tuple(per_step["sdk"]),
        )
    ]
    execute = sdk.parts["execute"]
    results.append(_info("execute_per_step", [e / steps * 1e6 for e in execute], "µs/step"))
    for name in READS:
        ratio = paired_ratios(sdk.parts[name], execute)
        stats = Stats.of(ratio)
        ms = Stats.of(sdk.parts[name]).median * 1e3
        results.append(
            Result(
                GROUP,
                f"first_{name}_over_execute",
                stats.median,
                "x",
                READ_OVER_EXECUTE,
                f"first {name} ({ms:.2f} ms) / execute in the same sample; {stats.describe()}",
                tuple(ratio),
            )
        )
    if langgraph is None:
        results.append(
            Result(GROUP, "langgraph", None, "", None, "langgraph not installed", (), "SKIP")
        )
        return results
    lg = Stats.of(per_step["langgraph"])
    ratio = Stats.of(paired_ratios(per_step["langgraph"], per_step["sdk"]))
    results += [
        Result(
            GROUP,
            "langgraph_per_step",
            lg.median,
            "µs/step",
            None,
            f"invoke + get_state, InMemorySaver; {lg.describe()}",
            tuple(per_step["langgraph"]),
        ),
        Result(
            GROUP,
            "langgraph_over_sdk",
            ratio.median,
            "x",
            LANGGRAPH_OVER_SDK,
            f"per-round ratio of µs/step; {ratio.describe()}",
        ),
    ]
    return results


def _info(name: str, values: list[float], unit: str) -> Result:
    stats = Stats.of(values)
    return Result(GROUP, name, stats.median, unit, None, stats.describe(), tuple(values))
