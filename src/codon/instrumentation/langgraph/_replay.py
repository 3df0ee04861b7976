"""Replay of a recorded LangGraph run: LangGraph's scheduler again, the ledger's effects.

The run's invocations are repeated in order on a private copy of the graph with
an in-memory checkpointer (seeded with the recorded starting checkpoint when the
run continued a thread): the first with its recorded input, each resume with
``Command(resume=<recorded input>)`` (or the recorded input itself after a
breakpoint). Every activation is recorded into an in-memory ledger exactly as a
live run would be; each task is matched to the recorded task with the same key
(invocation, step, path, attempt) and served that task's recorded effects, so an
instrumented LLM call returns the recorded response and a call the recording
lacks is a divergence (``EffectDivergence``), never a live call; one asked for
something else than was recorded (another prompt) is a ``request changed``
divergence, still served from the ledger. The top-level graph's nodes named in
``live`` make their effects and LLM calls for real, and so does every node of a
subgraph such a node runs. Subgraph runs are replayed the same way from their
own recorded ledgers.

The comparison uses ``codon_sdk.runtime._compare``: completed activations (node,
result, custom events), keyed by task rather than by token number, sorted by
key, then how the run ended. LangChain's per-call run ids in results (the
``lc_run--<uuid>`` id of a streamed message) are random by design and ignored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from codon.instrumentation.langgraph._binding import REPLAY_KEY
from codon.instrumentation.langgraph._compat import CONF
from codon.instrumentation.langgraph._invocation import INVOCATION_EVENT, SUBGRAPH_EVENT, TASK
from codon_sdk.errors import ReplayError
from codon_sdk.ledger import TOKEN_ENQUEUED, LedgerEvent, parse_entry
from codon_sdk.runtime import Activation as Act
from codon_sdk.runtime import (
    Divergence,
    RecordedEffect,
    Recorder,
    ReplayReport,
    Run,
    activations,
    compare,
    ledger_redact,
    live_nodes,
    load_replayable,
    logic_diff,
    node_defs,
    outcome,
    rebuild,
    request_divergences,
    span_mask,
)
from codon_sdk.stores import LedgerStore, open_store

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._binding import GraphBinding
    from codon.instrumentation.langgraph._context import Activation
    from codon.instrumentation.langgraph._invocation import Invocation

__all__ = ["ReplayCursor", "replay_graph_run"]

_LC_RUN = "lc_run--"
_REPLAY_THREAD = "codon-replay"


class ReplayCursor:
    """A recorded run, indexed for a replay: task key -> token, token -> effects."""

    def __init__(self, run_id: str, events: list[LedgerEvent]) -> None:
        self.run_id = run_id
        self.events = events
        self.started = events[0].metadata if events else {}
        self.tokens: dict[str, str] = {}
        for ev in events:
            if ev.type == TOKEN_ENQUEUED and ev.token_id is not None:
                key = ev.metadata.get(TASK)
                if isinstance(key, str):
                    self.tokens[key] = ev.token_id
        self.effects: dict[str, list[tuple[int, int, RecordedEffect]]] = {}
        for (tid, attempt, index), effect in rebuild(events).effects.items():
            self.effects.setdefault(tid, []).append((attempt, index, effect))
        self.run: Run | None = None
        self.invocations = 0

    def serve(self, run: Run, token_id: str, key: str) -> None:
        """Give the replayed task ``token_id`` the effects its recorded twin recorded."""
        recorded = self.tokens.get(key)
        for attempt, index, effect in self.effects.get(recorded or "", ()):
            run.effects[(token_id, attempt, index)] = effect


class ReplaySession:
    """One replay: the top-level run and the subgraph runs it reaches, read from ``store``."""

    def __init__(self, store: LedgerStore, top: ReplayCursor, live: tuple[str, ...] = ()) -> None:
        self.store = store
        self.top = top
        self.live = live
        self.children: dict[str, ReplayCursor | None] = {}
        self.unrecorded: list[Divergence] = []

    def open(
        self,
        binding: GraphBinding,
        input: Any,
        config: RunnableConfig | None,
        kwargs: Any,
        parent: Activation | None,
    ) -> Invocation:
        from codon.instrumentation.langgraph._binding import (
            child_run_id,
            resumable_tasks,
            watch_run,
        )
        from codon.instrumentation.langgraph._invocation import Invocation

        live: frozenset[str] = frozenset()
        if parent is None:
            cursor = self.top
            live = frozenset(self.live)
        else:
            if parent.node in parent.invocation.run.live:  # a live node's subgraph is all live
                live = frozenset(binding.workload._nodes)
            run_id = child_run_id(parent, binding.workload.logic_id)
            cursor = self._child(run_id, parent)
            parent.handle.record_event(
                SUBGRAPH_EVENT, metadata={"run_id": run_id, "workload": binding.workload.name}
            )
        if cursor.run is None:
            cursor.run = _replay_run(binding, cursor)
            cursor.run.live = live
        run = cursor.run
        resumed, _ = resumable_tasks(run) if cursor.invocations else ({}, 0)
        inv = Invocation(
            binding, run, index=cursor.invocations, spans=None, resumed=resumed, replay=cursor
        )
        cursor.invocations += 1
        watch_run(run, inv)
        return inv

    def _child(self, run_id: str, parent: Activation) -> ReplayCursor:
        cursor = self.children.get(run_id)
        if cursor is not None:
            return cursor
        if self.store.has_run(run_id):
            entries, _ = load_replayable(self.store, run_id, force=False)
            cursor = ReplayCursor(run_id, [parse_entry(e) for e in entries])
        else:
            cursor = ReplayCursor(run_id, [])
            self.unrecorded.append(
                Divergence(
                    -1,
                    parent.token_id,
                    parent.node,
                    "the replay ran a subgraph the recording does not have",
                    "no subgraph run",
                    run_id,
                )
            )
        self.children[run_id] = cursor
        return cursor


def _replay_run(binding: GraphBinding, cursor: ReplayCursor) -> Run:
    """An in-memory run recording the replay, never written anywhere."""
    workload = binding.workload
    started = cursor.started
    limits = started.get("limits") or {}
    context = workload._context(
        cursor.run_id, str(started.get("deployment_id")), dict(started.get("context") or {})
    )
    run = Run(
        nodes=node_defs(workload),
        run_id=cursor.run_id,
        context=context,
        recorder=Recorder(cursor.run_id),
        max_steps=int(limits.get("max_steps", 10_000)),
        max_concurrency=1,
        redact=ledger_redact(workload),  # as the recorded run: the same requests, the same results
        mask=span_mask(workload),  # spans get secrets masked, never sealed
    )
    run.replaying = True
    run.record_started(
        workload._run_started(context, [], started.get("context") or {}, run.max_steps, 1)
    )
    return run


# --------------------------------------------------------------------------- driving


def _invocations(events: list[LedgerEvent]) -> list[LedgerEvent]:
    """The run's ``langgraph.invocation`` events, in order."""
    return [ev for ev in events if ev.type == INVOCATION_EVENT]


