"""The self-loop workloads: the SDK's two loop styles, LangGraph's loop and a bare Python loop.

Every contestant makes the same ``steps`` calls of the same node function:

* ``state`` loop: the counter lives in ``runtime.state["i"]``; each activation
  reads it, stores ``i + 1`` and emits an empty token (payload ``None``) to
  itself while ``i < steps - 1``; it returns ``i`` (the API.md example style).
* ``token`` loop: the counter travels in the payload; an activation receiving
  ``i`` emits ``i + 1`` to itself while ``i < steps - 1`` and returns ``i``.

The bare loop calls that very node function with a minimal stand-in runtime
(``emit`` appends to a list, ``state`` is a plain dict): what remains is the
cost of the function itself and of the simplest driver that can run it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict

from bench._harness import Contestant, HarnessError, Result, Stats, interleave
from codon_sdk.agents import CodonWorkload, ExecutionReport

__all__ = [
    "DEPLOYMENT",
    "NODE",
    "VARIANTS",
    "LangGraphLoop",
    "Variant",
    "bare_loop",
    "check_report",
    "make_node",
    "sdk_loop",
    "seed_payload",
]

Variant = Literal["state", "token"]
VARIANTS: tuple[Variant, ...] = ("state", "token")
NODE = "loop"
DEPLOYMENT = "bench"
NodeFn = Callable[..., Any]


def make_node(variant: Variant, steps: int) -> NodeFn:
    """The node function of a ``steps``-activation self-loop."""
    last = steps - 1

    def state_loop(message: Any, *, runtime: Any, context: Any) -> int:
        i: int = runtime.state.get("i", 0)
        runtime.state["i"] = i + 1
        if i < last:
            runtime.emit(NODE, None)
        return i

    def token_loop(message: int, *, runtime: Any, context: Any) -> int:
        if message < last:
            runtime.emit(NODE, message + 1)
        return message

    return state_loop if variant == "state" else token_loop


def seed_payload(variant: Variant) -> int | None:
    return None if variant == "state" else 0


def sdk_loop(variant: Variant, steps: int) -> Callable[[], ExecutionReport]:
    """A zero-argument callable running the ``steps``-step SDK self-loop once."""
    workload = CodonWorkload(name="bench-loop", version="1.0", org_namespace="bench")
    workload.add_node(make_node(variant, steps), NODE, "worker")
    workload.add_edge(NODE, NODE)
    payload = seed_payload(variant)

    def run() -> ExecutionReport:
        report: ExecutionReport = workload.execute(
            payload, deployment_id=DEPLOYMENT, max_steps=steps
        )
        return report

    return run


def check_report(report: ExecutionReport, steps: int) -> None:
    """Raise :class:`HarnessError` unless the run made exactly the expected activations."""
    results = report.node_results(NODE)
    if report.status != "completed" or results != list(range(steps)):
        raise HarnessError(
            f"SDK loop of {steps} steps ended {report.status!r} with {len(results)} results "
            f"(first {results[:3]}, last {results[-3:]}); expected 0..{steps - 1}"
        )


class _StandInRuntime:
    """Just enough of ``runtime`` for the loop nodes: ``emit`` and ``state``."""

    __slots__ = ("queue", "state")

    def __init__(self) -> None:
        self.queue: list[Any] = []
        self.state: dict[str, Any] = {}

    def emit(self, target: str, payload: Any) -> str:
        self.queue.append(payload)
        return "t"


def bare_loop(variant: Variant, steps: int) -> Callable[[], list[Any]]:
    """A zero-argument callable driving the same node function with a plain Python loop."""
    node = make_node(variant, steps)
    payload = seed_payload(variant)
    context: dict[str, Any] = {}

    def run() -> list[Any]:
        runtime = _StandInRuntime()
        queue = runtime.queue
        queue.append(payload)
        results: list[Any] = []
        while queue:
            results.append(node(queue.pop(), runtime=runtime, context=context))
        if len(results) != steps:
            raise HarnessError(f"bare loop made {len(results)} calls, expected {steps}")
        return results

    return run


class _Counter(TypedDict):
    i: int


class LangGraphLoop:
    """LangGraph's equivalent: one node incrementing ``i``, a conditional edge back until ``steps``.

    Compiled without a checkpointer, invoked with ``.invoke`` and a recursion
    limit above ``steps``.
    """

    def __init__(self, steps: int) -> None:
        from langgraph.graph import END, START, StateGraph

        def step(state: _Counter) -> dict[str, int]:
            return {"i": state["i"] + 1}

        def route(state: _Counter) -> str:
            return NODE if state["i"] < steps else END

        graph = StateGraph(_Counter)
        graph.add_node(NODE, step)
        graph.add_edge(START, NODE)
        graph.add_conditional_edges(NODE, route, [NODE, END])
        self.steps = steps
        self._app = graph.compile()
        self._config: Any = {"recursion_limit": steps + 10}

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = self._app.invoke({"i": 0}, self._config)
        return out

    def check(self) -> None:
        out = self()
        if out.get("i") != self.steps:
            raise HarnessError(f"LangGraph loop returned {out!r}, expected i={self.steps}")


def per_step_costs(
    group: str,
    contestants: dict[str, Callable[[], Any]],
    baseline: str,
    steps: int,
    reps: int,
) -> list[Result]:
    """Interleaved timings of loops of ``steps`` activations: each contestant's µs/step
    (``<name>_loop``), then what each adds per activation over ``baseline`` (``<name>_cost``,
    with the median ratio), measured round by round side by side."""
    timings = interleave([Contestant(n, fn) for n, fn in contestants.items()], reps)
    per = {name: [w / steps * 1e6 for w in t.wall] for name, t in timings.items()}
    results = [
        Result(group, f"{name}_loop", Stats.of(v).median, "µs/step", None,
               Stats.of(v).describe(), tuple(v))
        for name, v in per.items()
    ]  # fmt: skip
    for name in per:
        if name == baseline:
            continue
        added = [a - b for a, b in zip(per[name], per[baseline], strict=True)]
        ratio = [a / b for a, b in zip(per[name], per[baseline], strict=True)]
        stats = Stats.of(added)
        results.append(
            Result(
                group,
                f"{name}_cost",
                stats.median,
                "µs/step",
                None,
                f"{name} - {baseline} per activation; {stats.describe()}; "
                f"ratio {Stats.of(ratio).median:.3f}x",
                tuple(added),
            )
        )
    return results
