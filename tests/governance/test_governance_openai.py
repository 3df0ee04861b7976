"""Governance with the real openai client against the local OpenAI-protocol server:
policies decide before the call, budgets stop a run before the call that would cross them,
rate limits spread calls over time, a deployment budget holds across processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.instrumentation._openai_support import (
    FRANCE,
    async_client,
    instrumented,
    serving,
    sync_client,
    workload,
)

from codon_sdk.errors import (
    ConfigurationError,
    PolicyDeniedError,
    RateLimitWaitError,
    WorkloadRuntimeError,
)
from codon_sdk.governance import (
    Budget,
    Decision,
    MaxTokensPerCall,
    ModelAllowlist,
    NoSensitiveData,
    Policy,
    RateLimit,
    ToolAllowlist,
    estimate_tokens,
    governance_of,
)
from codon_sdk.ledger import BUDGET_EXCEEDED, POLICY_DECIDED
from codon_sdk.stores import ReadBudget, open_store
from codon_sdk.telemetry import TokenUsage, cost_of
from codon_sdk.testing import capture_spans

SUPPORT = str(Path(__file__).parents[1] / "instrumentation")


def _two_processes(worker: str, *args: str) -> list[str]:
    """Run ``worker`` (a script beside this file) in two OS processes at once; their outputs."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    script = str(Path(__file__).with_name(worker))
    procs = [
        subprocess.Popen(
            [sys.executable, script, *args, SUPPORT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def _asker(client: Any, model: str = "gpt-4o-mini", messages: Any = FRANCE, **kw: Any) -> Any:
    def ask(n: int, *, runtime: Any, context: Any) -> int:
        for _ in range(n):
            client.chat.completions.create(model=model, messages=messages, **kw)
        return n

    return ask


def test_a_denied_model_makes_no_request_and_the_run_records_why() -> None:
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server), model="gpt-4o")), tracing=False)
        wl.add_policy(ModelAllowlist(["gpt-4o-mini"]))
        with pytest.raises(PolicyDeniedError, match="not in the allowlist") as caught:
            wl.execute(1, deployment_id="d")
        assert server.requests == ()
    report = caught.value.report
    assert report is not None
    (decision,) = governance_of(report).decisions
    assert decision["policy"] == "model_allowlist"
    assert decision["decision"] == "deny"
    assert decision["model"] == "gpt-4o"
    assert len(decision["policy_id"]) == 64
    assert any(ev.type == POLICY_DECIDED for ev in report.events())


def test_an_allowed_model_is_called_and_records_no_decision() -> None:
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_policy(ModelAllowlist("gpt-4o-mini"))
        report = wl.execute(2, deployment_id="d")
    assert len(server.requests) == 2
    assert governance_of(report).decisions == []


def test_a_policy_that_raises_is_a_deny_with_the_exception_recorded() -> None:
    class Broken(Policy):
        def check_llm_call(self, call: Any) -> Decision:
            raise KeyError("oops")

    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_policy(Broken())
        with pytest.raises(PolicyDeniedError, match="KeyError") as caught:
            wl.execute(1, deployment_id="d")
        assert server.requests == ()
    (decision,) = governance_of(caught.value.report).decisions  # type: ignore[arg-type]
    assert "KeyError" in decision["reason"]
    assert decision["policy"] == "Broken"


def test_a_request_holding_a_secret_is_not_sent_to_the_model() -> None:
    leaky = [{"role": "user", "content": "my card is 4111 1111 1111 1111, mail a@b.example"}]
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server), messages=leaky)), tracing=False)
        wl.add_policy(NoSensitiveData())
        with pytest.raises(PolicyDeniedError, match="card_number"):
            wl.execute(1, deployment_id="d")
        assert server.requests == ()


def test_max_tokens_per_call_denies_a_call_asking_for_too_much() -> None:
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server), max_tokens=5000)), tracing=False)
        wl.add_policy(MaxTokensPerCall(1000), node="ask")
        with pytest.raises(PolicyDeniedError, match="over the limit of 1000"):
            wl.execute(1, deployment_id="d")
        assert server.requests == ()


def test_the_node_can_catch_a_denial_and_go_on() -> None:
    def ask(_: Any, *, runtime: Any, context: Any) -> str:
        try:
            client.chat.completions.create(model="gpt-4o", messages=FRANCE)
        except PolicyDeniedError as exc:
            return f"refused: {exc.rule}"
        return "sent"

    with serving() as server, instrumented():
        client = sync_client(server)
        wl = workload(("ask", ask), tracing=False)
        wl.add_policy(ModelAllowlist(["gpt-4o-mini"]))
        assert wl.execute(0, deployment_id="d").node_results("ask") == ["refused: model_allowlist"]


