"""GraphBinding: an adapted graph's link to its workload and ledger store; starting runs.

An invocation starts a new Codon run, except when it continues one:

* input ``None`` or a ``Command`` on a thread whose latest run is interrupted
  resumes that run (``run_resumed``, with the actor found in the config);
* an adapted graph invoked inside an activation of another adapted graph (a
  subgraph node, or a graph a node function calls) records a child run, linked
  both ways: its ``run_started`` names the parent run and token, the parent
  activation records a ``langgraph.subgraph`` event naming the child. The child's
  run id is derived from the parent's run and task, so the child of a resumed
  task resumes too.

Every invocation of a run records a ``langgraph.invocation`` event: its input,
its LangGraph ``context``, the user keys of ``config["configurable"]``, its
breakpoints and, for a run starting on a thread that already has state, that
starting checkpoint (what a replay starts from) and the previous run on the
thread, with a ``logic_changed`` flag when the graph's code changed since.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from codon.instrumentation.langgraph._compat import CONF, CONFIG_KEY_CHECKPOINT_NS
from codon.instrumentation.langgraph._context import Activation, current_activation
from codon.instrumentation.langgraph._encode import recordable
from codon.instrumentation.langgraph._invocation import (
    INVOCATION_EVENT,
    RESUMES,
    SUBGRAPH_EVENT,
    TASK,
    Invocation,
    ResumedTask,
)
from codon.instrumentation.langgraph._options import RuntimeSettings
from codon.instrumentation.langgraph._spans import RunSpans, UsageTotals
from codon_sdk.errors import CanonicalEncodingError, PayloadTooLargeError, RunNotFoundError
from codon_sdk.identity import prepare
from codon_sdk.ledger import ResumeRole, event_type, parse_entry
from codon_sdk.runtime import (
    ENTRY_ORIGIN,
    ExecutionReport,
    Run,
    RunOptions,
    new_run,
    now_us,
    resume_run,
)
from codon_sdk.stores import LedgerStore, MemoryStore
from codon_sdk.telemetry import CodonGraphAttributes as GraphA
from codon_sdk.telemetry import GenAIAttributes as G

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._workload import LangGraphWorkload

__all__ = ["DEPLOYMENT_KEY", "INVOCATION_EVENT", "REPLAY_KEY", "GraphBinding", "resume_graph_run"]

DEPLOYMENT_KEY = "__pregel_codon_deployment"
REPLAY_KEY = "__pregel_codon_replay"  # a replay session in the run config
_SEARCH_LIMIT = 200
_CHECKPOINT_KEYS = frozenset({"thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint_map"})


class GraphBinding:
    """What an adapted graph (and every copy LangGraph makes of it) shares."""

    def __init__(
        self, workload: LangGraphWorkload, store: LedgerStore, settings: RuntimeSettings
    ) -> None:
        self.workload = workload
        self.store = store
        self.settings = settings
        self.graph: Any = None
        self.last_report: ExecutionReport | None = None
        self._threads: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        workload._bind(self)

    def require_report(self) -> ExecutionReport:
        report = self.last_report
        assert report is not None, "the graph finished without a Codon report"
        return report

    # ------------------------------------------------------------------ opening

    def open(
        self, input: Any, config: RunnableConfig | None, kwargs: Mapping[str, Any], start: Any
    ) -> Invocation:
        """Start or continue the Codon run recording this invocation.

        ``start`` is the thread's latest checkpoint tuple when the graph has a
        checkpointer and the thread has state (None otherwise).
        """
        conf: Mapping[str, Any] = (config or {}).get(CONF) or {}
        session = conf.get(REPLAY_KEY)
        parent = current_activation()
        if parent is not None and parent.invocation.closed:
            parent = None
        if session is not None:
            inv: Invocation = session.open(self, input, config, kwargs, parent)
            return inv
        thread = conf.get("thread_id")
        thread = None if thread is None else str(thread)
        ns = str(conf.get(CONFIG_KEY_CHECKPOINT_NS) or "")
        actor = self.actor(config)
        resumed: Invocation | None = None
        if parent is not None:
            run_id = child_run_id(parent, self.workload.logic_id)
            if self._child_to_resume(run_id):
                value = parent.invocation.resume_input
                resumed = self._resume(run_id, value, actor, input, config, kwargs)
            else:
                run_id = self._free_child_id(run_id)
        else:
            run_id = uuid.uuid4().hex
            if thread is not None and (input is None or _is_command(input)):
                found = self._latest_on_thread(thread, ns)
                if found is not None and found[1] == "interrupted":
                    value = _resume_value(input)
                    resumed = self._resume(found[0], value, actor, input, config, kwargs)
        if resumed is not None:
            return resumed
        return self._start(run_id, input, config, kwargs, start, parent, thread, ns, actor)

    def actor(self, config: RunnableConfig | None) -> str | None:
        """Who acts, from ``config["configurable"]`` then ``config["metadata"]``."""
        if not config:
            return None
        for source in (config.get(CONF), config.get("metadata")):
            if not source:
                continue
            for key in self.settings.actor_keys:
                value = source.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    return str(value)
        return None

    def _options(self, config: RunnableConfig | None) -> RunOptions:
        limit = (config or {}).get("recursion_limit")
        return RunOptions(
            max_steps=limit if type(limit) is int and limit > 0 else 10_000,
            max_concurrency=1,  # one recorder, serialised by the invocation's lock
            max_event_bytes=self.settings.max_event_bytes,
            durability=self.settings.durability
            or ("exit" if isinstance(self.store, MemoryStore) else "batch"),
        )

    def _start(
        self,
        run_id: str,
        input: Any,
        config: RunnableConfig | None,
        kwargs: Mapping[str, Any],
        start: Any,
        parent: Activation | None,
        thread: str | None,
        ns: str,
        actor: str | None,
    ) -> Invocation:
        conf: Mapping[str, Any] = (config or {}).get(CONF) or {}
        extras: dict[str, Any] = {"framework": "langgraph"}
        if thread is not None:
            extras["conversation_id"] = thread
        if ns:
            extras["checkpoint_ns"] = ns
        if parent is not None:
            extras.update(
                parent_run_id=parent.invocation.run.run_id,
                parent_token_id=parent.token_id,
                parent_node=parent.node,
            )
        deployment = str(conf.get(DEPLOYMENT_KEY) or self.settings.deployment_id)
        previous = None
        if thread is not None and parent is None and start is not None:
            previous = self._latest_on_thread(thread, ns)
        run = new_run(
            self.workload,
            None,
            run_id=run_id,
            deployment_id=deployment,
            entry_nodes=[],
            context_extras=extras,
            options=self._options(config),
            store=self.store,
        )
        if not self.settings.record_start_checkpoint:
            start = None
        elif start is not None:
            start = checkpoint_record(start)
        if thread is not None and parent is None:
            with self._lock:
                self._threads[(thread, ns)] = run_id
        details: dict[str, Any] = {}
        if previous is not None:
            details["previous_run"] = {
                "run_id": previous[0],
                "logic_id": previous[2],
                "logic_changed": previous[2] != self.workload.logic_id,
            }
        inv = self._invocation(run, 0, None, parent)
        record_invocation(run, 0, input, config, kwargs, start, details, actor)
        return inv

    def _resume(
        self,
        run_id: str,
        value: Any,
        actor: str | None,
        input: Any,
        config: RunnableConfig | None,
        kwargs: Mapping[str, Any],
    ) -> Invocation | None:
        outcome = resume_run(
            self.workload,
            run_id,
            store=self.store,
            input=recordable(value)[0],
            actor=actor,
            allow_logic_change=True,
            options=self._options(config),
        )
        if isinstance(outcome, ExecutionReport):  # it ended meanwhile: nothing to continue
            return None
        resumed, count = resumable_tasks(outcome)
        inv = self._invocation(outcome, count, resumed, current_activation())
        inv.resume_input = value
        record_invocation(outcome, count, input, config, kwargs, None, {}, actor)
        return inv

    def _invocation(
        self,
        run: Run,
        index: int,
        resumed: dict[str, ResumedTask] | None,
        parent: Activation | None,
    ) -> Invocation:
        spans = self._spans(run)
        inv = Invocation(self, run, index=index, spans=spans, resumed=resumed)
        watch_run(run, inv)
        if parent is not None:
            parent.handle.record_event(
                SUBGRAPH_EVENT,
                metadata={"run_id": run.run_id, "workload": self.workload.name},
            )
        return inv

    def _spans(self, run: Run) -> RunSpans | None:
        """The invocation's spans, or None when nothing would record them (no SDK, sampled
        out): then ledger events carry no trace ids and node spans are not even built."""
        spans = RunSpans(run.context, run.mask) if self.workload.enable_tracing else None
        if spans is not None:
            thread = run.context.get("conversation_id")
            spans.start_run(
                self.workload.name,
                {
                    G.CONVERSATION_ID.value: thread,
                    GraphA.THREAD_ID.value: thread,
                    GraphA.PARENT_RUN_ID.value: run.context.get("parent_run_id"),
                },
            )
            if not spans.recording:
                spans = None
        run.rec.tracing = spans is not None
        return spans

    # ------------------------------------------------------------------ finding runs

    def _latest_on_thread(self, thread: str, ns: str) -> tuple[str, str, str | None] | None:
        """(run id, status, logic id) of the latest top-level run on ``thread``."""
        with self._lock:
            known = self._threads.get((thread, ns))
        if known is not None:
            try:
                info = self.store.get_run(known)
            except RunNotFoundError:
                return None
            return info.run_id, info.status, info.logic_id
        for info in self.store.runs(workload_name=self.workload.name, limit=_SEARCH_LIMIT):
            entries = self.store.read(info.run_id, 0, 1)
            if not entries:
                continue
            context = parse_entry(entries[0]).metadata.get("context") or {}
            if (
                context.get("conversation_id") == thread
                and context.get("checkpoint_ns", "") == ns
                and not context.get("parent_run_id")
            ):
                return info.run_id, info.status, info.logic_id
        return None

    def _child_to_resume(self, run_id: str) -> str | None:
        try:
            info = self.store.get_run(run_id)
        except RunNotFoundError:
            return None
        return run_id if info.status == "interrupted" else None

    def _free_child_id(self, run_id: str) -> str:
        candidate, n = run_id, 1
        while self.store.has_run(candidate):
            n += 1
            candidate = f"{run_id}-{n}"
        return candidate


# --------------------------------------------------------------------------- helpers


def checkpoint_record(saved: Any) -> dict[str, Any]:
    """A checkpoint tuple as recorded: checkpoint, metadata and pending writes."""
    return {
        "checkpoint": dict(saved.checkpoint),
        "metadata": dict(saved.metadata or {}),
        "pending_writes": [list(w) for w in saved.pending_writes or ()],
    }


def _is_command(value: Any) -> bool:
    from langgraph.types import Command

    return isinstance(value, Command)


def _resume_value(input: Any) -> Any:
    from langgraph.types import Command

    if isinstance(input, Command):
        return input.resume if input.resume is not None else input
    return input


def child_run_id(parent: Activation, logic_id: str) -> str:
    """A child run's id, derived from its parent run, task and the call's position."""
    index = parent.calls
    parent.calls += 1
    text = f"{parent.invocation.run.run_id}|{parent.root_key}|{index}|{logic_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def user_configurable(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``config["configurable"]`` a user set (not LangGraph's, not ours)."""
    out: dict[str, Any] = {}
    for key, value in conf.items():
        if not isinstance(key, str) or key.startswith("__") or key in _CHECKPOINT_KEYS:
            continue
        try:
            prepare(value)
        except CanonicalEncodingError:
            continue
        out[key] = value
    return out


