"""The engine: one run of a workload, from seed tokens to ``run_finished``.

Default scheduling is first-in first-out over the token queue, one activation at
a time, so the same program gives the same ledger order every time. With
``max_concurrency`` > 1 up to that many activations run at once (async nodes on
the event loop, sync nodes in a thread pool) and the ledger records things in
the order they happened.

An activation writes, in order: ``token_dequeued``; any custom events and recorded
effects (at once); then, when the node returns, one ``token_enqueued`` per
emitted token, ``state_updated`` if the shared state changed, and
``node_completed``. Emitted tokens join the queue only then, so an activation
that never completed left nothing behind that a resume would have to undo. A
failed attempt of a node with a retry policy is a ``node_retrying`` event; its
emissions are dropped and the next attempt starts afresh. A token for a join
(``add_join``) waits in :class:`~codon_sdk.runtime._join.Joins` instead of the queue,
until the join fires (``_join.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codon_sdk._clock import now_us
from codon_sdk._text import exception_text, valid_unicode
from codon_sdk.errors import (
    CanonicalEncodingError,
    NodeTimeoutError,
    PayloadTooLargeError,
    RunTimeoutError,
    SealingKeyError,
    StepLimitExceededError,
    StoreError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import NodeSpec, Redact, prepare
from codon_sdk.ledger import (
    EFFECT_RECORDED,
    NODE_FAILED,
    NODE_RETRYING,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_STARTED,
    RUNTIME_STOPPED,
    STATE_UPDATED,
    TOKEN_ENQUEUED,
)
from codon_sdk.runtime._blobs import Offload
from codon_sdk.runtime._dispatch import Executor, call_node
from codon_sdk.runtime._handle import (
    CURRENT_RUNTIME,
    NO_DEFAULT,
    Interrupt,
    NodeRuntime,
    integrations_active,
)
from codon_sdk.runtime._join import Joins
from codon_sdk.runtime._outcome import NodeFailed, run_to_end
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.runtime._queue import InMemoryTokenQueue, QueuedToken, TokenQueue
from codon_sdk.runtime._rebuild import RecordedEffect
from codon_sdk.runtime._recorder import ABSENT, Recorder
from codon_sdk.runtime._records import ENTRY_ORIGIN
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._request import RequestChange
from codon_sdk.runtime._state import RunState
from codon_sdk.runtime._tracer import RunTracer
from codon_sdk.telemetry import CodonLedgerAttributes, CodonNodeAttributes

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._cache import CachePolicy, RunCache
    from codon_sdk.runtime._govern import RunGovernor
    from codon_sdk.runtime._request_cache import RequestCache, RequestCaching

__all__ = ["NodeDef", "Observer", "QueueItem", "Run", "now_us"]

# (token id, target node, payload, origin node, parent token id, created at µs)
QueueItem = QueuedToken
Observer = Callable[[str, dict[str, Any]], None]
_CoroutineType = types.CoroutineType
_SAFE = 2**53 - 1
_ATTEMPT = CodonNodeAttributes.ATTEMPT.value
_SEQ_END = CodonLedgerAttributes.SEQ_END.value


def _unrecordable_part(path: str) -> str:
    """Which part of an activation a value that cannot be recorded was, from its path."""
    if path.startswith(("state[", "$['state']")):
        return "set a state value"
    if path.startswith("$['emitted']"):
        return "emitted a token payload"
    return "returned a result"


@dataclass(slots=True)
class NodeDef:
    """A registered node as the engine sees it."""

    name: str
    fn: Callable[..., Any]
    spec: NodeSpec
    is_async: bool
    successors: set[str] = field(default_factory=set)
    retry: RetryPolicy | None = None
    timeout: float | None = None
    #: the sources whose tokens wait for each other at this node (``add_join``), or ()
    join: tuple[str, ...] = ()
    #: what of its outcome is reused by identity (``add_node(cache=...)``, ``_cache.py``)
    cache: CachePolicy | None = None
    #: its effects served from earlier identical requests (``_request_cache.py``)
    request_cache: RequestCache | None = None
    #: what an executor gives each activation (``add_node(resources=...)``), or None
    resources: dict[str, float] | None = None

    plain: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        # a sync node with no retry policy, timeout or cache: the engine's fast path
        self.plain = (
            not self.is_async and self.retry is None and self.timeout is None and self.cache is None
        )

    def copy(self) -> NodeDef:
        return NodeDef(
            self.name,
            self.fn,
            self.spec,
            self.is_async,
            set(self.successors),
            self.retry,
            self.timeout,
            self.join,
            self.cache,
            self.request_cache,
            self.resources,
        )


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
        tracer: RunTracer | None = None,
        timeout: float | None = None,
        redact: Redact | None = None,
        mask: Redact | None = None,
    ) -> None:
        self.nodes = nodes
        self.run_id = run_id
        self.context = context
        self.rec = recorder
        self.max_steps = max_steps
        self.max_concurrency = max_concurrency
        self.observer = observer
        self.tracer = tracer
        # with one activation at a time the tracer stamps span ids on the recorder;
        # with several, each event reads the current span
        recorder.tracing = tracer is not None and max_concurrency > 1
        self.redact = redact  # what the ledger records (secrets masked or sealed)
        # what leaves the process (spans, logs): masked, never sealed ciphertext
        self.mask = redact if mask is None else mask
        self.state = RunState(redact=redact, locked=max_concurrency > 1)
        self.joins = Joins.of(nodes)
        self.queue: TokenQueue = InMemoryTokenQueue()  # the seam: ``_queue.py``
        self.steps = 0
        self.rerun: frozenset[str] = frozenset()  # activations started before a resume
        self.token_counter = 0
        self.durable = recorder.durable
        self.live_results: list[Any] = []
        self.live_offset = 0
        self.stop_request: tuple[str, str, str] | None = None
        self.started_us = now_us()
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        # recorded history served back on resume and replay
        self.effects: dict[tuple[str, int, int], RecordedEffect] = {}
        self.resume_inputs: dict[tuple[str, int], Any] = {}
        self.attempts: dict[str, int] = {}
        self.replaying = False
        self.divergences: list[tuple[str, str]] = []
        # replay only: nodes whose effects are made for real, and requests that changed
        self.live: frozenset[str] = frozenset()
        self.request_changes: list[RequestChange] = []
        #: (trace id, span id) of the last span of the run this one continues (resume)
        self.continues: tuple[str, str] | None = None
        self.resumed_by: str | None = None  # the resume's actor, for the resumed span event
        self.on_close: list[Callable[[], None]] = []
        self.cache: RunCache | None = None  # caching by identity (``_cache.py``)
        self.requests: RequestCaching | None = None  # the request cache (``_request_cache.py``)
        self.governor: RunGovernor | None = None  # policies, budgets, rate limits (``_govern.py``)
        self.blobs: Offload | None = None  # large values to blobs (``_blobs.py``)
        self.subjects: Any = None  # the LedgerStore subject tags go to (``record_event``)
        self._pool: ThreadPoolExecutor | None = None
        self.executor: Executor | None = None  # where activations run (``_dispatch.py``)
        self._lineage: dict[str, tuple[str, str | None]] = {}
        self._lineage_seq = 0

    def prep(self, value: Any) -> Any:
        """``value`` prepared for the ledger, through the run's redaction policy."""
        prepared = prepare(value, self.redact)
        return prepared if self.blobs is None else self.blobs(prepared)

    # ------------------------------------------------------------------ ids & lineage

    @property
    def token_counter(self) -> int:
        """The number of the last token id handed out (``t<n>``)."""
        return self._issued

    @token_counter.setter
    def token_counter(self, value: int) -> None:
        self._issued = value
        self._ids = itertools.count(value + 1)

    def next_token_id(self) -> str:
        n = next(self._ids)  # atomic under the GIL: safe from worker threads
        self._issued = n
        return f"t{n}"

    def lineage_of(self, token_id: str) -> tuple[str, ...]:
        """Emitting nodes from the seed to ``token_id``'s origin, from the ledger's parent links."""
        from codon_sdk.ledger import parse_entry

        for entry in self.rec.entries(self._lineage_seq):
            ev = parse_entry(entry)
            if ev.type == TOKEN_ENQUEUED and ev.token_id is not None:
                self._lineage[ev.token_id] = (ev.node or ENTRY_ORIGIN, ev.parent_token_id)
        self._lineage_seq = len(self.rec)
        chain: list[str] = []
        current: str | None = token_id
        while current is not None and current in self._lineage:
            origin, parent = self._lineage[current]
            if parent is None:
                break
            chain.append(origin)
            current = parent
        return tuple(reversed(chain))

    # ------------------------------------------------------------------ recording helpers

    def observe(self, event_type: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(event_type, data)

    def record_started(self, metadata: dict[str, Any]) -> None:
        self.rec.append(RUN_STARTED, self.started_us, metadata=self.prep(metadata))

    def enqueue_seed(self, target: str, payload: Any, prepared: Any) -> None:
        tid = self.next_token_id()
        ts = now_us()
        self.rec.enqueued(ENTRY_ORIGIN, tid, prepared, {"seed": True}, target, None, ts)
        self.queue.put((tid, target, payload, ENTRY_ORIGIN, None, ts))
        self.observe(
            "token_enqueued",
            {
                "token_id": tid,
                "source_node": ENTRY_ORIGIN,
                "target_node": target,
                "payload": payload,
                "seed": True,
            },
        )

    def record_custom(self, node: str, token_id: str, event_type: str, metadata: Any) -> int:
        seq = self.rec.append(event_type, now_us(), node, token_id, metadata=metadata)
        self.observe(
            "runtime_event",
            {"event_type": event_type, "node": node, "token_id": token_id, "metadata": metadata},
        )
        return seq

    def record_effect(
        self, node: str, token_id: str, meta: dict[str, Any], value: Any, *, durable: bool = True
    ) -> int:
        """Record an effect's result and make it durable before the node sees it; its seq."""
        seq = self.rec.append(EFFECT_RECORDED, now_us(), node, token_id, value, self.prep(meta))
        llm = meta.get("llm")
        if isinstance(llm, dict) and self.tracer is not None:
            self.tracer.llm_call(token_id, llm)  # span totals and the cost metric
        if isinstance(llm, dict) and self.governor is not None:
            self.governor.spent(token_id, llm)  # budgets and rate limits see the real usage
        if durable:
            self.rec.barrier()
        return seq

    # ------------------------------------------------------------------ scheduling

    async def drive(self) -> None:
        """Process the queue until it is empty, a node stops the run, or something fails."""
        joins = self.joins
        if joins is not None:
            joins.start(self)
        if self.max_concurrency > 1:
            await self._drive_concurrently()
            return
        while True:
            await self._drive_in_order()
            if self.stop_request is not None or joins is None or not joins.unblock(self):
                return

    async def _drive_in_order(self) -> None:
        """One activation at a time, first in first out, until the queue is empty."""
        queue, nodes, rec, context = self.queue, self.nodes, self.rec, self.context
        fast = self.tracer is None and self.observer is None and self.deadline is None
        fast = fast and (self.cache is None or not self.replaying)  # replay serves its hits
        fast = fast and (self.executor is None or self.executor.in_process)
        fast = fast and self.governor is None
        current = CURRENT_RUNTIME if integrations_active() else None
        time_ns = time.time_ns
        attempts = self.attempts
        while queue:
            if self.steps >= self.max_steps:
                raise self._step_limit()
            item = queue.take()
            node = nodes[item[1]]
            if not (fast and node.plain):
                await self._activate(item)
            else:  # the hot path: the same steps as _activate, without the optional parts
                tid = item[0]
                self.steps += 1
                rec.dequeued(node.name, tid, time_ns() // 1000)
                handle = NodeRuntime(self, node, item, attempts.get(tid, 0) if attempts else 0)
                reset = None if current is None else current.set(handle)
                try:
                    result = node.fn(item[2], runtime=handle, context=context)
                    if type(result) is _CoroutineType:
                        result = await result
                    prepared = (
                        result
                        if type(result) is int and -_SAFE <= result <= _SAFE
                        else self.prep(result)
                    )
                except Interrupt:
                    raise
                except BaseException as exc:
                    failure = self._failure(node.name, tid, exc)
                    if failure is exc:
                        raise
                    raise failure from exc
                finally:
                    if reset is not None:
                        CURRENT_RUNTIME.reset(reset)
                self._complete(node, tid, handle, result, prepared)
            if self.stop_request is not None:
                return

    async def _drive_concurrently(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="codon-node"
        )
        in_flight: set[asyncio.Task[None]] = set()
        pause: BaseException | None = None
        joins = self.joins
        try:
            while True:
                while (
                    self.queue
                    and len(in_flight) < self.max_concurrency
                    and self.stop_request is None
                    and pause is None
                ):
                    if self.steps >= self.max_steps:
                        raise self._step_limit()
                    self._check_deadline()
                    item = self.queue.take()
                    if joins is not None:
                        joins.running[item[1]] = joins.running.get(item[1], 0) + 1
                    in_flight.add(asyncio.ensure_future(self._activate(item)))
                if not in_flight:
                    if (
                        joins is not None
                        and pause is None
                        and self.stop_request is None
                        and joins.unblock(self)
                    ):
                        continue
                    break
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    in_flight.discard(task)
                    exc = task.exception()
                    if isinstance(exc, Interrupt):
                        pause = pause or exc  # let the others finish, then pause
                    elif exc is not None:
                        raise exc
            if pause is not None:
                raise pause
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

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RunTimeoutError(
                f"run {self.run_id} exceeded its timeout of {self.timeout}s after "
                f"{self.steps} activations; raise timeout= or make the nodes faster"
            )

    # ------------------------------------------------------------------ one activation

    async def _activate(self, item: QueueItem) -> None:
        if self.tracer is None:
            await self._attempts(item, None)
            return
        node = self.nodes[item[1]]
        with self.tracer.node_span(self, node, item[0], self.rec.seq) as span:
            await self._attempts(item, span)

    async def _attempts(self, item: QueueItem, span: Any) -> None:
        tid, target, payload, origin, _parent, _created = item
        node = self.nodes[target]
        self._check_deadline()
        self.steps += 1
        self.rec.dequeued(target, tid, now_us())
        if self.observer is not None:
            self.observer(
                "token_dequeued",
                {"token_id": tid, "node": target, "source_node": origin, "target_node": target},
            )
            self.observer("node_started", {"node": target, "token_id": tid})
        attempt = self.attempts.get(tid, 0)
        cache = self.cache
        if cache is not None and cache.serve(self, node, item, attempt):
            return
        while True:
            handle = NodeRuntime(self, node, item, attempt)
            try:
                if self.governor is not None:  # policies and budgets, before the node runs
                    self.governor.activation(handle)
                result = await self._call(node, payload, handle)
                prepared = self.prep(result)
                break
            except Interrupt:
                handle.close()
                raise
            except Exception as exc:
                handle.close()
                if node.retry is None or not node.retry.retries(exc, attempt):
                    raise self._failure(node.name, tid, exc) from exc
                attempt = await self._retry(node, tid, exc, attempt)
            except BaseException as exc:
                handle.close()
                failure = self._failure(node.name, tid, exc)
                if failure is exc:
                    raise
                raise failure from exc
        self._complete(node, tid, handle, result, prepared)
        if cache is not None:
            cache.completed(self, node, tid, handle)
        if span is not None:
            span.set_attributes({_SEQ_END: self.rec.seq - 1, _ATTEMPT: attempt})

    async def _retry(self, node: NodeDef, tid: str, exc: Exception, attempt: int) -> int:
        assert node.retry is not None
        delay = node.retry.delay(attempt + 1)
        meta = {
            "attempt": attempt,
            "next_attempt": attempt + 1,
            "error_type": type(exc).__qualname__,
            "exception": exception_text(exc),
            "delay_s": delay,
            "timeout": isinstance(exc, NodeTimeoutError),
        }
        self.rec.append(NODE_RETRYING, now_us(), node.name, tid, metadata=self.prep(meta))
        if self.max_concurrency == 1:  # the next attempt starts from the recorded state
            self.state.rollback()
        self.observe("node_retrying", {"node": node.name, "token_id": tid, **meta})
        self.attempts[tid] = attempt + 1
        if delay > 0 and not self.replaying:
            await asyncio.sleep(delay)
        return attempt + 1

    async def _call(self, node: NodeDef, payload: Any, handle: NodeRuntime) -> Any:
        return await call_node(self, node, payload, handle)  # where: ``_dispatch.py``

    def _complete(
        self, node: NodeDef, tid: str, handle: NodeRuntime, result: Any, prepared: Any
    ) -> None:
        """Record a completed activation: emitted tokens, state changes, ``node_completed``.

        A state value or an event that cannot be recorded (no encoding, over the
        size limit) fails the activation like an exception in the node would.
        """
        name = node.name
        handle._closed = True
        emitted = handle._emitted
        t1 = time.time_ns() // 1000
        try:
            changes = self.state.changes()  # first: an unencodable value fails before any write
            if self.blobs is not None and changes is not None:
                changes = self.blobs(changes)
            self.rec.completion(name, tid, emitted, changes, prepared, t1, handle._emit_metadata)
        except (CanonicalEncodingError, PayloadTooLargeError, SealingKeyError) as exc:
            failure = self._failure(name, tid, exc)
            if failure is exc:  # the key source failed: nothing of this activation recorded
                raise
            raise failure from exc
        joins = self.joins
        if joins is not None:  # tokens for a join wait there; joins that can fire do
            joins.completed(self, name, tid, t1, emitted)
        elif emitted is not None:
            put = self.queue.put
            for etid, etarget, epayload, _, _ in emitted:
                put((etid, etarget, epayload, name, tid, t1))
        self.live_results.append(result)
        if self.observer is not None:
            self._observe_completion(name, tid, emitted, result)
        if handle._stop is not None and self.stop_request is None:
            self.stop_request = (name, handle._stop, tid)
        if self.durable:
            self.rec.step_boundary()

    def _observe_completion(
        self, name: str, tid: str, emitted: list[tuple[str, str, Any, Any, Any]] | None, result: Any
    ) -> None:
        assert self.observer is not None
        for etid, etarget, epayload, _, _ in emitted or ():
            self.observer(
                "token_enqueued",
                {
                    "token_id": etid,
                    "source_node": name,
                    "target_node": etarget,
                    "payload": epayload,
                },
            )
        self.observer("node_completed", {"node": name, "token_id": tid, "result": result})

    def _failure(self, node: str, tid: str, exc: BaseException) -> BaseException:
        """Record a failed activation; return what to raise (cancellations propagate as is)."""
        if not isinstance(exc, Exception):  # KeyboardInterrupt, CancelledError, SystemExit
            self._record_failure(node, tid, exc, cancelled=True)
            return exc
        if isinstance(exc, (RunTimeoutError, StoreError, SealingKeyError)):
            self._record_failure(node, tid, exc, cancelled=False)
            return exc
        if isinstance(exc, PayloadTooLargeError):
            message = f"node {node!r}: {exc}"
        elif isinstance(exc, CanonicalEncodingError):
            message = (
                f"node {node!r} {_unrecordable_part(exc.path)} that cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            )
        else:
            message = f"node {node!r} failed on token {tid}: {exception_text(exc)}"
        self._record_failure(node, tid, exc, cancelled=False)
        return NodeFailed(node, tid, exc, message)

    def _record_failure(self, node: str, tid: str, exc: BaseException, *, cancelled: bool) -> None:
        meta: dict[str, Any] = {
            "exception": exception_text(exc),
            "error_type": type(exc).__qualname__,
            "attempt": self.attempts.get(tid, 0),
        }
        if cancelled:
            meta["cancelled"] = True
        if isinstance(exc, NodeTimeoutError):
            meta["timeout"] = True
        with contextlib.suppress(StoreError):
            self.rec.append(NODE_FAILED, now_us(), node, tid, metadata=self.prep(meta))
        self.observe("node_failed", {"node": node, "token_id": tid, "exception": meta["exception"]})

    # ------------------------------------------------------------------ integrations' activations

    def begin_external(
        self,
        node: str,
        payload: Any,
        *,
        origin: str = ENTRY_ORIGIN,
        parent_token_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        own_metadata: bool = False,
    ) -> NodeRuntime:
        """Record a token for ``node`` and the start of its activation, for integrations
        (LangGraph) whose own scheduler runs the node: they call the node themselves,
        then :meth:`end_external` or :meth:`fail_external`. The handle is not made the
        current runtime; wrap the call in ``CURRENT_RUNTIME.set(handle)`` to let
        instrumented LLM calls record their effects in it.

        ``own_metadata=True`` is for metadata the integration composes itself from
        identifiers (task keys and ids, token ids, indexes): plain JSON (strings,
        integers, None and lists of them) with nothing for the redaction policy to
        mask, recorded as it is instead of being prepared and redacted."""
        nodedef = self.nodes[node]
        try:
            prepared = self.prep(payload)
            if not metadata:
                meta = None
            else:
                meta = metadata if own_metadata else self.prep(metadata)
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"input of node {node!r} cannot be recorded ({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        tid = self.next_token_id()
        ts = now_us()
        self.rec.enqueued(origin, tid, prepared, meta, node, parent_token_id, ts)
        item: QueueItem = (tid, node, payload, origin, parent_token_id, ts)
        self.steps += 1
        self.rec.dequeued(node, tid, ts)
        if self.observer is not None:
            self.observer("node_started", {"node": node, "token_id": tid})
        return NodeRuntime(self, nodedef, item, self.attempts.get(tid, 0))

    def end_external(self, handle: NodeRuntime, result: Any, prepared: Any = ABSENT) -> None:
        """Record the completion of an activation begun with :meth:`begin_external`
        (``prepared``: ``self.prep(result)``, when the caller has it already)."""
        try:
            if prepared is ABSENT:
                prepared = self.prep(result)
        except CanonicalEncodingError as exc:
            self._record_failure(handle.node, handle.token_id, exc, cancelled=False)
            raise WorkloadRuntimeError(
                f"node {handle.node!r} returned a result that cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        self._complete(self.nodes[handle.node], handle.token_id, handle, result, prepared)

    def fail_external(self, handle: NodeRuntime, exc: BaseException) -> None:
        """Record that an activation begun with :meth:`begin_external` raised ``exc``."""
        handle.close()
        self._record_failure(
            handle.node, handle.token_id, exc, cancelled=not isinstance(exc, Exception)
        )

    # ------------------------------------------------------------------ endings

    def finish(self, status: str, reason: str | None = None) -> None:
        """Record the end of the run (outstanding state changes, ``run_finished``), durably."""
        rec = self.rec
        ts = now_us()
        if self.stop_request is not None and status == "stopped":
            node, why, tid = self.stop_request
            pending = len(self.queue) + (0 if self.joins is None else self.joins.waiting)
            rec.append(RUNTIME_STOPPED, ts, node, tid, metadata={"reason": why, "pending": pending})
            self.observe("runtime_stopped", {"node": node, "reason": why})
        skipped: list[str] = []
        changes = self.state.changes(full=True, skipped=skipped)
        if changes is not None:
            rec.append(STATE_UPDATED, ts, payload=changes)
        rec.flush_held()
        meta: dict[str, Any] = {"status": status, "events": rec.seq, "activations": self.steps}
        if reason:
            meta["reason"] = valid_unicode(reason)
        if skipped:
            meta["unrecorded_state"] = skipped
        rec.append(RUN_FINISHED, ts, metadata=self.prep(meta))
        rec.barrier(status=status, finished_us=ts, release=True)

    def pause(self, interrupt: Interrupt | None, reason: str, kind: str) -> None:
        """Record that the run paused (an interrupt) or was cancelled: resumable, durably."""
        self.rec.flush_held()
        meta: dict[str, Any] = {"reason": reason, "kind": kind, "events": self.rec.seq}
        node = tid = None
        if interrupt is not None:
            node, tid = interrupt.node, interrupt.token_id
            meta["interrupt_index"] = interrupt.index
            if interrupt.payload is not None:
                meta["payload"] = interrupt.payload
            if interrupt.default is not NO_DEFAULT:
                meta["default"] = interrupt.default
        self.rec.append(RUN_INTERRUPTED, now_us(), node, tid, metadata=self.prep(meta))
        if self.tracer is not None:
            self.tracer.paused(reason, node, self.mask)
        self.rec.barrier(status="interrupted", release=True)

    def report(self, status: str, reason: str | None = None) -> ExecutionReport:
        report = ExecutionReport(
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
        report.blobs = None if self.blobs is None else self.blobs.blobs
        return report

    async def execute(self) -> ExecutionReport:
        """Drive the run to its end (or a pause) and return its report; raise if it failed."""
        try:
            if self.tracer is None:
                return await run_to_end(self)
            began = time.perf_counter()
            with self.tracer.run_span(self) as span:
                try:
                    report = await run_to_end(self)
                except WorkloadRuntimeError as exc:
                    span.set_attribute("error.type", type(exc.__cause__ or exc).__qualname__)
                    raise
                span.set_attribute("codon.ledger.event_count", report.event_count)
                span.set_attribute("codon.workload.status", report.status)
                self.tracer.run_totals(span)
                self.tracer.run_cost()
                self.tracer.run_duration(time.perf_counter() - began, report.status)
                return report
        finally:
            for close in self.on_close:
                close()