def test_require_approval_pauses_the_run_and_an_approval_lets_the_call_through(
    tmp_path: Path,
) -> None:
    class AskFirst(Policy):
        def check_llm_call(self, call: Any) -> Decision:
            return Decision.require_approval(f"send to {call.model}?")

    store = f"sqlite:///{tmp_path / 'l.db'}"
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_policy(AskFirst())
        paused = wl.execute(1, deployment_id="d", store=store)
        assert paused.status == "interrupted"
        assert server.requests == ()
        done = wl.resume(paused.run_id, store=store, input=True)
        assert done.status == "completed"
        assert len(server.requests) == 1
    kinds = [d["decision"] for d in governance_of(done).decisions]
    assert kinds == ["require_approval", "approved"]


def test_a_refused_approval_denies_the_call(tmp_path: Path) -> None:
    class AskFirst(Policy):
        def check_activation(self, activation: Any) -> Decision:
            return Decision.require_approval("run it?")

    store = f"sqlite:///{tmp_path / 'l.db'}"
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_policy(AskFirst())
        paused = wl.execute(1, deployment_id="d", store=store)
        with pytest.raises(PolicyDeniedError, match="did not approve"):
            wl.resume(paused.run_id, store=store, input=False)
        assert server.requests == ()


def test_tool_allowlist_denies_an_unlisted_effect() -> None:
    def node(_: Any, *, runtime: Any, context: Any) -> Any:
        runtime.now()
        return runtime.effect("wire_money", lambda: 1)

    wl = workload(("n", node), tracing=False)
    wl.add_policy(ToolAllowlist(["search"]))
    with pytest.raises(PolicyDeniedError, match="'wire_money' is not in the allowlist"):
        wl.execute(0, deployment_id="d")


def _cost_of_one_call() -> float:
    with serving() as server, instrumented():
        ask = _asker(sync_client(server), max_tokens=10)
        report = workload(("ask", ask), tracing=False).execute(1, deployment_id="d")
    cost = report.usage["total"]["cost_usd"]
    assert isinstance(cost, float)
    assert cost > 0
    return cost


def test_a_cost_budget_stops_the_run_before_the_call_that_would_cross_it() -> None:
    one = _cost_of_one_call()
    with serving() as server, instrumented():
        # the estimate counts the output limit asked for (max_tokens), so it covers the answer
        tokens_in, tokens_out = estimate_tokens({"messages": FRANCE, "max_tokens": 10})
        estimate = cost_of(
            TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out), "gpt-4o-mini"
        )
        assert estimate is not None
        assert one / 2 < estimate < 2 * one
        limit = 2 * one + estimate / 2  # two calls fit; the third's estimate would cross it
        wl = workload(("ask", _asker(sync_client(server), max_tokens=10)), tracing=False)
        wl.add_budget(Budget(usd=limit))
        report = wl.execute(5, deployment_id="d")
        assert len(server.requests) == 2
    assert report.status == "stopped"
    assert "run budget 'budget': usd limit" in (report.reason or "")
    (stop,) = governance_of(report).budget_stops
    assert stop["measure"] == "usd"
    assert stop["spent"] == pytest.approx(one * 2)
    assert report.usage["total"]["cost_usd"] <= limit
    assert any(ev.type == BUDGET_EXCEEDED for ev in report.events())