def record_invocation(
    run: Run,
    index: int,
    input: Any,
    config: RunnableConfig | None,
    kwargs: Mapping[str, Any],
    start: Any,
    details: dict[str, Any],
    actor: str | None,
) -> None:
    """Record the ``langgraph.invocation`` event (see the module docstring)."""
    conf: Mapping[str, Any] = (config or {}).get(CONF) or {}
    meta: dict[str, Any] = {"invocation": index, **details}
    for key in ("thread_id", "checkpoint_ns", "checkpoint_id"):
        if conf.get(key) is not None:
            meta[key] = str(conf[key])
    user = user_configurable(conf)
    if user:
        meta["configurable"] = user
    limit = (config or {}).get("recursion_limit")
    if limit is not None:
        meta["recursion_limit"] = limit
    for key in ("interrupt_before", "interrupt_after", "stream_mode"):
        if kwargs.get(key) is not None:
            meta[key] = kwargs[key] if isinstance(kwargs[key], str) else list(kwargs[key])
    for key in ("subgraphs", "version"):  # how nodes' LLM calls stream depends on them
        if kwargs.get(key) not in (None, False, "v1"):
            meta[key] = kwargs[key]
    payload: dict[str, Any] = {"input": input}
    if kwargs.get("context") is not None:
        payload["context"] = kwargs["context"]
    if start is not None:
        payload["start_checkpoint"] = start
    value, opaque = recordable(payload, where="the invocation input")
    if opaque:
        meta["opaque"] = opaque
    try:
        run.rec.append(
            INVOCATION_EVENT, now_us(), payload=prepare(value), metadata=prepare(meta), actor=actor
        )
    except PayloadTooLargeError:
        meta["too_large"] = True
        run.rec.append(INVOCATION_EVENT, now_us(), metadata=prepare(meta), actor=actor)


