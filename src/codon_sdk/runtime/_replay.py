"""Replay (re-run a recorded run with today's code, offline) and fork (branch a run at a seq)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from codon_sdk._text import printable
from codon_sdk.errors import (
    CanonicalEncodingError,
    ReplayError,
    RunNotFoundError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import prepare
from codon_sdk.ledger import (
    EFFECT_RECORDED,
    STATE_UPDATED,
    TOKEN_ENQUEUED,
    LedgerEvent,
    ResumeRole,
    event_type,
    parse_entry,
)
from codon_sdk.runtime._blobs import resolved_events, resolved_with
from codon_sdk.runtime._cache import RunCache
from codon_sdk.runtime._compare import (
    Divergence,
    activations,
    compare,
    in_order,
    outcome,
    request_divergences,
)
from codon_sdk.runtime._engine import Run, now_us
from codon_sdk.runtime._launch import (
    RunOptions,
    ledger_redact,
    logic_diff,
    new_run,
    node_defs,
    open_ledger,
    read_checked,
    redaction_policy,
    span_mask,
)
from codon_sdk.runtime._rebuild import rebuild
from codon_sdk.runtime._recorder import Recorder
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._trust import check_trust, readable_entries
from codon_sdk.runtime._unseal import has_markers, open_rebuilt
from codon_sdk.stores import BlobStore, LedgerStore, blob_store_for

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._workload import CodonWorkload

__all__ = ["ReplayReport", "fork_run", "live_nodes", "replay_run"]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """How today's code compares with a recorded run: ``identical``, or where it diverges."""

    run_id: str
    identical: bool
    divergences: list[Divergence]
    recorded_status: str
    replay_status: str
    activations_compared: int
    recorded_logic_id: str | None
    replay_logic_id: str
    logic_diff: dict[str, Any] = field(default_factory=dict)
    report: ExecutionReport | None = None
    #: the nodes whose effects and LLM calls the replay made for real (``live=``)
    live: tuple[str, ...] = ()
    #: why the recorded run does not verify, when ``force=True`` replayed it anyway (then
    #: only its entries before the first broken one were replayed)
    untrusted: tuple[str, ...] = ()

    @property
    def logic_changed(self) -> bool:
        return self.recorded_logic_id != self.replay_logic_id

    @property
    def first_divergence(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    def __bool__(self) -> bool:
        return self.identical

    def summary(self) -> str:
        head = (
            f"replay of run {printable(self.run_id)}: "
            + (
                "IDENTICAL"
                if self.identical
                else f"DIVERGED ({len(self.divergences)} difference(s))"
            )
            + f"; {self.activations_compared} activation(s) compared; "
            f"status recorded {self.recorded_status}, replay {self.replay_status}"
        )
        lines = [head]
        if self.untrusted:
            lines.insert(
                0,
                "WARNING: the recorded run does not verify (replayed with --force): "
                + printable("; ".join(self.untrusted)),
            )
        if self.logic_changed:
            reasons = self.logic_diff.get("reasons") or {}
            changed = ", ".join(
                f"{n} ({', '.join(reasons[n])})" if reasons.get(n) else n
                for n in self.logic_diff.get("changed_nodes", [])
            )
            changed = printable(changed) or "none"
            joins = printable(", ".join(self.logic_diff.get("changed_joins") or []))
            lines.append(
                f"  logic id changed: {str(self.recorded_logic_id)[:12]}… -> "
                f"{self.replay_logic_id[:12]}… (changed nodes: {changed}"
                + (f"; joins changed: {joins})" if joins else ")")
            )
        else:
            lines.append(f"  logic id unchanged: {self.replay_logic_id}")
        if self.live:
            lines.append(
                f"  live nodes (effects and LLM calls made for real): {', '.join(self.live)}"
            )
        lines.extend(f"  - {d}" for d in self.divergences)
        return "\n".join(lines)

    __str__ = summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "identical": self.identical,
            "recorded_status": self.recorded_status,
            "replay_status": self.replay_status,
            "activations_compared": self.activations_compared,
            "logic_changed": self.logic_changed,
            "recorded_logic_id": self.recorded_logic_id,
            "replay_logic_id": self.replay_logic_id,
            "logic_diff": self.logic_diff,
            "live": list(self.live),
            "untrusted": list(self.untrusted),
            "divergences": [
                {
                    "seq": d.seq,
                    "token_id": d.token_id,
                    "node": d.node,
                    "what": d.what,
                    "expected": d.expected,
                    "actual": d.actual,
                    "differences": list(d.differences),
                    "effect": d.effect,
                    "text": str(d),
                }
                for d in self.divergences
            ],
        }


