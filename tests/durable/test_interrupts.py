"""Human in the loop: ``runtime.interrupt`` pauses a durable run; ``resume`` continues it.

The pause is status ``interrupted`` with a ``run_interrupted`` event (reason, payload);
``resume(..., input=..., actor=...)`` re-enters the interrupted node, where
``runtime.interrupt(...)`` now returns the input, and a ``run_resumed`` event records the
input and the actor (who approved). Activations completed before the pause never run again.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, ExecutionReport, RetryPolicy
from codon_sdk.errors import InputRequiredError, RunConflictError

from ._support import (
    assert_chain,
    opened,
    outcome,
    parse,
    run_child,
    stored_entries,
    types,
    write_module,
)

APPROVAL = {"approved": True, "note": "ship it"}


def approval_workload(calls: Counter[str]) -> CodonWorkload:
    """draft -> review (asks a human) -> publish; ``calls`` counts every node call."""

    def draft(topic: Any, *, runtime: Any, context: Any) -> Any:
        calls["draft"] += 1
        runtime.state["drafts"] = runtime.state.get("drafts", 0) + 1
        runtime.emit("review", f"draft about {topic}")
        return "drafted"

    def review(text: Any, *, runtime: Any, context: Any) -> Any:
        calls["review"] += 1
        runtime.state["reviews"] = runtime.state.get("reviews", 0) + 1
        decision = runtime.interrupt("approve the draft", payload={"draft": text})
        calls["review_resumed"] += 1
        runtime.state["decision"] = decision
        runtime.emit("publish", {"text": text, "decision": decision})
        return decision

    def publish(item: Any, *, runtime: Any, context: Any) -> Any:
        calls["publish"] += 1
        return f"published: {item['text']} ({item['decision']['note']})"

    workload = CodonWorkload(name="approval", version="1", org_namespace="durable-tests")
    workload.add_node(draft, "draft", "writer")
    workload.add_node(review, "review", "human")
    workload.add_node(publish, "publish", "publisher")
    workload.add_edge("draft", "review")
    workload.add_edge("review", "publish")
    return workload


def _paused(url: str, run_id: str, calls: Counter[str], **kwargs: Any) -> ExecutionReport:
    report = approval_workload(calls).execute(
        "otters", deployment_id="prod", store=url, run_id=run_id, **kwargs
    )
    assert report.status == "interrupted"
    return report


def test_interrupt_pauses_the_run_with_status_interrupted_and_a_run_interrupted_event(
    ledger_url: str,
) -> None:
    calls: Counter[str] = Counter()
    report = _paused(ledger_url, "hitl-pause", calls)
    assert calls == {"draft": 1, "review": 1}
    assert report.node_results("draft") == ["drafted"]
    last = report.ledger[-1]
    assert last.event_type == "run_interrupted"
    assert last.source_node == "review"
    assert last.metadata["reason"] == "approve the draft"
    assert last.metadata["payload"] == {"draft": "draft about otters"}
    assert "run_finished" not in types(list(report.events()))
    # the state shows what was recorded: the interrupted activation's write is not in it
    assert report.state == {"drafts": 1}

    entries = stored_entries(ledger_url, "hitl-pause")
    assert entries == list(report.entries)
    assert_chain(entries, "hitl-pause", require_end=False)
    with opened(ledger_url) as store:
        info = store.get_run("hitl-pause")
    assert (info.status, info.owner, info.finished_at) == ("interrupted", None, None)


def test_resume_with_input_and_actor_reenters_the_node_which_receives_the_input(
    ledger_url: str,
) -> None:
    calls: Counter[str] = Counter()
    paused = _paused(ledger_url, "hitl-resume", calls)
    interrupted_token = paused.ledger[-1].token_id

    report = approval_workload(calls).resume(
        "hitl-resume", store=ledger_url, input=APPROVAL, actor="alice"
    )
    assert report.status == "completed"
    # draft completed before the pause and never ran again; review ran from its start again
    assert calls == {"draft": 1, "review": 2, "review_resumed": 1, "publish": 1}
    assert report.node_results("review") == [APPROVAL]
    assert report.node_results("publish") == ["published: draft about otters (ship it)"]
    assert report.state == {"drafts": 1, "reviews": 1, "decision": APPROVAL}

    events = parse(stored_entries(ledger_url, "hitl-resume"))
    (resumed,) = [e for e in events if e.type == "run_resumed"]
    assert resumed.actor == "alice"
    assert resumed.metadata["input"] == APPROVAL
    assert resumed.metadata["reason"] == "interrupt"
    assert (resumed.node, resumed.token_id) == ("review", interrupted_token)
    assert resumed.seq == paused.event_count
    audit_view = [e for e in report.ledger if e.event_type == "run_resumed"]
    assert [e.actor for e in audit_view] == ["alice"]
    with opened(ledger_url) as store:
        info = store.get_run("hitl-resume")
    assert (info.status, info.owner, info.event_count) == ("completed", None, len(events))


def test_the_report_of_a_resumed_run_covers_the_whole_run(sqlite_url: str) -> None:
    calls: Counter[str] = Counter()
    paused = _paused(sqlite_url, "hitl-whole", calls)
    report = approval_workload(calls).resume("hitl-whole", store=sqlite_url, input=APPROVAL)
    assert report.run_id == "hitl-whole"
    assert report.started_at == paused.started_at
    assert report.ledger[0].event_type == "run_started"
    assert list(report.entries)[: paused.event_count] == list(paused.entries)
    assert report.event_count == len(stored_entries(sqlite_url, "hitl-whole"))
    assert report.node_results("draft") == ["drafted"]  # completed before the pause
    assert sorted(report.results) == ["draft", "publish", "review"]
    assert report.check_chain().ok


def test_context_extras_and_ids_reach_the_nodes_again_after_resume(sqlite_url: str) -> None:
    """``execute(..., invoked_by=...)`` extras and the run's ids are the same after a resume."""
    seen: list[dict[str, Any]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        seen.append(dict(context))
        return runtime.interrupt("ok?")

    workload = CodonWorkload(name="ctx", version="1", org_namespace="durable-tests")
    workload.add_node(ask, "ask", "human")
    workload.execute(
        None, deployment_id="prod-eu", store=sqlite_url, run_id="hitl-ctx", invoked_by="cli"
    )
    workload.resume("hitl-ctx", store=sqlite_url, input="yes")
    before, after = seen
    for key in ("invoked_by", "run_id", "deployment_id", "logic_id", "workload_name"):
        assert after[key] == before[key], key
    assert after["invoked_by"] == "cli"
    assert after["run_id"] == "hitl-ctx"


def test_an_interrupted_run_is_resumed_with_input_and_actor_in_a_new_process(
    ledger_url: str, tmp_path: Path
) -> None:
    source = """
from codon_sdk import CodonWorkload


def ask(question, *, runtime, context):
    runtime.state["asked"] = runtime.state.get("asked", 0) + 1
    answer = runtime.interrupt("needs a human", payload={"question": question})
    runtime.state["answer"] = answer
    return {"question": question, "answer": answer}


workload = CodonWorkload(name="ask-human", version="1", org_namespace="durable-tests")
workload.add_node(ask, "ask", "human")
"""
    path = write_module(tmp_path / "mods", "ask_human", source)
    paused = outcome(
        run_child(
            path,
            "execute",
            payload="deploy?",
            kwargs={"store": ledger_url, "run_id": "hitl-proc"},
        )
    )
    assert paused.get("status") == "interrupted", paused
    resumed = outcome(
        run_child(
            path,
            "resume",
            run_id="hitl-proc",
            kwargs={"store": ledger_url, "input": {"go": True}, "actor": "bob@example.com"},
        )
    )
    assert resumed.get("status") == "completed", resumed
    assert resumed["results"] == {"ask": [{"question": "deploy?", "answer": {"go": True}}]}
    assert resumed["state"] == {"asked": 1, "answer": {"go": True}}
    events = parse(stored_entries(ledger_url, "hitl-proc"))
    (event,) = [e for e in events if e.type == "run_resumed"]
    assert (event.actor, event.metadata["input"]) == ("bob@example.com", {"go": True})
    interrupted = [e for e in events if e.type == "run_interrupted"]
    assert interrupted[0].metadata["payload"] == {"question": "deploy?"}


def test_several_interrupts_in_one_activation_pause_in_turn(sqlite_url: str) -> None:
    def two_approvals(message: Any, *, runtime: Any, context: Any) -> Any:
        legal = runtime.interrupt("legal review", payload=1)
        finance = runtime.interrupt("finance review", payload=2)
        return [legal, finance]

    workload = CodonWorkload(name="two-approvals", version="1", org_namespace="durable-tests")
    workload.add_node(two_approvals, "approve", "human")
    first = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="hitl-two")
    assert (first.status, first.ledger[-1].metadata["reason"]) == ("interrupted", "legal review")
    second = workload.resume("hitl-two", store=sqlite_url, input="legal ok", actor="lena")
    assert second.status == "interrupted"
    assert second.ledger[-1].metadata["reason"] == "finance review"
    third = workload.resume("hitl-two", store=sqlite_url, input="finance ok", actor="fred")
    assert third.status == "completed"
    assert third.node_results("approve") == [["legal ok", "finance ok"]]
    resumes = [e for e in parse(stored_entries(sqlite_url, "hitl-two")) if e.type == "run_resumed"]
    assert [(e.actor, e.metadata["input"]) for e in resumes] == [
        ("lena", "legal ok"),
        ("fred", "finance ok"),
    ]