def watch_run(run: Run, inv: Invocation) -> None:
    """Serialise what nodes record from their threads (effects, custom events) with the
    adapter's own recording, and total the ``llm`` metadata of effects per token."""
    record_effect, record_custom = run.record_effect, run.record_custom
    lock, usage, spans = inv.lock, inv.usage, inv.spans is not None

    def effect(
        node: str, token_id: str, meta: dict[str, Any], value: Any, *, durable: bool = True
    ) -> None:
        with lock:
            record_effect(node, token_id, meta, value, durable=durable)
        llm = meta.get("llm")
        if spans and isinstance(llm, Mapping):  # totals for the node span
            usage.setdefault(token_id, UsageTotals()).add(llm)

    def custom(node: str, token_id: str, event_type: str, metadata: Any) -> None:
        with lock:
            record_custom(node, token_id, event_type, metadata)

    # instance-level hooks: the engine has no callback for these (see the module docstring)
    setattr(run, "record_effect", effect)  # noqa: B010
    setattr(run, "record_custom", custom)  # noqa: B010


def resumable_tasks(run: Run) -> tuple[dict[str, ResumedTask], int]:
    """The interrupted tasks of a resumed run (by LangGraph task id) and its invocation count."""
    tokens: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    interrupted: list[dict[str, Any]] = []
    invocations = 0
    for entry in run.rec.entries():
        ev = parse_entry(entry)
        if ev.type == INVOCATION_EVENT:
            invocations += 1
            continue
        role = event_type(ev.type).resume
        if role is ResumeRole.TOKEN and ev.token_id is not None and TASK in ev.metadata:
            tokens[ev.token_id] = (ev.node or ENTRY_ORIGIN, ev.parent_token_id, ev.metadata)
        elif role is ResumeRole.PAUSE:
            interrupted = list((ev.metadata.get("payload") or {}).get("interrupts") or [])
    resumed: dict[str, ResumedTask] = {}
    for item in interrupted:
        tid, task_id = item.get("token_id"), item.get("task_id")
        if not isinstance(tid, str) or not isinstance(task_id, str) or tid not in tokens:
            continue
        origin, parent, lg = tokens[tid]
        chain = [tid]
        while isinstance(lg.get(RESUMES), str) and lg[RESUMES] in tokens:
            chain.insert(0, lg[RESUMES])
            lg = tokens[lg[RESUMES]][2]
        resumed[task_id] = ResumedTask(tid, origin, parent, str(item.get("root") or ""), chain)
    return resumed, invocations