def _blobs_of(store: str | LedgerStore) -> BlobStore | None:
    """The blob store beside ``store`` (a URL is opened for the look-up only)."""
    ledger, opened = open_ledger(store)
    try:
        return blob_store_for(ledger)
    finally:
        if opened:
            ledger.close()


def load_replayable(
    store: str | LedgerStore, run_id: str, *, force: bool
) -> tuple[list[bytes], tuple[str, ...]]:
    """The entries to replay and, when ``force`` let an untrusted run through, why it does
    not verify (then only the entries before the first broken one are replayed)."""
    ledger, opened = open_ledger(store)
    try:
        if not force:
            return read_checked(ledger, run_id, action="replayed"), ()
        trust = check_trust(ledger, run_id)
    except RunNotFoundError as exc:
        raise ReplayError(f"cannot replay: {exc}") from exc
    finally:
        if opened:
            ledger.close()
    return list(readable_entries(trust)), trust.problems


#: What a run's starting point holds, by resume role: seed tokens, state, effects.
_SEEDED: Final = frozenset({ResumeRole.TOKEN, ResumeRole.STATE, ResumeRole.EFFECT})


def _initial(events: list[LedgerEvent]) -> list[LedgerEvent]:
    """The run's starting point: everything before its first dequeue (seeds, snapshot)."""
    start: list[LedgerEvent] = []
    for ev in events[1:]:
        role = event_type(ev.type).resume
        if role is ResumeRole.STEP:
            break
        if role in _SEEDED:
            start.append(ev)
    return start


def _seed(run: Run, start: list[LedgerEvent], open_: Callable[[Any], Any]) -> None:
    """Re-record a run's starting point into ``run`` and queue its tokens with their ids
    (their payloads as ``open_`` gives them: sealed values opened)."""
    rec = run.rec
    for ev in start:
        role = event_type(ev.type).resume
        if role is ResumeRole.TOKEN and ev.token_id and ev.target not in (None, *run.nodes):
            raise ReplayError(
                f"run {run.run_id} seeds node {printable(ev.target)!r}, which this workload "
                f"does not have (known: {', '.join(sorted(run.nodes))})"
            )
        if role is ResumeRole.TOKEN and ev.token_id and ev.target:
            rec.append(ev.type, now_us(), ev.node, ev.token_id, ev.payload, ev.metadata, ev.target)
            payload = open_(ev.value())
            run.queue.put((ev.token_id, ev.target, payload, ev.node or "", None, ev.ts))
            run.token_counter = max(run.token_counter, _number(ev.token_id))
        elif role is ResumeRole.STATE and ev.token_id is None:
            rec.append(ev.type, now_us(), payload=ev.payload)
        elif role is ResumeRole.EFFECT:
            rec.append(ev.type, now_us(), ev.node, ev.token_id, ev.payload, ev.metadata)


def _number(token_id: str) -> int:
    digits = token_id[1:]
    return int(digits) if token_id.startswith("t") and digits.isdigit() else 0