def test_an_interrupt_is_not_swallowed_by_except_exception_in_the_node(sqlite_url: str) -> None:
    def careful(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            return runtime.interrupt("approve?")
        except Exception:
            return "swallowed"

    workload = CodonWorkload(name="careful", version="1", org_namespace="durable-tests")
    workload.add_node(careful, "careful", "human")
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="hitl-except")
    assert report.status == "interrupted"
    resumed = workload.resume("hitl-except", store=sqlite_url, input="approved")
    assert resumed.node_results("careful") == ["approved"]


def test_an_interrupt_is_a_pause_not_a_failure_so_a_retry_policy_does_not_retry_it(
    sqlite_url: str,
) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?")

    workload = CodonWorkload(name="retry-ask", version="1", org_namespace="durable-tests")
    workload.add_node(ask, "ask", "human", retry=RetryPolicy(max_attempts=3, initial_delay=0))
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="hitl-retry")
    assert report.status == "interrupted"
    kinds = types(list(report.events()))
    assert "node_retrying" not in kinds
    assert "node_failed" not in kinds
    assert workload.resume("hitl-retry", store=sqlite_url, input=1).node_results("ask") == [1]


@pytest.mark.parametrize("durability", ["sync", "batch", "exit"])
def test_an_interrupted_run_resumes_under_every_durability_mode(
    sqlite_url: str, durability: str
) -> None:
    calls: Counter[str] = Counter()
    run_id = f"hitl-{durability}"
    paused = _paused(sqlite_url, run_id, calls, durability=durability)
    assert stored_entries(sqlite_url, run_id) == list(paused.entries)
    report = approval_workload(calls).resume(
        run_id, store=sqlite_url, input=APPROVAL, actor="alice", durability=durability
    )
    assert report.status == "completed"
    assert stored_entries(sqlite_url, run_id) == list(report.entries)
    assert calls["draft"] == 1


