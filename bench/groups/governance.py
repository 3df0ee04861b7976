"""``governance``: what an allow-all policy and budget accounting cost per activation.

Contestants, interleaved, the same 10,000-step self-loop (each activation emits the
next token):

* ``none``: no governance (the engine's fast path);
* ``allow_all``: one policy whose three checks are the base class's (allow), asked
  before every activation;
* ``budget``: a run budget on activations and wall time (both checked per activation);
* ``deployment_budget``: a per-deployment activations budget, charged in the in-memory
  store of the process at each activation.

Reported per activation; ``<name> - none`` is governance's cost (INFO: the issue asks for
the figure, DESIGN.md sets no target for it).
"""

from __future__ import annotations

from typing import Any

from bench._harness import HarnessError, Result, Settings
from bench._loops import per_step_costs
from codon_sdk import CodonWorkload
from codon_sdk.governance import Budget, Policy

__all__ = ["run"]

GROUP = "governance"
STEPS = 10_000
NODE = "loop"


class _AllowAll(Policy):
    name = "allow_all"


def _loop(kind: str) -> Any:
    last = STEPS - 1
    workload = CodonWorkload(name=f"bench-governance-{kind}", version="1.0", org_namespace="bench")

    def loop(i: int, *, runtime: Any, context: Any) -> int:
        if i < last:
            runtime.emit(NODE, i + 1)
        return i

    workload.add_node(loop, NODE, "worker")
    workload.add_edge(NODE, NODE)
    if kind == "allow_all":
        workload.add_policy(_AllowAll())
    elif kind == "budget":
        workload.add_budget(Budget(activations=STEPS + 1, wall_time=3600))
    elif kind == "deployment_budget":
        workload.add_budget(Budget(per="deployment", activations=10**12))

    def run() -> Any:
        return workload.execute(0, deployment_id=f"bench-{kind}", max_steps=STEPS)

    return run


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=7, quick=3)
    names = ("none", "allow_all", "budget", "deployment_budget")
    contestants = {name: _loop(name) for name in names}
    for name, fn in contestants.items():
        report = fn()
        if report.status != "completed" or len(report.node_results(NODE)) != STEPS:
            raise HarnessError(f"governance loop {name!r} ended {report.status!r}")
    return per_step_costs(GROUP, contestants, "none", STEPS, reps)
