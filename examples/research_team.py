"""A small research team as a Codon workload: planner -> researcher -> writer <-> reviewer.

Run it with ``make demo`` (or ``python examples/research_team.py``). Without
``OPENAI_API_KEY`` it runs offline on a deterministic stand-in model, so the run
is the same on every machine. With ``OPENAI_API_KEY`` (and optionally
``OPENAI_BASE_URL`` and ``CODON_DEMO_MODEL``) the agents call the OpenAI API.

Every model call goes through ``runtime.effect``, so it is recorded in the ledger
once and served from it on resume and replay. The run is written to the embedded
SQLite ledger (``sqlite:///.codon/ledger.db`` unless ``CODON_LEDGER_URL`` says
otherwise); afterwards try ``codon runs list`` and ``codon runs show <run id>``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

from codon_sdk import CodonWorkload, ExecutionReport
from codon_sdk.stores import default_ledger_url

MAX_REVISIONS = 2


# --------------------------------------------------------------------------- the model


class StandInModel:
    """A deterministic offline model: the same prompt always gets the same answer."""

    name = "codon-stand-in"

    def complete(self, role: str, prompt: str) -> str:
        digest = hashlib.sha256(f"{role}\n{prompt}".encode()).hexdigest()
        if role == "planner":
            return "\n".join(
                f"{i + 1}. {aspect} of {prompt}"
                for i, aspect in enumerate(["history", "current practice", "open problems"])
            )
        if role == "researcher":
            return f"Finding {digest[:6]}: {prompt.splitlines()[0]} is well documented."
        if role == "writer":
            return f"Draft ({len(prompt)} chars of notes): {prompt[:60]}..."
        # reviewer: approve once the draft has been revised enough
        revisions = prompt.count("[revision]")
        return "APPROVE" if revisions >= MAX_REVISIONS else "REVISE: tighten the argument"


class OpenAIModel:
    """The real thing, through the OpenAI client (``pip install "codon-sdk[openai]"``)."""

    def __init__(self) -> None:
        from openai import OpenAI

        self.client = OpenAI()
        self.name = os.environ.get("CODON_DEMO_MODEL", "gpt-4o-mini")

    def complete(self, role: str, prompt: str) -> str:
        response = self.client.chat.completions.create(
            model=self.name,
            messages=[
                {"role": "system", "content": f"You are the {role} of a small research team."},
                {"role": "user", "content": prompt},
            ],
        )
        return response.choices[0].message.content or ""


MODEL: Any = OpenAIModel() if os.environ.get("OPENAI_API_KEY") else StandInModel()


def ask(runtime: Any, role: str, prompt: str) -> str:
    """One model call, recorded as an effect in the ledger."""
    answer: str = runtime.effect(f"llm.{role}", MODEL.complete, role, prompt)
    return answer


# --------------------------------------------------------------------------- the agents


def planner(message: str, *, runtime: Any, context: dict[str, Any]) -> list[str]:
    """Split the topic into research questions, one token per question."""
    plan = ask(runtime, "planner", message).splitlines()
    runtime.state["questions"] = len(plan)
    for question in plan:
        runtime.emit("researcher", question)
    return plan


def researcher(message: str, *, runtime: Any, context: dict[str, Any]) -> str:
    """Answer one question; the writer starts once every answer is in."""
    finding = ask(runtime, "researcher", message)
    notes = runtime.state.setdefault("notes", [])
    notes.append(finding)
    if len(notes) == runtime.state["questions"]:
        runtime.emit("writer", {"notes": notes, "revision": 0})
    return finding


def writer(message: dict[str, Any], *, runtime: Any, context: dict[str, Any]) -> str:
    """Write (or revise) the report and hand it to the reviewer."""
    notes = "\n".join(message["notes"]) + "\n[revision]" * message["revision"]
    draft = ask(runtime, "writer", notes)
    runtime.emit("reviewer", {**message, "draft": draft})
    return draft


def reviewer(message: dict[str, Any], *, runtime: Any, context: dict[str, Any]) -> str:
    """Approve the draft, or send it back to the writer (a loop in the graph)."""
    verdict = ask(runtime, "reviewer", message["draft"] + "\n[revision]" * message["revision"])
    runtime.record_event("review", metadata={"revision": message["revision"], "verdict": verdict})
    if verdict.startswith("APPROVE"):
        runtime.state["final"] = message["draft"]
    else:
        runtime.emit("writer", {"notes": message["notes"], "revision": message["revision"] + 1})
    return verdict


def build_workload() -> CodonWorkload:
    workload = CodonWorkload(
        name="Research Team",
        version="1.0.0",
        description="planner, researchers, writer and reviewer with a revision loop",
        tags=["demo"],
        org_namespace="codon-demo",
    )
    workload.add_node(planner, "planner", "planner", model_name=MODEL.name)
    workload.add_node(researcher, "researcher", "researcher", model_name=MODEL.name)
    workload.add_node(writer, "writer", "writer", model_name=MODEL.name)
    workload.add_node(reviewer, "reviewer", "reviewer", model_name=MODEL.name)
    workload.add_edge("planner", "researcher")
    workload.add_edge("researcher", "writer")
    workload.add_edge("writer", "reviewer")
    workload.add_edge("reviewer", "writer")
    return workload


workload = build_workload()


def print_summary(report: ExecutionReport, ledger_url: str) -> None:
    chain = report.check_chain()
    print(f"Codon demo: {workload.name} v{workload.version}  (model: {MODEL.name})")
    print(f"  run id        {report.run_id}")
    print(f"  status        {report.status} in {report.duration_ms:.1f} ms")
    print(f"  logic id      {report.logic_id}")
    print(f"  ledger        {ledger_url}")
    print(f"  events        {report.event_count}")
    print(f"  head hash     {report.head_hash}")
    print(f"  chain check   {'PASSED' if chain.ok else 'FAILED: ' + str(chain)}")
    print("  nodes run:")
    for node, records in report.results.items():
        total = sum(r.duration_ms for r in records)
        print(f"    {node:<11} {len(records)} activation(s)  {total:8.2f} ms")
    print(f"  final report  {report.state.get('final', '(none)')}")
    print(f"\nTry:  codon runs show {report.run_id} --ledger {ledger_url}")


def main() -> int:
    ledger_url = default_ledger_url()
    report = workload.execute(
        "agent observability",
        deployment_id="demo-local",
        store=ledger_url,
        invoked_by="make demo",
    )
    print_summary(report, ledger_url)
    return 0 if report.check_chain().ok and report.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