def live_nodes(live: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """``live`` checked against the workload's node names (sorted, without repeats)."""
    if isinstance(live, (str, bytes)):
        raise ReplayError(
            f"live must be a list of node names, such as [{live!r}], not the string {live!r}"
        )
    names = sorted(set(known))
    asked = list(live)
    unknown = sorted({repr(n) for n in asked if not isinstance(n, str) or n not in names})
    if unknown:
        raise ReplayError(
            f"live names unknown node(s) {', '.join(unknown)}; the workload's nodes are: "
            f"{', '.join(names) or '(none)'}"
        )
    return tuple(sorted(set(asked)))


async def replay_run(
    workload: CodonWorkload,
    run_id: str,
    *,
    store: str | LedgerStore,
    live: Iterable[str] = (),
    force: bool = False,
) -> ReplayReport:
    """Re-run a recorded run with today's code and compare; only the ``live`` nodes' effects
    reach the outside world, everything else is served from the ledger. A run that does not
    verify is refused unless ``force`` (the report then says why it is untrusted)."""
    live_set = live_nodes(live, workload._nodes)
    entries, untrusted = load_replayable(store, run_id, force=force)
    events = list(resolved_with(entries, _blobs_of(store)))
    rebuilt = rebuild(events)
    policy = redaction_policy(workload)
    open_rebuilt(rebuilt, entries, policy, action="replayed")  # or refused, before any node runs
    sealed, _ = has_markers(entries)

    def open_(value: Any) -> Any:
        where = f"run {run_id} (to be replayed)"
        return policy.unseal_value(value, where=where, run_id=run_id) if sealed else value

    started = rebuilt.started
    recorded_acts = activations(events)
    recorded_status, _, _ = outcome(events)
    limits = started.get("limits") or {}
    max_steps = int(limits.get("max_steps", 1000))
    if recorded_status == "running":  # crashed and never resumed: compare what exists
        max_steps = max(len(recorded_acts), 1)
    context = workload._context(
        run_id, str(started.get("deployment_id")), dict(started.get("context") or {})
    )
    run = Run(
        nodes=node_defs(workload),
        run_id=run_id,
        context=context,
        recorder=Recorder(run_id),
        max_steps=max_steps,
        max_concurrency=int(limits.get("max_concurrency", 1)),
        redact=ledger_redact(workload),
        mask=span_mask(workload),
    )
    run.replaying = True
    run.cache = RunCache.for_replay(events)  # recorded hits are served again, never run
    run.live = frozenset(live_set)
    run.effects = dict(rebuilt.effects)
    run.resume_inputs = dict(rebuilt.resume_inputs)
    entry_nodes = [str(n) for n in started.get("entry_nodes") or []]
    run.record_started(
        workload._run_started(
            context, entry_nodes, started.get("context") or {}, max_steps, run.max_concurrency
        )
    )
    start = _initial(events)
    _seed(run, start, open_)
    state = open_(rebuild(events[: len(start) + 1]).state) if start else {}
    run.state.load(state)
    try:
        report = await run.execute()
    except WorkloadRuntimeError as exc:
        if exc.report is None:
            raise
        report = exc.report
    replay_events = [parse_entry(e) for e in report.entries]
    replay_acts = activations(replay_events)
    replay_status, _, _ = outcome(replay_events)
    if recorded_status == "running":
        replay_acts = replay_acts[: len(recorded_acts)]
        replay_status = "running"
    where = {a.token_id: a for a in recorded_acts}
    divergences = request_divergences(run.request_changes)
    divergences += [
        Divergence(
            where[tid].seq if tid in where else -1,
            tid,
            where[tid].node if tid in where else None,
            "effect divergence",
            "the recorded effect",
            message,
        )
        for tid, message in run.divergences
    ][:1]
    divergences = in_order(divergences + compare(recorded_acts, replay_acts))[:20]
    if not divergences and recorded_status != replay_status:
        divergences.append(
            Divergence(-1, None, None, "the run ended differently", recorded_status, replay_status)
        )
    recorded_logic = (started.get("workload") or {}).get("logic_id")
    return ReplayReport(
        run_id=run_id,
        identical=not divergences,
        divergences=divergences,
        recorded_status=recorded_status,
        replay_status=replay_status,
        activations_compared=min(len(recorded_acts), len(replay_acts)),
        recorded_logic_id=recorded_logic,
        replay_logic_id=workload.logic_id,
        logic_diff=logic_diff(started, workload) if recorded_logic != workload.logic_id else {},
        report=report,
        live=live_set,
        untrusted=untrusted,
    )


async def fork_run(
    workload: CodonWorkload,
    run_id: str,
    *,
    store: str | LedgerStore,
    at_seq: int,
    state_patch: Mapping[str, Any] | None = None,
    new_run_id: str,
    options: RunOptions,
) -> ExecutionReport:
    """Start a new run from a recorded run's history up to ``at_seq`` (inclusive), then run live.

    The new run's ledger starts with ``run_started`` naming the parent run, the seq
    and the hash of the event forked at; then the state as of that event (with
    ``state_patch`` applied), the tokens still queued with their original ids, and
    the effects those tokens' activations had already recorded (reused, not re-run).
    """
    ledger, opened = open_ledger(store)
    try:
        entries = read_checked(ledger, run_id, action="forked")
        if type(at_seq) is not int or not 0 <= at_seq < len(entries):
            raise ReplayError(
                f"at_seq must be a seq of run {run_id} (0 to {len(entries) - 1}), got {at_seq!r}"
            )
        events = list(resolved_events(entries[: at_seq + 1], ledger))
        rebuilt = rebuild(events)
        masked = open_rebuilt(
            rebuilt, entries[: at_seq + 1], redaction_policy(workload), action="forked"
        )
        started = rebuilt.started
        state = dict(rebuilt.state)
        if state_patch:
            state.update(state_patch)
        try:
            redact = ledger_redact(workload)
            patch = prepare(dict(state_patch or {}), redact)
            prepared_state = prepare({"set": state}, redact) if state else None
        except CanonicalEncodingError as exc:
            raise ReplayError(f"state_patch cannot be recorded: {exc}") from exc
        queued = {item[0] for item in rebuilt.queue}
        fork_info = {
            "parent_run_id": run_id,
            "parent_seq": at_seq,
            "parent_head": events[-1].leaf.hex(),
            "parent_logic_id": (started.get("workload") or {}).get("logic_id"),
            "state_patch": patch,
        }
        if masked is not None:
            fork_info["masked"] = masked  # code receives values the policy dropped for good
        run = new_run(
            workload,
            None,
            run_id=new_run_id,
            deployment_id=str(started.get("deployment_id")),
            entry_nodes=[],
            context_extras={**dict(started.get("context") or {})},
            options=options,
            store=ledger,
            fork=fork_info,
        )
        rec = run.rec
        if prepared_state is not None and run.blobs is not None:
            prepared_state = run.blobs(prepared_state)
        if prepared_state is not None:
            rec.append(STATE_UPDATED, now_us(), payload=prepared_state, metadata={"forked": True})
        run.state.load(state)
        for tid, target, payload, origin, parent, _created in rebuilt.queue:
            meta = {"forked": True, "parent_token_id": parent} if parent else {"forked": True}
            rec.append(TOKEN_ENQUEUED, now_us(), origin, tid, run.prep(payload), meta, target)
            run.queue.put((tid, target, payload, origin, None, now_us()))
        for (tid, attempt, index), effect in rebuilt.effects.items():
            if tid in queued:  # what the parent recorded with it (request, usage), reused
                copied: dict[str, Any] = {**effect.metadata, "name": effect.name}
                copied.update(attempt=attempt, index=index, forked=True)
                if effect.error is not None:
                    copied["error"] = effect.error
                if run.blobs is not None:
                    copied = run.blobs(copied)
                rec.append(EFFECT_RECORDED, now_us(), None, tid, run.prep(effect.value), copied)
                run.effects[(tid, attempt, index)] = effect
        run.resume_inputs = {k: v for k, v in rebuilt.resume_inputs.items() if k[0] in queued}
        run.attempts = {k: v for k, v in rebuilt.attempts.items() if k in queued}
        run.token_counter = rebuilt.token_counter
        rec.barrier()
        return await run.execute()
    finally:
        if opened:
            ledger.close()