def _call(ev: LedgerEvent, thread: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(input, config, kwargs) repeating one recorded invocation."""
    payload = ev.value() or {}
    meta = ev.metadata
    conf: dict[str, Any] = dict(meta.get("configurable") or {})
    conf["thread_id"] = thread
    if meta.get("checkpoint_id") is not None and not meta.get("invocation"):
        conf["checkpoint_id"] = meta["checkpoint_id"]
    config: dict[str, Any] = {CONF: conf}
    if meta.get("recursion_limit") is not None:
        config["recursion_limit"] = meta["recursion_limit"]
    kwargs: dict[str, Any] = {}
    for key in ("interrupt_before", "interrupt_after", "stream_mode", "subgraphs", "version"):
        if meta.get(key) is not None:
            kwargs[key] = meta[key]
    if "context" in payload:
        kwargs["context"] = payload["context"]
    return payload.get("input"), config, kwargs


def _seed(saver: Any, thread: str, start: Any) -> None:
    """Put the recorded starting checkpoint (and its pending writes) into ``saver``."""
    checkpoint = start.get("checkpoint")
    if not isinstance(checkpoint, dict):
        return
    metadata = dict(start.get("metadata") or {})
    config = {CONF: {"thread_id": thread, "checkpoint_ns": ""}}
    saved = saver.put(config, checkpoint, metadata, dict(checkpoint.get("channel_versions") or {}))
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in start.get("pending_writes") or ():
        by_task.setdefault(str(task_id), []).append((str(channel), value))
    for task_id, writes in by_task.items():
        saver.put_writes(saved, writes, task_id)


async def replay_graph_run(
    binding: GraphBinding,
    run_id: str,
    *,
    store: str | LedgerStore,
    live: Any = (),
    force: bool = False,
) -> ReplayReport:
    """``workload.replay``: see the module docstring."""
    from langgraph.checkpoint.memory import InMemorySaver

    live_set = live_nodes(live, binding.workload._nodes)
    ledger = open_store(store)
    try:
        entries, untrusted = load_replayable(ledger, run_id, force=force)
        events = [parse_entry(e) for e in entries]
        started = events[0].metadata
        if (started.get("framework") or {}).get("name") != "langgraph":
            raise ReplayError(
                f"run {run_id} was not recorded by the LangGraph adapter; replay it with the "
                "CodonWorkload that ran it"
            )
        top = ReplayCursor(run_id, events)
        session = ReplaySession(ledger, top, live_set)
        calls = _invocations(events)
        thread = str((started.get("context") or {}).get("conversation_id") or _REPLAY_THREAD)
        graph = binding.graph
        if graph.checkpointer not in (None, False) or len(calls) > 1:
            graph = graph.copy({"checkpointer": InMemorySaver()})
        start = (calls[0].value() or {}).get("start_checkpoint") if calls else None
        if isinstance(start, dict):
            _seed(graph.checkpointer, thread, start)
        for ev in calls:
            value, config, kwargs = _call(ev, thread)
            if graph.checkpointer in (None, False):
                config[CONF].pop("thread_id", None)
            config[CONF][REPLAY_KEY] = session
            try:  # streamed as recorded: LLM calls stream, or not, as they did
                async for _ in graph.astream(value, config, **kwargs):
                    pass
            except Exception:  # the recorded run may have failed the same way: compared below
                break
        return replace(_report(binding, session), untrusted=untrusted)
    finally:
        if ledger is not store:
            ledger.close()


# --------------------------------------------------------------------------- comparing


def _keyed(acts: list[Act], events: list[LedgerEvent]) -> list[Act]:
    """Activations named by task key instead of token number, in key order."""
    keys: dict[str, str] = {}
    for ev in events:
        if ev.type == TOKEN_ENQUEUED and ev.token_id is not None:
            key = ev.metadata.get(TASK)
            if isinstance(key, str):
                keys[ev.token_id] = key
    out = [
        replace(a, token_id=keys.get(a.token_id, a.token_id), result=_settled(a.result))
        for a in acts
    ]
    out.sort(key=lambda a: _order(a.token_id))
    return out


def _settled(value: Any) -> Any:
    """``value`` with LangChain's per-call run ids blanked: a streamed message's id is
    ``lc_run--<uuid of the callback run>``, new on every call, and decides nothing."""
    if isinstance(value, str):
        return _LC_RUN if value.startswith(_LC_RUN) else value
    if isinstance(value, dict):
        return {k: _settled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_settled(v) for v in value]
    return value


def _order(key: str) -> tuple[int, int, str, int]:
    try:
        invocation, step, rest = key.split("/", 2)
        path, attempt = rest.rsplit("/", 1)
        return int(invocation), int(step), path, int(attempt)
    except ValueError:
        return (1 << 30, 0, key, 0)


def _divergences(cursor: ReplayCursor) -> tuple[list[Divergence], int, str, str]:
    run = cursor.run
    recorded_events = cursor.events
    replay_events = [] if run is None else [parse_entry(e) for e in run.rec.entries()]
    recorded = _keyed(activations(recorded_events), recorded_events)
    replayed = _keyed(activations(replay_events), replay_events)
    recorded_status = outcome(recorded_events)[0] if recorded_events else "absent"
    replay_status = outcome(replay_events)[0] if replay_events else "not run"
    found: list[Divergence] = []
    if run is not None:
        found += request_divergences(run.request_changes)
        found += [
            Divergence(-1, tid, None, "effect divergence", "recorded effect", message)
            for tid, message in run.divergences
        ][:1]
    found += compare(recorded, replayed)
    if not found and recorded_status != replay_status:
        found.append(
            Divergence(-1, None, None, "the run ended differently", recorded_status, replay_status)
        )
    return found, min(len(recorded), len(replayed)), recorded_status, replay_status


def _report(binding: GraphBinding, session: ReplaySession) -> ReplayReport:
    top = session.top
    divergences, compared, recorded_status, replay_status = _divergences(top)
    for run_id, cursor in session.children.items():
        if cursor is None or not cursor.events:
            continue
        found, count, _, _ = _divergences(cursor)
        compared += count
        divergences += [replace(d, what=f"subgraph run {run_id}: {d.what}") for d in found]
    divergences += session.unrecorded
    recorded_logic = (top.started.get("workload") or {}).get("logic_id")
    workload = binding.workload
    run = top.run
    return ReplayReport(
        run_id=top.run_id,
        identical=not divergences,
        divergences=divergences[:20],
        recorded_status=recorded_status,
        replay_status=replay_status,
        activations_compared=compared,
        recorded_logic_id=recorded_logic,
        replay_logic_id=workload.logic_id,
        logic_diff=logic_diff(top.started, workload) if recorded_logic != workload.logic_id else {},
        report=None if run is None else run.report(replay_status),
        live=session.live,
    )
