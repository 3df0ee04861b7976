"""``langgraph_adapter``: what the LangGraph adapter costs per step, side by side with LangGraph.

The graph is the ``loop`` group's LangGraph loop (one node incrementing ``i``,
a conditional edge back to it until ``steps``), compiled twice from one
``StateGraph``: plainly, and through
``LangGraphWorkloadAdapter.from_langgraph`` with its defaults (an in-memory
ledger store, ``batch`` durability, tracing on through the global tracer
provider, which is the no-op one here). Both are invoked with ``.invoke`` and a
recursion limit above ``steps``, interleaved round by round in this process.

Every adapted step records an activation (token, dequeue, completion, hashed
and handed to the store's writer thread), so the figure is the whole price of
the audit ledger. Each contestant runs once before timing, its result checked
(and, adapted, that the run completed with one activation per step).
Target: adapted per-step cost at most 1.25x the unadapted one (median of
per-round ratios).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from bench._harness import (
    Contestant,
    HarnessError,
    Result,
    Settings,
    Stats,
    Target,
    Timings,
    interleave,
    paired_ratios,
)

__all__ = ["run"]

GROUP = "langgraph_adapter"
NODE = "loop"
ADAPTED_OVER_UNADAPTED = Target("<=", 1.25)


class _Counter(TypedDict):
    i: int


def _graph(steps: int) -> Any:
    """The loop group's LangGraph loop, as a ``StateGraph``."""
    from langgraph.graph import END, START, StateGraph

    def step(state: _Counter) -> dict[str, int]:
        return {"i": state["i"] + 1}

    def route(state: _Counter) -> str:
        return NODE if state["i"] < steps else END

    graph = StateGraph(_Counter)
    graph.add_node(NODE, step)
    graph.add_edge(START, NODE)
    graph.add_conditional_edges(NODE, route, [NODE, END])
    return graph


def _runner(app: Any, steps: int) -> Callable[[], dict[str, Any]]:
    config: Any = {"recursion_limit": steps + 10}

    def run() -> dict[str, Any]:
        out: dict[str, Any] = app.invoke({"i": 0}, config)
        return out

    return run


def _check(out: dict[str, Any], steps: int, app: Any) -> None:
    if out.get("i") != steps:
        raise HarnessError(f"LangGraph loop returned {out!r}, expected i={steps}")
    report = getattr(app, "last_report", None)
    if report is None:
        return
    done = len(report.node_results(NODE))
    if report.status != "completed" or done != steps:
        raise HarnessError(
            f"adapted loop run ended {report.status!r} with {done} activations of {NODE!r}, "
            f"expected {steps}"
        )


def run(settings: Settings) -> list[Result]:
    steps = 1_000 if settings.quick else 5_000
    reps = settings.reps(full=7, quick=3)
    try:
        graph = _graph(steps)
        from codon.instrumentation.langgraph import LangGraphWorkloadAdapter
    except ImportError as exc:
        why = f'langgraph is not installed ({exc}); pip install "codon-sdk[langgraph]"'
        return [Result(GROUP, "adapted_over_unadapted", None, "x", None, why, status="SKIP")]
    plain = graph.compile()
    adapted = LangGraphWorkloadAdapter.from_langgraph(
        graph, name="bench-langgraph-loop", version="1.0", org_namespace="bench"
    )
    contestants = []
    for name, app in (("unadapted", plain), ("adapted", adapted)):
        runner = _runner(app, steps)
        _check(runner(), steps, app)  # the warm-up run, checked
        contestants.append(Contestant(name, runner))
    timings = interleave(contestants, reps)
    per_step = {name: t.scaled(1e6 / steps) for name, t in timings.items()}
    where = f"{steps:,} steps"
    ratios = paired_ratios(per_step["adapted"].wall, per_step["unadapted"].wall)
    stats = Stats.of(ratios)
    return [
        _per_step("unadapted_loop", per_step["unadapted"], where),
        _per_step("adapted_loop", per_step["adapted"], where),
        Result(
            GROUP,
            "adapted_over_unadapted",
            stats.median,
            "x",
            ADAPTED_OVER_UNADAPTED,
            f"adapted / unadapted per step; {stats.describe()}",
            tuple(ratios),
        ),
    ]


def _per_step(name: str, timings: Timings, where: str) -> Result:
    stats = Stats.of(timings.wall)
    return Result(
        GROUP,
        name,
        stats.median,
        "µs/step",
        None,
        f"{where}; {stats.describe()}; {timings.cpu_note('µs')}",
        tuple(timings.wall),
        extra={"cpu": timings.cpu},
    )