def test_budgets_on_calls_and_activations_stop_the_run() -> None:
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_budget(Budget(llm_calls=3))
        report = wl.execute(10, deployment_id="d")
        assert report.status == "stopped"
        assert len(server.requests) == 3
        assert "llm_calls limit 3" in (report.reason or "")

    def loop(i: int, *, runtime: Any, context: Any) -> int:
        runtime.emit("loop", i + 1)
        return i

    wl2 = workload(("loop", loop), tracing=False)
    wl2.add_edge("loop", "loop")
    wl2.add_budget(Budget(activations=4))
    report = wl2.execute(0, deployment_id="d")
    assert report.status == "stopped"
    assert report.node_results("loop") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"usd": "5 EUR"}, "US dollars"),
        ({"usd": -1}, "at least 0"),
        ({"tokens": -5}, "at least 0"),
        ({"tokens": 1.5}, "whole number"),
        ({"wall_time": "5 tokens"}, "duration"),
        ({"llm_calls": True}, "whole number"),
        ({}, "at least one limit"),
        ({"per": "week", "usd": 1}, "per="),
        ({"per": "deployment", "wall_time": 5}, "cannot limit wall_time"),
    ],
)
def test_a_budget_in_the_wrong_unit_or_negative_is_refused_at_configuration(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Budget(**kwargs)


def test_bad_policies_and_limits_are_refused_at_configuration() -> None:
    wl = workload(("n", lambda m, *, runtime, context: m), tracing=False)
    with pytest.raises(ConfigurationError, match="Policy"):
        wl.add_policy(lambda call: None)  # type: ignore[arg-type]
    with pytest.raises(WorkloadRuntimeError.__mro__[1], match="no such node"):
        wl.add_policy(ModelAllowlist(["m"]), node="missing")
    for bad in ({"tokens_per_minute": 0}, {}, {"requests_per_minute": 5, "max_wait": -1}):
        with pytest.raises(ConfigurationError):
            RateLimit(**bad)
    with pytest.raises(ConfigurationError):
        ModelAllowlist([])


class _VirtualClock:
    """Time that passes only when a caller sleeps: the window runs on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_a_token_per_minute_limit_spreads_20_calls_over_time_instead_of_failing() -> None:
    clock = _VirtualClock()
    times: list[float] = []

    def ask(n: int, *, runtime: Any, context: Any) -> int:
        for _ in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, max_tokens=20)
            times.append(clock.now)
        return n

    limit = RateLimit(
        model="gpt-4o-mini", tokens_per_minute=120, window=60.0, clock=clock, max_wait=3600
    )
    with serving() as server, instrumented():
        client = sync_client(server)
        wl = workload(("ask", ask), tracing=False)
        wl.add_rate_limit(limit)
        report = wl.execute(20, deployment_id="d")
        assert len(server.requests) == 20
    assert report.status == "completed"
    assert times[-1] >= 60.0  # spread over more than one window
    waits = governance_of(report).waits
    assert waits
    assert governance_of(report).waited_s == pytest.approx(times[-1])
    assert all(w["limit"].startswith("rate limit (model='gpt-4o-mini'") for w in waits)


def test_a_rate_limit_on_the_real_clock_spreads_calls_in_a_short_window() -> None:
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server), max_tokens=20)), tracing=False)
        wl.add_rate_limit(RateLimit(requests_per_minute=5, window=0.2, max_wait=5))
        report = wl.execute(20, deployment_id="d")
        assert len(server.requests) == 20
    assert report.status == "completed"
    assert governance_of(report).waited_s > 0


def test_a_wait_past_max_wait_is_a_clear_error_and_nothing_is_sent() -> None:
    clock = _VirtualClock()
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_rate_limit(RateLimit(requests_per_minute=1, clock=clock, max_wait=10))
        with pytest.raises(RateLimitWaitError, match="longer than its max_wait=10s"):
            wl.execute(2, deployment_id="d")
        assert len(server.requests) == 1


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_a_deployment_budget_holds_across_runs(backend: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}" if backend == "sqlite" else None
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_budget(Budget(per="deployment", name=f"calls-{backend}", llm_calls=3))
        first = wl.execute(2, deployment_id=f"dep-{backend}", store=store)
        second = wl.execute(2, deployment_id=f"dep-{backend}", store=store)
        other = wl.execute(1, deployment_id=f"other-{backend}", store=store)
        assert len(server.requests) == 4
    assert first.status == "completed"
    assert second.status == "stopped"
    assert "deployment budget" in (second.reason or "")
    assert other.status == "completed"


def test_a_deployment_budget_holds_across_two_processes_on_postgres(pg_url: str) -> None:
    outs = _two_processes("_deploy_worker.py", pg_url, "4")
    results = [out.split()[-2:] for out in outs]
    sent = sum(int(n) for _, n in results)
    assert sent == 5  # 8 asked for, the budget allows 5 across both processes
    assert sorted(status for status, _ in results).count("stopped") >= 1


def test_a_rate_limit_is_shared_across_two_processes_on_postgres(pg_url: str) -> None:
    """4 calls per 1 s window, 6 calls in each of two processes started together: shared, the
    12 calls need three windows (the last starts 2 s after the first); each process alone
    would be done within about one."""
    start_at = f"{time.time() + 4.0:.6f}"  # both past their imports by then
    outs = _two_processes("_rate_worker.py", pg_url, start_at, "6")
    runs = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    calls = sorted(tuple(t) for r in runs for t in r["times"])
    assert len(calls) == 12
    first_start = calls[0][0]
    last_done = max(done for _, done in calls)
    assert last_done - first_start >= 2.0


def test_a_rate_limit_wait_shows_on_the_node_span() -> None:
    clock = _VirtualClock()
    with capture_spans() as captured, serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=True)
        wl.add_rate_limit(RateLimit(requests_per_minute=1, clock=clock, max_wait=600))
        wl.execute(2, deployment_id="d")
    (node,) = [s for s in captured.spans if s.name == "codon.node.ask"]
    waits = [e for e in node.events if e.name == "codon.rate_limit.wait"]
    assert len(waits) == 1
    assert waits[0].attributes["codon.rate_limit.wait_s"] == 60.0


def test_an_async_nodes_rate_limit_wait_leaves_the_event_loop_to_the_other_activations() -> None:
    """An async LLM call waiting for room awaits: a sibling async activation runs meanwhile
    (a blocking sleep would hold the whole event loop for the wait)."""
    woke: list[float] = []
    sent: list[float] = []

    async def plan(_: Any, *, runtime: Any, context: Any) -> None:
        runtime.emit("ask", 2)
        runtime.emit("tick", None)

    async def ask(n: int, *, runtime: Any, context: Any) -> int:
        async with async_client(server) as client:  # closed on the run's own event loop
            for _ in range(n):
                await client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
                sent.append(time.monotonic())
        return n

    async def tick(_: Any, *, runtime: Any, context: Any) -> None:
        await asyncio.sleep(0.1)  # wakes while ask waits about 1.5 s for its second call
        woke.append(time.monotonic())

    with serving() as server, instrumented():
        wl = workload(("plan", plan), tracing=False)
        wl.add_node(ask, "ask", "llm")
        wl.add_node(tick, "tick", "clock")
        wl.add_edge("plan", "ask")
        wl.add_edge("plan", "tick")
        wl.add_rate_limit(RateLimit(requests_per_minute=1, window=1.5, max_wait=30))
        report = wl.execute(None, deployment_id="d", max_concurrency=2)
        assert len(server.requests) == 2
    assert report.status == "completed"
    assert governance_of(report).waited_s > 1.0
    assert woke[0] < sent[1] - 0.5  # the loop was free during the wait


def test_an_effect_slot_reserved_with_defer_refuses_to_record_before_it_is_cleared() -> None:
    """``defer=True`` moves the checks to ``await slot.cleared()``; recording without
    clearing would skip the policies, so it is refused."""

    async def node(_: Any, *, runtime: Any, context: Any) -> str:
        slot = runtime.effect_slot("call", request={"q": 1}, defer=True)
        with pytest.raises(WorkloadRuntimeError, match=r"await slot\.cleared\(\)"):
            slot.record("early")
        await slot.cleared()
        slot.record("answer")
        runtime.emit("denied", None)
        return "done"

    async def denied(_: Any, *, runtime: Any, context: Any) -> str:
        slot = runtime.effect_slot("other", request={"q": 1}, defer=True)  # nothing checked yet
        with pytest.raises(PolicyDeniedError, match="'other'"):
            await slot.cleared()
        return "refused"

    wl = workload(("node", node), ("denied", denied), tracing=False)
    wl.add_policy(ToolAllowlist(["call"]))
    report = wl.execute(None, deployment_id="d")
    assert report.status == "completed", report.error
    assert report.node_results("denied") == ["refused"]


def test_the_summary_names_what_governance_did() -> None:
    """``summary()`` of a governed run that waited says how many waits and how long."""
    clock = _VirtualClock()
    with serving() as server, instrumented():
        wl = workload(("ask", _asker(sync_client(server))), tracing=False)
        wl.add_rate_limit(RateLimit(requests_per_minute=1, clock=clock, max_wait=600))
        report = wl.execute(2, deployment_id="d")
    assert "governance: 0 policy decision(s), 0 budget stop(s), 1 rate-limit wait(s) " in (
        report.summary()
    )
    assert "totalling 60.000 s" in report.summary()
    plain = workload(("ask", lambda n, *, runtime, context: n), tracing=False)
    assert "governance:" not in plain.execute(1, deployment_id="d").summary()


def test_a_paused_activation_is_charged_to_the_deployment_budget_once(tmp_path: Path) -> None:
    """The activation that paused runs again on resume, but it is one activation: the
    deployment's count does not grow with each resume."""

    def ask(_: Any, *, runtime: Any, context: Any) -> str:
        return str(runtime.interrupt("go on?"))

    url = f"sqlite:///{tmp_path / 'l.db'}"
    wl = workload(("ask", ask), tracing=False)
    wl.add_budget(Budget(per="deployment", name="acts", activations=5))
    paused = wl.execute(None, deployment_id="dep-once", store=url)
    assert paused.status == "interrupted"
    done = wl.resume(paused.run_id, store=url, input="yes")
    assert done.status == "completed"
    assert done.node_results("ask") == ["yes"]
    store = open_store(url)
    try:
        totals = store.execute(ReadBudget(deployment_id="dep-once", budget="acts"))
    finally:
        store.close()
    assert totals.of("activations") == 1
