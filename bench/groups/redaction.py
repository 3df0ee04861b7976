"""``redaction``: what the default redaction policy costs per activation, against none.

Contestants, interleaved, the same 10,000-step self-loop with agent-like data: each
activation reads a token payload of four text fields (a user message, a URL, a
``key: value`` line, a request id) and a small dict under ordinary keys, writes two
state keys (a text and a counter) and emits the next token:

* ``disabled``: ``CodonWorkload(redactor=Redactor.disabled())``, nothing is scanned;
* ``default``: the default policy (``Redactor()``: private keys, API keys, bearer
  tokens, passwords, credential-named keys), nothing to mask (the common case);
* ``masking``: the default policy with a password in the message of every token, so
  every activation masks one secret (the slow path, for scale).

Reported per activation; ``default - disabled`` is the redactor's cost (INFO: the
issue asks for the figure, DESIGN.md sets no target for it).
"""

from __future__ import annotations

from typing import Any

from bench._harness import HarnessError, Result, Settings
from bench._loops import per_step_costs
from codon_sdk import CodonWorkload, Redactor

__all__ = ["run"]

GROUP = "redaction"
STEPS = 10_000
NODE = "agent"


def _payload(i: int, secret: bool) -> dict[str, Any]:
    message = "please reset my password=hunter2-now" if secret else "please reset my login"
    return {
        "i": i,
        "message": f"{message} (ticket {i})",
        "url": "https://support.example.com/tickets?id=123&lang=en",
        "header": "Content-Type: application/json; charset=utf-8",
        "request_id": "req_7f3a9c2e1b5d4a8f",
        "meta": {"channel": "web", "priority": 2, "tags": ["login", "reset"]},
    }


def _loop(redactor: Redactor | None, secret: bool) -> Any:
    last = STEPS - 1
    workload = CodonWorkload(
        name="bench-redaction", version="1.0", org_namespace="bench", redactor=redactor
    )

    def agent(message: Any, *, runtime: Any, context: Any) -> int:
        i: int = message["i"]
        runtime.state["last_message"] = message["message"]
        runtime.state["count"] = i
        if i < last:
            runtime.emit(NODE, _payload(i + 1, secret))
        return i

    workload.add_node(agent, NODE, "worker")
    workload.add_edge(NODE, NODE)

    def run() -> Any:
        return workload.execute(_payload(0, secret), deployment_id="bench", max_steps=STEPS)

    return run


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=7, quick=3)
    contestants = {
        "disabled": _loop(Redactor.disabled(), secret=False),
        "default": _loop(None, secret=False),
        "masking": _loop(None, secret=True),
    }
    counts = set()
    for name, fn in contestants.items():
        report = fn()
        if report.status != "completed" or len(report.node_results(NODE)) != STEPS:
            raise HarnessError(f"redaction loop {name!r} ended {report.status!r}")
        counts.add(report.event_count)
    if len(counts) != 1:
        raise HarnessError(f"the redaction loops recorded different event counts: {counts}")
    return per_step_costs(GROUP, contestants, "disabled", STEPS, reps)