def test_with_concurrent_branches_the_others_finish_and_never_run_again_after_resume(
    sqlite_url: str,
) -> None:
    """max_concurrency=2: one branch pauses, the other completes before the pause is recorded."""
    calls: Counter[str] = Counter()
    started = threading.Event()

    def split(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("work", message)
        runtime.emit("ask", message)
        return "split"

    def work(message: Any, *, runtime: Any, context: Any) -> Any:
        calls["work"] += 1
        started.wait(5)
        return "worked"

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        calls["ask"] += 1
        started.set()
        return runtime.interrupt("approve?")

    workload = CodonWorkload(name="branches", version="1", org_namespace="durable-tests")
    for fn, name in ((split, "split"), (work, "work"), (ask, "ask")):
        workload.add_node(fn, name, "r")
    workload.add_edge("split", "work")
    workload.add_edge("split", "ask")
    paused = workload.execute(
        None, deployment_id="d", store=sqlite_url, run_id="hitl-branches", max_concurrency=2
    )
    assert paused.status == "interrupted"
    assert paused.node_results("work") == ["worked"]
    report = workload.resume("hitl-branches", store=sqlite_url, input="yes")
    assert report.status == "completed"
    assert calls == {"work": 1, "ask": 2}
    assert report.node_results("ask") == ["yes"]
    assert report.node_results("work") == ["worked"]


def test_resuming_a_finished_run_returns_its_report_without_running_anything(
    ledger_url: str,
) -> None:
    calls: Counter[str] = Counter()
    _paused(ledger_url, "hitl-done", calls)
    done = approval_workload(calls).resume("hitl-done", store=ledger_url, input=APPROVAL)
    before = dict(calls)
    stored = stored_entries(ledger_url, "hitl-done")

    again = approval_workload(calls).resume("hitl-done", store=ledger_url)
    assert dict(calls) == before, "a node ran while resuming a finished run"
    assert stored_entries(ledger_url, "hitl-done") == stored
    assert again.status == "completed"
    assert list(again.entries) == list(done.entries)
    assert again.state == done.state
    assert {n: again.node_results(n) for n in again.results} == {
        n: done.node_results(n) for n in done.results
    }


def test_a_late_decision_on_a_finished_run_is_refused_naming_its_status(ledger_url: str) -> None:
    """An approval or rejection that arrives after the run ended is not silently dropped."""
    calls: Counter[str] = Counter()
    _paused(ledger_url, "hitl-late", calls)
    approval_workload(calls).resume("hitl-late", store=ledger_url, input=APPROVAL)
    stored = stored_entries(ledger_url, "hitl-late")
    with pytest.raises(RunConflictError, match=r"already ended \(completed\)"):
        approval_workload(calls).resume(
            "hitl-late", store=ledger_url, input={"approved": False}, actor="mallory"
        )
    assert stored_entries(ledger_url, "hitl-late") == stored


def test_a_run_waiting_for_input_is_not_resumed_without_one(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    _paused(ledger_url, "hitl-no-input", calls)
    stored = stored_entries(ledger_url, "hitl-no-input")
    with pytest.raises(InputRequiredError, match="waits for an input at node"):
        approval_workload(calls).resume("hitl-no-input", store=ledger_url, actor="alice")
    assert stored_entries(ledger_url, "hitl-no-input") == stored
    done = approval_workload(calls).resume("hitl-no-input", store=ledger_url, input=APPROVAL)
    assert done.status == "completed"


def test_an_interrupt_with_a_declared_default_resumes_on_it(sqlite_url: str) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?", payload=message, default={"approved": True})

    wl = CodonWorkload(name="defaults", version="1", org_namespace="durable-tests")
    wl.add_node(ask, "ask", "approver")
    assert wl.execute("x", deployment_id="d", store=sqlite_url, run_id="dflt").status == (
        "interrupted"
    )
    report = wl.resume("dflt", store=sqlite_url, actor="timer")
    assert report.node_results("ask") == [{"approved": True}]


def test_max_steps_counts_each_activation_once_across_a_pause(sqlite_url: str) -> None:
    """A run that pauses on its last allowed step resumes within the same max_steps: the
    interrupted activation runs again and is counted once, not twice."""

    def loop(message: Any, *, runtime: Any, context: Any) -> Any:
        if message < 5:
            runtime.emit("loop", message + 1)
            return message
        return runtime.interrupt("last step: go?")

    wl = CodonWorkload(name="steps", version="1", org_namespace="durable-tests")
    wl.add_node(loop, "loop", "worker")
    wl.add_edge("loop", "loop")
    paused = wl.execute(1, deployment_id="d", store=sqlite_url, run_id="steps", max_steps=5)
    assert paused.status == "interrupted"
    done = wl.resume("steps", store=sqlite_url, input="yes", max_steps=5)
    assert done.status == "completed"
    assert done.node_results("loop")[-1] == "yes"


def test_reports_give_active_and_waiting_time_apart(sqlite_url: str) -> None:
    """A run that waited for a human reports the wait apart from the time it ran."""
    import time

    from codon_sdk import load_report

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?")

    wl = CodonWorkload(name="waits", version="1", org_namespace="durable-tests")
    wl.add_node(ask, "ask", "human")
    paused = wl.execute("x", deployment_id="d", store=sqlite_url, run_id="waits")
    assert paused.waiting_ms == 0
    assert paused.active_ms == paused.duration_ms
    time.sleep(0.3)
    done = wl.resume("waits", store=sqlite_url, input="ok")
    for report in (done, load_report(sqlite_url, "waits")):
        assert report.waiting_ms >= 300
        assert report.active_ms < report.duration_ms - 250
        assert "waiting" in report.summary()
