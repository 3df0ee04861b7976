"""A run's governance: the workload's policies, budgets and rate limits applied to its acts.

The engine asks :meth:`RunGovernor.activation` before each node attempt and
:meth:`NodeRuntime.effect_slot` asks :meth:`RunGovernor.call` before each effect or LLM call
that would really be made (not one served from the ledger or the request cache). Order:
policies (nothing is spent on a denied act), then run budgets, then rate limits (the
wait), then deployment budgets (charged in the store by estimate, corrected by
:meth:`RunGovernor.spent` with the usage the call reported, the same ``llm`` metadata the
tracer totals, through its ``_Usage``).

A budget that would be crossed records ``budget_exceeded``, asks the run to stop and
raises ``BudgetExceededError`` in the node; the run ends ``stopped`` with the budget
named in its reason (``_outcome.run_to_end``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from codon_sdk._clock import now_us
from codon_sdk.errors import BudgetExceededError, PolicyDeniedError
from codon_sdk.governance import (
    Activation,
    Budget,
    Clock,
    Effect,
    Governance,
    LLMRequest,
    Policy,
    RateLimit,
    Slot,
    decide,
    estimate_tokens,
    limiter_for,
    policy_identity,
    wait_error,
)
from codon_sdk.ledger import BUDGET_EXCEEDED, POLICY_DECIDED, RATE_LIMIT_WAITED
from codon_sdk.runtime._handle import Interrupt
from codon_sdk.runtime._tracer import _Usage
from codon_sdk.stores import ChargeBudget, LedgerStore, ReadBudget, TakeRateSlot
from codon_sdk.telemetry import TokenUsage, cost_of

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import Run
    from codon_sdk.runtime._handle import NodeRuntime

__all__ = ["RunGovernor", "approved"]

_WAIT_ATTR = "codon.rate_limit.wait_s"

_Pause = tuple[float, Clock]  # a wait a driver makes: seconds, on whose clock


def approved(answer: Any) -> bool:
    """Whether a resume input approves what a policy asked about."""
    if answer is True:
        return True
    return isinstance(answer, Mapping) and answer.get("approved") is True


class RunGovernor:
    """The governance of one run (see the module docstring)."""

    def __init__(self, run: Run, governance: Governance, store: LedgerStore | None) -> None:
        self.run = run
        self.policies = governance.policies
        self.run_budgets = [b for b in governance.budgets if b.per == "run"]
        self.deployment_budgets = [b for b in governance.budgets if b.per == "deployment"]
        self.rate_limits = tuple(governance.rate_limits)
        self.store = store
        self.usage = _Usage()
        self.llm_calls = 0
        # what was spent before a resume: the recorded calls count toward the run's budgets
        for effect in run.effects.values():
            llm = effect.metadata.get("llm")
            if isinstance(llm, Mapping):
                self._count(llm)
        self._pending: dict[str, deque[tuple[list[Slot], int, float]]] = {}
        if self.deployment_budgets and store is None:
            from codon_sdk.stores import MemoryStore

            self.store = _PROCESS_BUDGETS.setdefault("memory", MemoryStore())

    @classmethod
    def of(cls, run: Run, governance: Governance | None, store: LedgerStore | None) -> None:
        """Attach a governor to ``run`` when the workload is governed (else leave it None)."""
        if governance:
            run.governor = cls(run, governance, store)

    # ------------------------------------------------------------------ hooks

    def activation(self, handle: NodeRuntime) -> None:
        """Before a node attempt runs: budgets on activations and time, then the policies."""
        run = self.run
        for budget in self.run_budgets:
            if budget.activations is not None and run.steps > budget.activations:
                self._stop(handle, budget, "activations", budget.activations, run.steps - 1, 1)
            self._check_time(handle, budget)
        if handle._attempt == 0 and handle.token_id not in run.rerun:  # charged once
            for budget in self.deployment_budgets:
                if budget.activations is not None:
                    self._charge(handle, budget, {"activations": 1})
        policies = self.policies.of(handle.node)
        if policies:
            subject = Activation(
                node=handle.node,
                token_id=handle.token_id,
                payload=handle._item[2],
                run_id=run.run_id,
                context=run.context,
            )
            for policy in policies:
                self._ask(handle, policy, "check_activation", subject, {"act": "activation"})

    def call(
        self, handle: NodeRuntime, name: str, request: Any, llm: Mapping[str, Any] | None
    ) -> None:
        """Before an effect (``llm`` None) or an LLM call is made for real: may raise, or
        wait (blocking the thread) for room under a rate limit."""
        for seconds, clock in self._call_flow(handle, name, request, llm):
            clock.sleep(seconds)

    async def acall(
        self, handle: NodeRuntime, name: str, request: Any, llm: Mapping[str, Any] | None
    ) -> None:
        """:meth:`call` for async code: a rate-limit wait awaits, so the event loop (and the
        run's other async activations) goes on meanwhile."""
        for seconds, clock in self._call_flow(handle, name, request, llm):
            if clock is time:
                await asyncio.sleep(seconds)
            else:  # a simulated clock: its sleep does not block
                clock.sleep(seconds)

    def _call_flow(
        self, handle: NodeRuntime, name: str, request: Any, llm: Mapping[str, Any] | None
    ) -> Iterator[_Pause]:
        """The checks of :meth:`call`, written once: yields each wait for its driver."""
        policies = self.policies.of(handle.node)
        if llm is None:
            if policies:
                effect = Effect(
                    node=handle.node,
                    token_id=handle.token_id,
                    name=name,
                    request=request,
                    run_id=self.run.run_id,
                )
                for policy in policies:
                    self._ask(
                        handle, policy, "check_effect", effect, {"act": "effect", "effect": name}
                    )
            return
        params = request if isinstance(request, Mapping) else {}
        model = llm.get("model") if isinstance(llm.get("model"), str) else None
        provider = llm.get("provider") if isinstance(llm.get("provider"), str) else None
        est_in, est_out = estimate_tokens(params)
        est_cost = cost_of(TokenUsage(input_tokens=est_in, output_tokens=est_out), model)
        subject = LLMRequest(
            node=handle.node,
            token_id=handle.token_id,
            name=name,
            provider=provider,
            model=model,
            request=params,
            run_id=self.run.run_id,
            estimated_input_tokens=est_in,
            estimated_output_tokens=est_out,
            estimated_cost_usd=est_cost,
        )
        what = {"act": "llm_call", "effect": name, "model": model, "provider": provider}
        for policy in policies:
            self._ask(handle, policy, "check_llm_call", subject, what)
        tokens, usd = est_in + est_out, est_cost or 0.0
        for budget in self.run_budgets:
            self._check_time(handle, budget)
            if budget.llm_calls is not None and self.llm_calls + 1 > budget.llm_calls:
                self._stop(handle, budget, "llm_calls", budget.llm_calls, self.llm_calls, 1)
            spent_tokens = sum(self.usage.tokens.values())
            if budget.tokens is not None and spent_tokens + tokens > budget.tokens:
                self._stop(handle, budget, "tokens", budget.tokens, spent_tokens, tokens)
            spent_usd = self.usage.cost_usd or 0.0
            if budget.usd is not None and spent_usd + usd > budget.usd:
                self._stop(handle, budget, "usd", budget.usd, spent_usd, usd)
        slots: list[Slot] = []
        for limit in self.rate_limits:
            if limit.matches(provider, model):
                slot = yield from self._wait(handle, limit, tokens)
                if slot is not None:
                    slots.append(slot)
        for budget in self.deployment_budgets:
            amounts: dict[str, float] = {}
            if budget.llm_calls is not None:
                amounts["llm_calls"] = 1
            if budget.tokens is not None:
                amounts["tokens"] = tokens
            if budget.usd is not None:
                amounts["usd"] = usd
            if amounts:
                self._charge(handle, budget, amounts)
        self._pending.setdefault(handle.token_id, deque()).append((slots, tokens, usd))

    def spent(self, token_id: str, llm: Mapping[str, Any]) -> None:
        """An LLM call of ``token_id`` was recorded with its usage: count it, correct the
        estimates it was charged and limited by."""
        if llm.get("cached"):
            return
        before_tokens = sum(self.usage.tokens.values())
        before_usd = self.usage.cost_usd or 0.0
        self._count(llm)
        pending = self._pending.get(token_id)
        if not pending:
            return
        slots, est_tokens, est_usd = pending.popleft()
        tokens = sum(self.usage.tokens.values()) - before_tokens
        usd = (self.usage.cost_usd or 0.0) - before_usd
        for slot in slots:
            slot.settle(tokens)
        if self.store is None:
            return
        for budget in self.deployment_budgets:
            fix: dict[str, float] = {}
            if budget.tokens is not None and tokens != est_tokens:
                fix["tokens"] = tokens - est_tokens
            if budget.usd is not None and usd != est_usd:
                fix["usd"] = usd - est_usd
            if fix:
                self.store.execute(self._charge_op(budget, fix, force=True))

    # ------------------------------------------------------------------ parts

    def _count(self, llm: Mapping[str, Any]) -> None:
        if not llm.get("cached"):
            self.usage.add(llm)
            self.llm_calls += 1

    def _ask(
        self,
        handle: NodeRuntime,
        policy: Policy,
        check: str,
        subject: Any,
        what: dict[str, Any],
    ) -> None:
        decision = decide(policy, check, subject)
        if decision.allowed:
            return
        meta = {
            "policy": policy.label,
            "policy_id": policy_identity(policy),
            "decision": decision.kind,
            **what,
        }
        if decision.kind == "deny":
            self._record(handle, POLICY_DECIDED, {**meta, "reason": decision.reason})
            raise PolicyDeniedError(
                f"policy {policy.label!r} denied the {_act(what)} in node {handle.node!r}: "
                f"{decision.reason}",
                rule=policy.label,
            )
        meta["question"] = decision.question
        try:
            answer = handle.interrupt(
                decision.question, payload={k: v for k, v in meta.items() if k != "decision"}
            )
        except Interrupt:
            self._record(handle, POLICY_DECIDED, meta)
            raise
        verdict = "approved" if approved(answer) else "refused"
        self._record(handle, POLICY_DECIDED, {**meta, "decision": verdict})
        if verdict == "refused":
            raise PolicyDeniedError(
                f"policy {policy.label!r} asked {decision.question!r} about the {_act(what)} in "
                f"node {handle.node!r}, and the answer ({answer!r}) did not approve it "
                "(resume with input=True or {'approved': True} to approve)",
                rule=policy.label,
            )

    def _record(self, handle: NodeRuntime, kind: str, meta: dict[str, Any]) -> None:
        run = self.run
        run.rec.append(kind, now_us(), handle.node, handle.token_id, metadata=run.prep(meta))

    def _check_time(self, handle: NodeRuntime, budget: Budget) -> None:
        if budget.wall_time is None:
            return
        elapsed = (now_us() - self.run.started_us) / 1_000_000
        if elapsed > budget.wall_time:
            self._stop(handle, budget, "wall_time", budget.wall_time, elapsed, 0)

    def _stop(
        self,
        handle: NodeRuntime,
        budget: Budget,
        measure: str,
        limit: float,
        spent: float,
        needed: float,
    ) -> None:
        unit = {"usd": " USD", "wall_time": "s"}.get(measure, f" {measure.replace('_', ' ')}")
        reason = (
            f"{budget.label}: {measure} limit {limit:g}{unit} would be crossed "
            f"({spent:g} spent, the next {'step' if measure == 'wall_time' else 'act'} needs "
            f"{needed:g}); stopped before node {handle.node!r} went on"
        )
        self._record(
            handle,
            BUDGET_EXCEEDED,
            {
                "budget": budget.name,
                "per": budget.per,
                "measure": measure,
                "limit": limit,
                "spent": spent,
                "needed": needed,
                "reason": reason,
            },
        )
        run = self.run
        if run.stop_request is None:
            run.stop_request = (handle.node, reason, handle.token_id)
        raise BudgetExceededError(reason, rule=budget.label)

    def _charge_op(self, budget: Budget, amounts: dict[str, float], *, force: bool) -> ChargeBudget:
        limits = {m: float(v) for m, v in budget.limits().items() if m != "wall_time"}
        return ChargeBudget(
            deployment_id=str(self.run.context.get("deployment_id")),
            budget=budget.name,
            amounts=tuple(sorted(amounts.items())),
            limits=tuple(sorted(limits.items())),
            force=force,
            now_us=now_us(),
        )

    def _charge(self, handle: NodeRuntime, budget: Budget, amounts: dict[str, float]) -> None:
        assert self.store is not None
        if self.store.execute(self._charge_op(budget, amounts, force=False)):
            return
        deployment = str(self.run.context.get("deployment_id"))
        totals = self.store.execute(ReadBudget(deployment_id=deployment, budget=budget.name))
        for measure, amount in amounts.items():
            limit = getattr(budget, measure)
            if limit is not None and totals.of(measure) + amount > limit:
                self._stop(handle, budget, measure, limit, totals.of(measure), amount)
        self._stop(handle, budget, next(iter(amounts)), 0, 0, 0)  # pragma: no cover - raced

    def _wait(
        self, handle: NodeRuntime, limit: RateLimit, tokens: int
    ) -> Generator[_Pause, None, Slot | None]:
        slot: Slot | None = None
        store = self.store
        if store is not None and limit.system_clock and store.url.startswith("postgresql"):
            waited = yield from _wait_in_store(store, limit, tokens)  # shared across processes
        else:
            limiter = limiter_for(limit)
            start = limit.clock.monotonic()
            while True:
                slot, waited = limiter.try_acquire(tokens, start)
                if slot is not None:
                    break
                yield waited, limit.clock
        if waited > 0:
            self._record(
                handle,
                RATE_LIMIT_WAITED,
                {"limit": limit.label, "waited_s": waited, "tokens": tokens},
            )
            span = trace.get_current_span()
            if span.is_recording():
                span.add_event(
                    "codon.rate_limit.wait", {_WAIT_ATTR: waited, "codon.rate_limit": limit.label}
                )
        return slot


def _wait_in_store(
    store: LedgerStore, limit: RateLimit, tokens: int
) -> Generator[_Pause, None, float]:
    """Wait for a place in the store's window of ``limit``; the seconds waited."""
    start = time.monotonic()
    while True:
        wait_us = store.execute(
            TakeRateSlot(
                key=limit.label,
                window_us=max(1, round(limit.window * 1_000_000)),
                requests=limit.requests_per_minute,
                tokens_cap=limit.tokens_per_minute,
                tokens=tokens,
                now_us=now_us(),
            )
        )
        waited = time.monotonic() - start
        if not wait_us:
            return waited
        if waited + wait_us / 1_000_000 > limit.max_wait:
            raise wait_error(limit, tokens, waited + wait_us / 1_000_000)
        yield wait_us / 1_000_000, time


def _act(what: Mapping[str, Any]) -> str:
    act = what.get("act")
    if act == "llm_call":
        return f"LLM call to {what.get('model')!r}"
    if act == "effect":
        return f"effect {what.get('effect')!r}"
    return "activation"


_PROCESS_BUDGETS: dict[str, LedgerStore] = {}
