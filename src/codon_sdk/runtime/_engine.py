"""The engine: one run of a workload, from seed tokens to ``run_finished``.

Default scheduling is first-in first-out over the token queue, one activation at
a time, so the same program gives the same ledger order every time. With
``max_concurrency`` > 1 up to that many activations run at once (async nodes on
the event loop, sync nodes in a thread pool) and the ledger records things in
the order they happened.

An activation writes, in order: ``token_dequeued``; any custom events; then, when
the node returns, one ``token_enqueued`` per emitted token, ``state_updated`` if
the shared state changed, and ``node_completed``. Emitted tokens join the queue
only then, so an activation that never completed left nothing behind that a
resume would have to undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
import types
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codon_sdk.errors import (
    CanonicalEncodingError,
    StepLimitExceededError,
    StoreError,
    WorkloadRuntimeError,
)
from codon_sdk.identity._canonical import prepare
from codon_sdk.identity._nodespec import NodeSpec
from codon_sdk.ledger._events import (
    NODE_FAILED,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_STARTED,
    RUNTIME_STOPPED,
    STATE_UPDATED,
    TOKEN_ENQUEUED,
)
from codon_sdk.runtime._handle import NodeRuntime
from codon_sdk.runtime._recorder import Recorder
from codon_sdk.runtime._records import ENTRY_ORIGIN
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._state import RunState

if TYPE_CHECKING:  # pragma: no cover
    from opentelemetry.trace import Tracer

__all__ = ["NodeDef", "Observer", "QueueItem", "Run", "now_us"]

# (token id, target node, payload, origin node, parent token id, created at µs)
QueueItem = tuple[str, str, Any, str, "str | None", int]
Observer = Callable[[str, dict[str, Any]], None]
_CoroutineType = types.CoroutineType


def now_us() -> int:
    """Integer microseconds since the Unix epoch (the ledger's clock)."""
    return time.time_ns() // 1000


@dataclass(slots=True)
class NodeDef:
    """A registered node as the engine sees it."""

    name: str
    fn: Callable[..., Any]
    spec: NodeSpec
    is_async: bool
    successors: set[str] = field(default_factory=set)


class _NodeFailed(Exception):
    """Internal: a node raised; carries what the caller needs to build the error."""

    def __init__(self, node: str, token_id: str, error: BaseException, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.token_id = token_id
        self.error = error


class Run:
    """The mutable state of one run: queue, shared state, counters and the recorder."""

    def __init__(
        self,
        *,
        nodes: dict[str, NodeDef],
        run_id: str,
        context: dict[str, Any],
        recorder: Recorder,
        max_steps: int,
        max_concurrency: int = 1,
        observer: Observer | None = None,
        span_factory: Callable[[Run, NodeDef, str], contextlib.AbstractContextManager[Any]]
        | None = None,
    ) -> None:
        self.nodes = nodes
        self.run_id = run_id
        self.context = context
        self.rec = recorder
        self.max_steps = max_steps
        self.max_concurrency = max_concurrency
        self.observer = observer
        self.span_factory = span_factory
        self.state = RunState()
        self.queue: deque[QueueItem] = deque()
        self.steps = 0
        self.token_counter = 0
        self.live_results: list[Any] = []
        self.live_offset = 0
        self.stop_request: tuple[str, str, str] | None = None
        self.started_us = now_us()
        self.tracer: Tracer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lineage: dict[str, tuple[str, str | None]] = {}
        self._lineage_seq = 0

    # ------------------------------------------------------------------ ids & lineage

    def next_token_id(self) -> str:
        self.token_counter += 1
        return f"t{self.token_counter}"

    def lineage_of(self, token_id: str) -> tuple[str, ...]:
        """Emitting nodes from the seed to ``token_id``'s origin, from the ledger's parent links."""
        self._index_lineage()
        chain: list[str] = []
        current: str | None = token_id
        while current is not None and current in self._lineage:
            origin, parent = self._lineage[current]
            if parent is None:
                break
            chain.append(origin)
            current = parent
        return tuple(reversed(chain))

    def _index_lineage(self) -> None:
        from codon_sdk.ledger._events import parse_entry

        for entry in self.rec.entries(self._lineage_seq):
            ev = parse_entry(entry)
            if ev.type == TOKEN_ENQUEUED and ev.token_id is not None:
                self._lineage[ev.token_id] = (ev.node or ENTRY_ORIGIN, ev.parent_token_id)
        self._lineage_seq = len(self.rec)

    # ------------------------------------------------------------------ recording helpers

    def emit_observed(self, event_type: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(event_type, data)

    def record_started(self, metadata: dict[str, Any]) -> None:
        self.rec.append(RUN_STARTED, self.started_us, metadata=prepare(metadata))

    def enqueue_seed(self, target: str, payload: Any, prepared: Any) -> None:
        tid = self.next_token_id()
        ts = now_us()
        self.rec.append(TOKEN_ENQUEUED, ts, ENTRY_ORIGIN, tid, prepared, {"seed": True}, target)
        self.queue.append((tid, target, payload, ENTRY_ORIGIN, None, ts))
        if self.observer is not None:
            self.observer(
                "token_enqueued",
                {
                    "token_id": tid,
                    "source": ENTRY_ORIGIN,
                    "target": target,
                    "payload": payload,
                    "seed": True,
                },
            )

    def record_custom(self, node: str, token_id: str, event_type: str, metadata: Any) -> None:
        self.rec.append(event_type, now_us(), node, token_id, metadata=metadata)
        if self.observer is not None:
            self.observer(
                "runtime_event",
                {
                    "event_type": event_type,
                    "node": node,
                    "token_id": token_id,
                    "metadata": metadata,
                },
            )

    # ------------------------------------------------------------------ scheduling

    async def drive(self) -> None:
        """Process the queue until it is empty, a node stops the run, or something fails."""
        if self.max_concurrency > 1:
            await self._drive_concurrently()
            return
        queue, nodes, rec, context = self.queue, self.nodes, self.rec, self.context
        plain = self.span_factory is None and self.observer is None
        while queue:
            if self.steps >= self.max_steps:
                raise self._step_limit()
            item = queue.popleft()
            node = nodes[item[1]]
            if node.is_async or not plain:
                await self._activate(item)
            else:  # the hot path: a sync node, no spans, no stream (same steps as _activate)
                tid = item[0]
                self.steps += 1
                rec.dequeued(node.name, tid, now_us())
                handle = NodeRuntime(self, node, item)
                try:
                    result = node.fn(item[2], runtime=handle, context=context)
                    if type(result) is _CoroutineType:
                        result = await result
                    prepared = prepare(result)
                except BaseException as exc:
                    raise self._failure(node.name, tid, exc) from exc
                self._complete(node, tid, handle, result, prepared)
            if self.stop_request is not None:
                return

    async def _drive_concurrently(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="codon-node"
        )
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                while (
                    self.queue
                    and len(in_flight) < self.max_concurrency
                    and self.stop_request is None
                ):
                    if self.steps >= self.max_steps:
                        raise self._step_limit()
                    in_flight.add(asyncio.ensure_future(self._activate(self.queue.popleft())))
                if not in_flight:
                    return
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    in_flight.discard(task)
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            self._pool.shutdown(wait=False)

    def _step_limit(self) -> StepLimitExceededError:
        return StepLimitExceededError(
            f"run {self.run_id} exceeded max_steps={self.max_steps}: {self.steps} activations ran "
            f"and {len(self.queue)} token(s) are still queued; raise max_steps or look for a "
            "runaway loop"
        )

    # ------------------------------------------------------------------ one activation

    async def _activate(self, item: QueueItem) -> None:
        tid, target, payload, origin, _parent, _created = item
        node = self.nodes[target]
        self.steps += 1
        self.rec.dequeued(target, tid, now_us())
        if self.observer is not None:
            self.observer("token_dequeued", {"token_id": tid, "node": target, "source": origin})
            self.observer("node_started", {"node": target, "token_id": tid})
        handle = NodeRuntime(self, node, item)
        try:
            if self.span_factory is None:
                result = await self._call(node, payload, handle)
            else:
                with self.span_factory(self, node, tid):
                    result = await self._call(node, payload, handle)
            prepared = prepare(result)
        except BaseException as exc:
            raise self._failure(node.name, tid, exc) from exc
        self._complete(node, tid, handle, result, prepared)

    def _failure(self, node: str, tid: str, exc: BaseException) -> BaseException:
        """Record a failed activation; return what to raise (cancellations propagate as is)."""
        if not isinstance(exc, Exception):  # KeyboardInterrupt, CancelledError, SystemExit
            self._record_failure(node, tid, exc, cancelled=True)
            return exc
        if isinstance(exc, CanonicalEncodingError):
            message = (
                f"node {node!r} returned a result that cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            )
        else:
            message = f"node {node!r} failed on token {tid}: {type(exc).__name__}: {exc}"
        self._record_failure(node, tid, exc, cancelled=False)
        return _NodeFailed(node, tid, exc, message)

    async def _call(self, node: NodeDef, payload: Any, handle: NodeRuntime) -> Any:
        if node.is_async:
            return await node.fn(payload, runtime=handle, context=self.context)
        if self._pool is not None:
            call = functools.partial(
                contextvars.copy_context().run,
                node.fn,
                payload,
                runtime=handle,
                context=self.context,
            )
            result = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        else:
            result = node.fn(payload, runtime=handle, context=self.context)
        if type(result) is _CoroutineType:
            result = await result
        return result

    def _complete(
        self, node: NodeDef, tid: str, handle: NodeRuntime, result: Any, prepared: Any
    ) -> None:
        rec = self.rec
        name = node.name
        t1 = now_us()
        emitted = handle._emitted
        observer = self.observer
        if emitted is not None:
            queue = self.queue
            for etid, etarget, epayload, eprepared, emeta in emitted:
                rec.enqueued(name, etid, eprepared, emeta, etarget, tid, t1)
                queue.append((etid, etarget, epayload, name, tid, t1))
                if observer is not None:
                    observer(
                        "token_enqueued",
                        {"token_id": etid, "source": name, "target": etarget, "payload": epayload},
                    )
        changes = self.state.changes()
        if changes is not None:
            rec.state_updated(name, tid, changes, t1)
        rec.completed(name, tid, prepared, 0 if emitted is None else len(emitted), t1)
        self.live_results.append(result)
        if observer is not None:
            observer("node_completed", {"node": name, "token_id": tid, "result": result})
        if handle._stop is not None and self.stop_request is None:
            self.stop_request = (name, handle._stop, tid)
        rec.step_boundary()

    def _record_failure(self, node: str, tid: str, exc: BaseException, *, cancelled: bool) -> None:
        meta: dict[str, Any] = {
            "exception": f"{type(exc).__name__}: {exc}",
            "error_type": type(exc).__qualname__,
        }
        if cancelled:
            meta["cancelled"] = True
        with contextlib.suppress(StoreError):
            self.rec.append(NODE_FAILED, now_us(), node, tid, metadata=prepare(meta))
        if self.observer is not None:
            self.observer(
                "node_failed", {"node": node, "token_id": tid, "exception": meta["exception"]}
            )

    # ------------------------------------------------------------------ endings

    def finish(self, status: str, reason: str | None = None) -> None:
        """Record the end of the run (outstanding state changes, ``run_finished``) and commit."""
        rec = self.rec
        ts = now_us()
        if self.stop_request is not None and status == "stopped":
            node, why, tid = self.stop_request
            rec.append(
                RUNTIME_STOPPED, ts, node, tid, metadata={"reason": why, "pending": len(self.queue)}
            )
            if self.observer is not None:
                self.observer("runtime_stopped", {"node": node, "reason": why})
        changes = self.state.changes(full=True)
        if changes is not None:
            rec.append(STATE_UPDATED, ts, payload=changes)
        meta: dict[str, Any] = {"status": status, "events": rec.seq, "activations": self.steps}
        if reason:
            meta["reason"] = reason
        rec.append(RUN_FINISHED, ts, metadata=prepare(meta))
        rec.commit()

    def interrupted(self, reason: str, kind: str) -> None:
        """Record that the run was paused or cancelled (resumable), and commit."""
        meta = {"reason": reason, "kind": kind, "events": self.rec.seq}
        self.rec.append(RUN_INTERRUPTED, now_us(), metadata=prepare(meta))
        self.rec.commit()

    def report(self, status: str, reason: str | None = None) -> ExecutionReport:
        return ExecutionReport(
            run_id=self.run_id,
            context=self.context,
            status=status,
            entries=self.rec,
            state=dict(dict.items(self.state)),
            started_us=self.started_us,
            finished_us=now_us(),
            live_results=self.live_results,
            live_offset=self.live_offset,
            reason=reason,
        )

    async def execute(self) -> ExecutionReport:
        """Drive the run to its end and return its report, or raise ``WorkloadRuntimeError``."""
        try:
            await self.drive()
        except _NodeFailed as failure:
            self.finish("failed", str(failure))
            raise WorkloadRuntimeError(
                str(failure), report=self.report("failed", str(failure))
            ) from failure.error
        except StepLimitExceededError as exc:
            self.finish("failed", f"max_steps={self.max_steps} exceeded")
            exc.report = self.report("failed", f"max_steps={self.max_steps} exceeded")
            raise
        except StoreError as exc:
            raise WorkloadRuntimeError(
                f"the ledger store failed during run {self.run_id}; the run cannot continue "
                f"without its audit trail: {exc}",
                report=self.report("failed", str(exc)),
            ) from exc
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.interrupted(f"cancelled: {type(exc).__name__}", "cancelled")
            raise
        status = "stopped" if self.stop_request is not None else "completed"
        self.finish(status)
        report = self.report(status)
        self.emit_observed("workflow_finished", {"report": report, "status": status})
        return report
