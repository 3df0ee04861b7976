"""The published documentation's examples run unchanged (an LLM call replaced by a stub).

From "Building from Scratch": the single-agent Q&A workflow, the multi-agent
research/writer workflow, the audit-ledger loop and the logic id example.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from codon_sdk.agents import CodonWorkload, ExecutionReport


def call_openai(prompt: str, system: str = "") -> str:
    """Stand-in for a model call: deterministic text derived from the prompt."""
    return f"[{len(system)}] {prompt[:40]}"


def test_single_agent_example() -> None:
    """The documented Q&A agent (keyword name/role, emits, custom events) runs as written."""
    workload = CodonWorkload(name="QA-Agent", version="0.1.0")

    def call_model(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        prompt = message["question"]
        answer = call_openai(prompt, system="You are a helpful assistant.")
        runtime.record_event("call_model", metadata={"answer_length": len(answer)})
        runtime.emit("finalize", {"question": message["question"], "answer": answer})
        return answer

    def prompt_builder(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        question = message["question"]
        prompt = f"Answer the user's question in clear, friendly prose.Question: {question}"
        runtime.record_event("prompt_created", metadata={"length": len(prompt)})
        runtime.emit("call_model", {"question": question})
        return prompt

    def finalize(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        result = {
            "question": message["question"],
            "answer": message["answer"],
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        runtime.record_event("finalized", metadata={"question_hash": hash(message["question"])})
        return result

    workload.add_node(call_model, name="call_model", role="llm")
    workload.add_node(finalize, name="finalize", role="postprocess")
    workload.add_node(prompt_builder, name="prompt_builder", role="format_prompt")
    workload.add_edge("prompt_builder", "call_model")
    workload.add_edge("call_model", "finalize")

    report = workload.execute(
        {"question": "What is the meaning of life, the universe, and everything?"},
        deployment_id="local",
    )
    final_result = report.node_results("finalize")[-1]
    assert final_result["question"].startswith("What is the meaning")
    assert final_result["answer"].startswith("[")
    assert len(workload.logic_id) == 64

    lines = [
        f"{event.timestamp.isoformat()} | {event.event_type} | {event.source_node}"
        for event in report.ledger
    ]
    assert any("| finalized | finalize" in line for line in lines)
    assert any("| node_completed | call_model" in line for line in lines)


def build_multi_agent_workload() -> CodonWorkload:
    workload = CodonWorkload(name="Research-Writer", version="0.1.0")

    def planner(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        topic = message["topic"]
        plan = call_openai(f"Design a research plan. Topic: {topic}", system="planner")
        runtime.state["plan"] = plan
        runtime.emit("researcher", {"topic": topic, "plan": plan})
        return plan

    def researcher(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        insights = call_openai(f"Plan: {message['plan']}", system="analyst")
        runtime.state["insights"] = insights
        runtime.emit(
            "writer",
            {"topic": message["topic"], "plan": message["plan"], "insights": insights},
        )
        return insights

    def writer(message: dict[str, Any], *, runtime: Any, context: Any) -> Any:
        summary = call_openai(f"Topic: {message['topic']}", system="writer")
        runtime.record_event("summary_created", metadata={"length": len(summary)})
        return {**message, "summary": summary}

    workload.add_node(planner, name="planner", role="planner")
    workload.add_node(researcher, name="researcher", role="analyst")
    workload.add_node(writer, name="writer", role="author")
    workload.add_edge("planner", "researcher")
    workload.add_edge("researcher", "writer")
    return workload


def test_multi_agent_example() -> None:
    """The documented multi-agent workflow with shared state and max_steps runs as written."""
    multi_agent = build_multi_agent_workload()
    project = {"topic": "The impact of community gardens on urban wellbeing"}
    multi_report = multi_agent.execute(project, deployment_id="demo", max_steps=20)
    assert isinstance(multi_report, ExecutionReport)
    final_document = multi_report.node_results("writer")[-1]
    assert final_document["topic"] == project["topic"]
    assert set(final_document) == {"topic", "plan", "insights", "summary"}
    assert set(multi_report.state) == {"plan", "insights"}


def test_logic_id_example() -> None:
    """Adding a node and an edge changes the logic id, as the docs' example prints."""
    workload = CodonWorkload(name="TestWorkload", version="0.1.0")

    def simple_node(message: Any, *, runtime: Any, context: Any) -> Any:
        return f"Result: {message['input']}"

    workload.add_node(simple_node, name="test_node", role="processor")
    baseline_logic_id = workload.logic_id

    def echo_node(message: Any, *, runtime: Any, context: Any) -> Any:
        return message

    workload.add_node(echo_node, name="echo", role="responder")
    workload.add_edge("test_node", "echo")
    assert workload.logic_id != baseline_logic_id
