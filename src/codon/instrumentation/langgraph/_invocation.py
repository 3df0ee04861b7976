"""One invocation of an adapted graph, recorded into one Codon run.

Each LangGraph task (each execution of a node, ``__start__`` included) becomes
one token and one activation: ``token_enqueued`` (payload: the node's input, as
LangGraph passed it; metadata: the task's key and LangGraph task id, see
:data:`TASK`), ``token_dequeued``, the node's recorded effects and events, then
``node_completed`` (payload: the node's update, as returned) or ``node_failed``.
A retried task is one activation per attempt. The token's origin and parent are
the activation whose writes triggered the task (its channel writes in an earlier
step; for a ``Send``, the activation that sent it). An interrupted activation
has neither completion nor failure: the run pauses with ``run_interrupted``
naming it, and the activation that re-runs it on resume names the interrupted
token (``langgraph.resumes``) and is served the effects it had already recorded,
so LLM calls made before ``interrupt()`` are not made twice.

A task's key, ``<invocation>/<step>/<path>/<attempt>``, is stable across a replay,
unlike token numbers when parallel tasks start in another order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from opentelemetry import context as otel_context
from opentelemetry import trace

from codon.instrumentation.langgraph._compat import (
    CONF,
    CONFIG_KEY_SEND,
    CONFIG_KEY_TASK_ID,
    NS_END,
    NS_SEP,
    PUSH,
    RESERVED_CHANNELS,
    TASKS,
    task_path_str,
)
from codon.instrumentation.langgraph._context import INVOCATION_KEY, Activation
from codon.instrumentation.langgraph._encode import recordable
from codon.instrumentation.langgraph._spans import RunSpans, UsageTotals
from codon_sdk.errors import CanonicalEncodingError, StoreError, WorkloadRuntimeError
from codon_sdk.runtime import ABSENT, ENTRY_ORIGIN, ExecutionReport, Interrupt, NodeRuntime, Run
from codon_sdk.telemetry import CodonNodeAttributes as NodeA

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._binding import GraphBinding
    from codon.instrumentation.langgraph._replay import ReplayCursor

__all__ = [
    "INVOCATION_EVENT",
    "OPAQUE",
    "PARENTS",
    "RESUMES",
    "ROOT",
    "SEND",
    "SUBGRAPH_EVENT",
    "TASK",
    "TASK_ID",
    "Invocation",
    "ResumedTask",
]

Writer = tuple[str, str]  # (token id, node)
# the adapter's own ledger events (custom types to the SDK's table of event types): one
# per invocation of a run, and one naming the child run of a subgraph called by a node
INVOCATION_EVENT = "langgraph.invocation"
SUBGRAPH_EVENT = "langgraph.subgraph"
# metadata of a task's token_enqueued event (flat: one canonical walk less per activation)
TASK = "langgraph.task"  # the task's key: "<invocation>/<step>/<path>/<attempt>"
TASK_ID = "langgraph.task_id"  # LangGraph's task id (its checkpoints and traces use it)
SEND = "langgraph.send"  # index of the Send that created the task
PARENTS = "langgraph.parents"  # every activation whose writes triggered it, when several
RESUMES = "langgraph.resumes"  # the interrupted token this activation runs again
ROOT = "langgraph.root"  # the key of the first attempt of a resumed task
OPAQUE = "langgraph.opaque"  # paths of input values recorded by type only
COMMIT_INTERVAL_S = 0.005
_EMPTY: Mapping[str, Any] = {}


_PATHS: dict[Any, str] = {}


def _path_text(path: Any) -> str:
    """A task path as a short key: ``pull.<node>`` or ``push.<index>`` (cached; no colon,
    which would cost every key a pass through the redaction policy)."""
    text = task_path_str(path)
    if isinstance(path, tuple) and len(path) >= 2 and not isinstance(path[1], tuple):
        kind = {"__pregel_pull": "pull", PUSH: "push"}.get(str(path[0]))
        if kind is not None:
            text = f"{kind}.{path[1]}"
    if type(path) is tuple and len(_PATHS) < 4096:
        with contextlib.suppress(TypeError):  # an unhashable part: not cached
            _PATHS[path] = text
    return text


def _stable_command(command: Any) -> Any:
    """A parent-bound Command as recorded: its graph namespace without task ids (random)."""
    graph = getattr(command, "graph", None)
    if not isinstance(graph, str) or NS_END not in graph:
        return command
    plain = NS_SEP.join(part.split(NS_END)[0] for part in graph.split(NS_SEP))
    return dataclasses.replace(command, graph=plain)


class ResumedTask:
    """An interrupted activation a resumed invocation will run again."""

    __slots__ = ("chain", "origin", "parent", "root_key", "token_id")

    def __init__(
        self, token_id: str, origin: str, parent: str | None, root_key: str, chain: list[str]
    ) -> None:
        self.token_id = token_id
        self.origin = origin
        self.parent = parent
        self.root_key = root_key
        self.chain = chain  # earlier tokens of the same task, oldest first, this one last


class Invocation:
    """Records one invocation of an adapted graph into ``run``."""

    def __init__(
        self,
        binding: GraphBinding,
        run: Run,
        *,
        index: int,
        spans: RunSpans | None,
        resumed: dict[str, ResumedTask] | None = None,
        replay: ReplayCursor | None = None,
    ) -> None:
        self.binding = binding
        self.run = run
        self.index = index
        self.spans = spans
        self.replay = replay
        self.resumed = resumed or {}
        self.closed = False
        self.report: ExecutionReport | None = None
        self.resume_input: Any = None
        self.interrupts: list[tuple[Activation, Any]] = []
        self.usage: dict[str, UsageTotals] = {}
        # one lock for everything this run records: the recorder is not thread-safe,
        # and LangGraph runs a step's tasks in threads (effects and events are hooked
        # through it too, see watch_run)
        self.lock = threading.RLock()
        self._attempts: dict[str, int] = {}
        self._last_writers: dict[str, tuple[int, list[Writer]]] = {}
        self._sends: dict[int, list[tuple[str, Writer, int]]] = {}
        self._flat: dict[int, list[Writer]] = {}
        self._step = -(2**31)
        # Group commit: the engine would hand each completed activation to the store's
        # writer thread; here completions are handed over every COMMIT_INTERVAL_S instead
        # (and at once before an effect's result is used, and when the run pauses or ends),
        # which is what "batch" durability allows and saves a thread handoff per step.
        self._durable = run.durable
        run.durable = False
        self._last_commit = time.monotonic()

    # ------------------------------------------------------------------ config

    def config(self, config: RunnableConfig | None) -> RunnableConfig:
        """``config`` carrying this invocation to the graph's tasks."""
        base: dict[str, Any] = dict(config or {})
        base[CONF] = {**(base.get(CONF) or {}), INVOCATION_KEY: self}
        return base  # type: ignore[return-value]

    # ------------------------------------------------------------------ activations

    def begin(self, node: str, input: Any, config: RunnableConfig) -> Activation:
        """Record the start of a task: its token (the node's input) and its dequeue."""
        md = config.get("metadata") or _EMPTY
        conf = config.get(CONF) or _EMPTY
        step = md.get("langgraph_step", -1)
        path = md.get("langgraph_path", ())
        task_id = conf.get(CONFIG_KEY_TASK_ID)
        text = _PATHS.get(path) if type(path) is tuple else None
        if text is None:
            text = _path_text(path)
        base_key = f"{self.index}/{step}/{text}"
        with self.lock:
            if step != self._step:
                self._new_step(step)
            attempt = self._attempts.get(base_key, 0)
            self._attempts[base_key] = attempt + 1
            key = f"{base_key}/{attempt}"
            meta: dict[str, Any] = {TASK: key, TASK_ID: task_id}
            resumed = (
                self.resumed.pop(task_id, None)
                if self.resumed and isinstance(task_id, str)
                else None
            )
            if resumed is not None:
                origin, parent = resumed.origin, resumed.parent
                meta[RESUMES] = resumed.token_id
                root_key = resumed.root_key or key
            else:
                origin, parent = self._parentage(step, path, md.get("langgraph_triggers"), meta)
                root_key = key
            if root_key != key:
                meta[ROOT] = root_key
            span = None
            if self.spans is not None:
                span = self.spans.start_node(self.run.nodes[node].spec, self.run.rec.seq, key)
                attached = otel_context.attach(trace.set_span_in_context(span))
                try:
                    handle = self._begin_token(node, input, origin, parent, meta)
                finally:
                    otel_context.detach(attached)
                span.set_attribute(NodeA.TOKEN_ID.value, handle.token_id)
            else:
                handle = self._begin_token(node, input, origin, parent, meta)
            if resumed is not None:
                self._serve_again(handle.token_id, resumed.chain)
            if self.replay is not None:
                self.replay.serve(self.run, handle.token_id, key)
        act = Activation(self, node, handle, config, key, root_key, step, path)
        act.span = span
        send = conf.get(CONFIG_KEY_SEND)
        owner = getattr(send, "__self__", None)
        if type(owner) is deque:
            act.writes = owner  # the task's own writes, filled as LangGraph writes them
        elif send is not None:
            self._capture_writes(act, conf, send)
        return act

    def _new_step(self, step: int) -> None:
        self._step = step
        self._attempts.clear()
        if self._sends:
            for old in [s for s in self._sends if s < step - 1]:
                del self._sends[old]
                self._flat.pop(old, None)

    def _begin_token(
        self, node: str, input: Any, origin: str, parent: str | None, meta: dict[str, Any]
    ) -> NodeRuntime:
        # ``meta`` holds identifiers only (task keys and ids, token ids, indexes, state
        # paths), as plain JSON: nothing to prepare or redact
        run = self.run
        try:
            return run.begin_external(
                node,
                input,
                origin=origin,
                parent_token_id=parent,
                metadata=meta,
                own_metadata=True,
            )
        except WorkloadRuntimeError as exc:
            if not isinstance(exc.__cause__, CanonicalEncodingError):
                raise
        value, opaque = recordable(input, where=node)
        meta[OPAQUE] = opaque  # paths into the user's state: prepared and redacted like it
        return run.begin_external(node, value, origin=origin, parent_token_id=parent, metadata=meta)

    def _serve_again(self, token_id: str, chain: list[str]) -> None:
        """Serve the effects the interrupted attempts of this task recorded, oldest first."""
        effects = self.run.effects
        for old in chain:
            for (tid, attempt, index), effect in list(effects.items()):
                if tid == old:
                    effects[(token_id, attempt, index)] = effect

    @staticmethod
    def _capture_writes(act: Activation, conf: Mapping[str, Any], send: Any) -> None:
        """Capture the task's writes through its config (when they are not a plain deque)."""
        captured: list[tuple[str, Any]] = []
        act.captured = captured

        def capture(writes: Any) -> Any:
            writes = list(writes)
            captured.extend(writes)
            return send(writes)

        config = dict(act.config)
        config[CONF] = {**conf, CONFIG_KEY_SEND: capture}
        act.config = config  # type: ignore[assignment]

    def end(self, act: Activation, result: Any) -> None:
        """Record a completed activation: ``node_completed`` with the node's update."""
        value, opaque, prepared = result, None, ABSENT
        try:  # one walk for the common, encodable update
            prepared = self.run.prep(result)
        except CanonicalEncodingError:
            value, opaque = recordable(result, where=act.node)
        except Exception:  # a failing redactor: end_external prepares again, records the failure
            pass
        handle = act.handle
        error: BaseException | None = None
        with self.lock:
            if self.closed:
                handle.close()
                return
            if opaque:
                handle.record_event("langgraph.unencodable", metadata={"paths": opaque})
            try:
                self.run.end_external(handle, value, prepared)
            except Exception as exc:  # over max_event_bytes: the audit trail cannot hold it
                error = exc
            else:
                self._note_writes(act)
            if self._durable and time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                self._last_commit = time.monotonic()
                self.run.rec.step_boundary()
            seq_end = self.run.rec.seq - 1
        if act.span is not None:
            self._end_span(act, "failed" if error else "completed", seq_end, error)
        if error is not None:
            cause = getattr(error, "error", error)
            raise WorkloadRuntimeError(f"{error}") from cause

    def fail(self, act: Activation, exc: BaseException) -> None:
        """The node raised: a failure, an ``interrupt()``, or a command for the parent graph."""
        from langgraph.errors import GraphBubbleUp, GraphInterrupt, ParentCommand

        if isinstance(exc, ParentCommand):
            self.end(act, _stable_command(exc.args[0] if exc.args else None))
            return
        handle = act.handle
        if isinstance(exc, GraphInterrupt):
            with self.lock:
                handle.close()
                if not self.closed:
                    self.interrupts.append((act, exc.args[0] if exc.args else ()))
                seq_end = self.run.rec.seq - 1
            self._end_span(act, "interrupted", seq_end, None)
            return
        with self.lock:
            if self.closed or isinstance(exc, GraphBubbleUp):
                handle.close()
            else:
                self.run.fail_external(handle, exc)
            seq_end = self.run.rec.seq - 1
        self._end_span(act, "failed", seq_end, exc)

    def _end_span(
        self, act: Activation, status: str, seq_end: int, error: BaseException | None
    ) -> None:
        usage = self.usage.pop(act.token_id, None)
        if act.span is not None and self.spans is not None:
            self.spans.end_node(act.span, status, seq_end, usage, error)

    # ------------------------------------------------------------------ parentage

    def _parentage(
        self, step: int, path: Any, triggers: Any, meta: dict[str, Any]
    ) -> tuple[str, str | None]:
        """Origin node and parent token: the activation whose writes triggered this task."""
        parents: list[Writer] = []
        if isinstance(path, tuple) and len(path) >= 2 and path[0] == PUSH:
            index = path[1]
            flat = self._flat_sends(step - 1)
            if type(index) is int and 0 <= index < len(flat):
                parents.append(flat[index])
            meta[SEND] = index
        elif triggers:
            last = self._last_writers
            if len(triggers) == 1:  # the common case: one edge, one writer
                entry = last.get(triggers[0])
                if entry is not None and entry[0] < step and len(entry[1]) == 1:
                    return entry[1][0][1], entry[1][0][0]
            for channel in triggers:
                entry = last.get(channel)
                if entry is not None and entry[0] < step:
                    parents.extend(w for w in entry[1] if w not in parents)
        if not parents:
            return ENTRY_ORIGIN, None
        if len(parents) > 1:
            meta[PARENTS] = [tid for tid, _ in parents]
        return parents[0][1], parents[0][0]

    def _flat_sends(self, step: int) -> list[Writer]:
        flat = self._flat.get(step)
        if flat is None:
            flat = []
            for _key, writer, count in sorted(self._sends.get(step, ()), key=lambda s: s[0]):
                flat.extend([writer] * count)
            self._flat[step] = flat
        return flat

    def _note_writes(self, act: Activation) -> None:
        """Remember which channels this activation wrote (it triggers the next step's tasks)."""
        writer = (act.handle.token_id, act.node)
        step = act.step
        sends = 0
        for channel, _value in act.all_writes():
            if channel == TASKS:
                sends += 1
            elif channel not in RESERVED_CHANNELS:
                entry = self._last_writers.get(channel)
                if entry is None or entry[0] != step:
                    self._last_writers[channel] = (step, [writer])
                elif writer not in entry[1]:
                    entry[1].append(writer)
        if sends:
            self._sends.setdefault(step, []).append((task_path_str(act.path), writer, sends))
            self._flat.pop(step, None)

    # ------------------------------------------------------------------ the end

    def close(
        self, error: BaseException | None, *, early: bool, breakpoint_at: list[str] | None
    ) -> ExecutionReport:
        """Record how the invocation ended (completed, interrupted, failed...) and report it."""

        with self.lock:  # late tasks (a consumer stopped reading) record nothing after this
            return self._close(error, early, breakpoint_at)

    def _close(
        self, error: BaseException | None, early: bool, breakpoint_at: list[str] | None
    ) -> ExecutionReport:
        from langgraph.errors import GraphDrained, GraphInterrupt, ParentCommand

        run = self.run
        self.closed = True
        interrupts = list(self.interrupts)
        status, reason = "completed", None
        try:
            if early:
                status, reason = "stopped", "the caller stopped reading the stream"
                run.finish(status, reason)
            elif interrupts or isinstance(error, GraphInterrupt):
                status, reason = "interrupted", self._pause(interrupts, error)
            elif isinstance(error, ParentCommand):  # a node handed control to the parent graph
                status, reason = "completed", "Command(graph=PARENT)"
                run.finish(status, reason)
            elif isinstance(error, GraphDrained):
                status, reason = "interrupted", f"drained: {error.reason}"
                run.pause(None, reason, "drained")
            elif error is not None and (
                isinstance(error, asyncio.CancelledError) or not isinstance(error, Exception)
            ):
                status, reason = "interrupted", f"cancelled: {type(error).__name__}"
                run.pause(None, reason, "cancelled")
            elif error is not None:
                status, reason = "failed", f"{type(error).__name__}: {error}"
                run.finish(status, reason)
            elif breakpoint_at:
                status, reason = "interrupted", f"breakpoint before {', '.join(breakpoint_at)}"
                run.pause(None, reason, "breakpoint")
            else:
                run.finish(status)
        except StoreError as exc:
            if error is not None:  # the graph's own error is what the caller must see
                return run.report("failed", f"{reason}; the ledger store failed too: {exc}")
            raise WorkloadRuntimeError(
                f"the ledger store failed while recording the end of run {run.run_id}; "
                f"the run cannot be trusted without its audit trail: {exc}",
                report=run.report("failed", str(exc)),
            ) from exc
        finally:
            if self.spans is not None:
                self.spans.end_run(status, run.rec.seq, error)
        self.report = run.report(status, reason)
        return self.report

    def _pause(self, interrupts: list[tuple[Activation, Any]], error: BaseException | None) -> str:
        described: list[dict[str, Any]] = []
        for act, items in interrupts:
            for item in items or ():
                described.append(
                    {
                        "node": act.node,
                        "token_id": act.token_id,
                        "task_id": (act.config.get(CONF) or {}).get(CONFIG_KEY_TASK_ID),
                        "key": act.key,
                        "root": act.root_key,
                        "id": getattr(item, "id", None),
                        "value": recordable(getattr(item, "value", item))[0],
                    }
                )
        if not described and error is not None and error.args:
            for item in error.args[0] or ():
                described.append(
                    {"id": getattr(item, "id", None), "value": recordable(item.value)[0]}
                )
        nodes = sorted({str(d.get("node")) for d in described if d.get("node")})
        reason = f"interrupt() in {', '.join(nodes)}" if nodes else "interrupt()"
        first = interrupts[0][0] if interrupts else None
        intr = Interrupt(
            reason,
            {"interrupts": described},
            first.node if first else "",
            first.token_id if first else "",
            0,
        )
        self.run.pause(intr if first else None, reason, "interrupt")
        return reason