async def resume_graph_run(
    binding: GraphBinding,
    run_id: str,
    *,
    store: Any,
    input: Any,
    actor: str | None,
    allow_logic_change: bool,
    config: Any,
) -> ExecutionReport:
    """``workload.resume``: invoke the graph with ``Command(resume=input)`` on the run's thread."""
    from codon_sdk.errors import LogicChangedError, WorkloadRuntimeError
    from langgraph.types import Command

    if store is not None and store is not binding.store and store != binding.store.url:
        raise WorkloadRuntimeError(
            f"run {run_id} is resumed through the adapter's own store ({binding.store.url}); "
            "pass that store or none"
        )
    info = binding.store.get_run(run_id)
    started = parse_entry(binding.store.read(run_id, 0, 1)[0]).metadata
    thread = (started.get("context") or {}).get("conversation_id")
    if thread is None:
        raise WorkloadRuntimeError(
            f"run {run_id} has no LangGraph thread (it ran without a checkpointer): "
            "there is nothing to resume"
        )
    if not allow_logic_change and info.logic_id != binding.workload.logic_id:
        raise LogicChangedError(
            f"run {run_id} was recorded with logic id {info.logic_id[:12]}…, this graph's is "
            f"{binding.workload.logic_id[:12]}…; pass allow_logic_change=True to resume anyway"
        )
    cfg: dict[str, Any] = dict(config or {})
    cfg[CONF] = {**(cfg.get(CONF) or {}), "thread_id": thread}
    if actor is not None:
        cfg[CONF][binding.settings.actor_keys[0]] = actor
    await binding.graph.ainvoke(Command(resume=input), cfg)
    return binding.require_report()
