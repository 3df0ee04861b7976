"""Where an activation runs: the :class:`Executor` seam and the in-process call path.

The engine (``_engine.py``) decides *when* an activation runs and records what it did;
an :class:`Executor` decides *where* its node function is called. The default (no
executor, or :class:`InProcessExecutor`) calls it in this process: async nodes on the
event loop, sync nodes inline, in the run's thread pool (``max_concurrency`` > 1) or in
a daemon thread when a timeout may have to abandon them. Another executor (Ray:
``codon_sdk.executors.RayExecutor``) ships the activation elsewhere as an
:class:`~codon_sdk.runtime._remote.ActivationTicket` and hands back what it did; the
run's recorder stays the single writer of the ledger, so the chain, the order and
exactly-once completion are the engine's, whatever the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import math
import threading
import time
import types
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any

from codon_sdk.errors import NodeTimeoutError, RunTimeoutError, WorkloadRegistrationError
from codon_sdk.runtime._handle import CURRENT_RUNTIME, NodeRuntime
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.runtime._remote import ActivationOutcome, ActivationTicket, apply_outcome, ticket

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run

__all__ = [
    "ActivationCall",
    "Executor",
    "InProcessExecutor",
    "adopt_executor",
    "call_node",
    "checked_resources",
    "start_executor",
]

_CoroutineType = types.CoroutineType
#: what ``add_node(resources=...)`` may ask for; any other name is a custom resource
RESOURCE_KEYS = frozenset({"num_cpus", "num_gpus", "memory"})


def checked_resources(node: str, resources: Mapping[str, Any] | None) -> dict[str, float] | None:
    """``add_node(resources=...)`` checked: names to non-negative finite amounts."""
    if resources is None:
        return None
    if not isinstance(resources, Mapping):
        raise WorkloadRegistrationError(
            f"node {node!r}: resources must be a mapping such as {{'num_cpus': 1, 'num_gpus': "
            f"0.5}}, got {resources!r}"
        )
    checked: dict[str, float] = {}
    for key, amount in resources.items():
        if not isinstance(key, str) or not key:
            raise WorkloadRegistrationError(
                f"node {node!r}: resource names must be non-empty strings, got {key!r}"
            )
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
            or amount < 0
        ):
            raise WorkloadRegistrationError(
                f"node {node!r}: resource {key!r} must be a non-negative number, got {amount!r}"
            )
        checked[key] = amount
    return checked


class ActivationCall:
    """One attempt of one node on one token, as an executor sees it.

    ``node``, ``payload``, ``attempt``, ``token_id``, ``is_async`` and ``resources``
    (``add_node(resources=...)``) say what runs. An executor either awaits
    :meth:`run_here` (the node runs in this process, exactly as without an
    executor) or ships :meth:`ticket` (a picklable description; ``ticket.run()``
    calls the node wherever it is unpickled and returns an
    :class:`~codon_sdk.runtime._remote.ActivationOutcome`) and then returns
    ``activation.apply(outcome)``, which records what the node did through this
    run's recorder and returns its result or raises its exception.
    """

    __slots__ = ("_node", "_run", "payload", "runtime")

    def __init__(self, run: Run, node: NodeDef, payload: Any, runtime: NodeRuntime) -> None:
        self._run = run
        self._node = node
        self.payload = payload
        self.runtime = runtime

    @property
    def node(self) -> str:
        return self._node.name

    @property
    def token_id(self) -> str:
        return self.runtime.token_id

    @property
    def attempt(self) -> int:
        return self.runtime.attempt

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def is_async(self) -> bool:
        return self._node.is_async

    @property
    def resources(self) -> dict[str, float]:
        return dict(self._node.resources or {})

    async def run_here(self) -> Any:
        """Call the node in this process (the in-process executor's whole job)."""
        return await call_here(self._run, self._node, self.payload, self.runtime)

    def ticket(self) -> ActivationTicket:
        """What another process needs to run this activation (picklable)."""
        return ticket(self._run, self._node, self.payload, self.runtime)

    def apply(self, outcome: ActivationOutcome) -> Any:
        """Record what the shipped activation did; return its result or raise its error."""
        return apply_outcome(self.runtime, outcome)


class Executor(ABC):
    """Where a run's activations run (``execute(..., executor=...)``, ``workload.executor``).

    Implement :meth:`run`; :meth:`start` (connect, once per run, before anything is
    recorded: raise :class:`~codon_sdk.errors.ExecutorUnavailableError` naming what
    could not be reached) and :meth:`close` are optional. :meth:`takes` says which
    activations go through :meth:`run` at all (the others run in process); replays
    always run in process, since they call nothing outside. The conformance suite is
    :class:`codon_sdk.testing.ExecutorConformance`.
    """

    #: Whether activations run in this process (then the engine's fast path is kept).
    in_process: bool = False
    #: The retry policy of nodes that have none, for lost workers (``WorkerLostError``):
    #: each retry is a ``node_retrying`` event, like any other. None: no default.
    retry_lost: RetryPolicy | None = None

    def start(self) -> None:  # noqa: B027 - optional
        """Get ready for a run (connect to a cluster); called before the run records anything."""

    def takes(self, activation: ActivationCall) -> bool:
        """Whether :meth:`run` runs ``activation`` (False: it runs in process)."""
        return True

    @abstractmethod
    async def run(self, activation: ActivationCall) -> Any:
        """Run ``activation`` and return the node's result (or raise what it raised)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release what :meth:`start` took; called when the run ends."""

    def submit(self, workload: Any, payload: Any, *, store: str, **options: Any) -> Any:
        """Run a whole run where this executor runs things; a handle (``.run_id``,
        ``.status()``, ``.result()``). Only executors with somewhere else to run have it."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot run whole runs elsewhere: call "
            "workload.execute(...) instead, or submit with a RayExecutor"
        )


def start_executor(default: Executor | None, chosen: Executor | None) -> Executor | None:
    """The run's executor (``chosen``, else the workload's ``default``), started."""
    executor = chosen if chosen is not None else default
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            f"executor must be a codon_sdk.executors.Executor (InProcessExecutor, "
            f"RayExecutor...), got {executor!r}"
        )
    if executor is not None:
        executor.start()
    return executor


def adopt_executor(run: Run, executor: Executor | None) -> None:
    """Give ``run`` its executor: lost workers retried, closed with the run."""
    if executor is None:
        return
    run.executor = executor
    run.on_close.append(executor.close)
    retry_lost = executor.retry_lost
    if retry_lost is not None:  # a node without a retry policy still survives a lost worker
        for node in run.nodes.values():
            if node.retry is None:
                node.retry = retry_lost


class InProcessExecutor(Executor):
    """The default: every activation runs in this process (the engine's own call path)."""

    in_process = True

    async def run(self, activation: ActivationCall) -> Any:
        return await activation.run_here()

    def __repr__(self) -> str:
        return "InProcessExecutor()"


async def call_node(run: Run, node: NodeDef, payload: Any, handle: NodeRuntime) -> Any:
    """Run one attempt of ``node`` where the run's executor says; return its result."""
    executor = run.executor
    if (
        executor is None
        or executor.in_process
        or run.replaying
        or node.request_cache is not None
        or run.governor is not None  # policies see each call before it is made: in the driver
    ):
        return await call_here(run, node, payload, handle)
    activation = ActivationCall(run, node, payload, handle)
    if not executor.takes(activation):
        return await call_here(run, node, payload, handle)
    limit = _limit(run, node)
    if limit is None:
        return await executor.run(activation)
    try:
        return await asyncio.wait_for(executor.run(activation), limit)
    except asyncio.TimeoutError:
        raise _timed_out(run, node, handle) from None


async def call_here(run: Run, node: NodeDef, payload: Any, handle: NodeRuntime) -> Any:
    """Call ``node`` in this process, honouring its timeout and the run's deadline."""
    reset = CURRENT_RUNTIME.set(handle)
    try:
        if node.is_async:
            call = node.fn(payload, runtime=handle, context=run.context)
            limit = _limit(run, node)
            if limit is None:
                return await call
            try:
                return await asyncio.wait_for(call, limit)
            except asyncio.TimeoutError:
                raise _timed_out(run, node, handle) from None
        if node.timeout is not None or run.deadline is not None:
            result = await _call_in_daemon(run, node, payload, handle)
        elif run._pool is not None:
            ctx = contextvars.copy_context()
            call_sync = functools.partial(
                ctx.run, node.fn, payload, runtime=handle, context=run.context
            )
            result = await asyncio.get_running_loop().run_in_executor(run._pool, call_sync)
        else:
            result = node.fn(payload, runtime=handle, context=run.context)
        if type(result) is _CoroutineType:
            result = await result
        return result
    finally:
        CURRENT_RUNTIME.reset(reset)


def _limit(run: Run, node: NodeDef) -> float | None:
    limits = [node.timeout] if node.timeout is not None else []
    if run.deadline is not None:
        limits.append(max(run.deadline - time.monotonic(), 0.0))
    return min(limits) if limits else None


def _timed_out(run: Run, node: NodeDef, handle: NodeRuntime) -> Exception:
    handle.close()
    if node.timeout is not None and (run.deadline is None or time.monotonic() <= run.deadline):
        return NodeTimeoutError(
            f"node {node.name!r} did not finish within its timeout of {node.timeout}s "
            f"(token {handle.token_id}); raise the node's timeout= or make it faster"
        )
    return RunTimeoutError(
        f"run {run.run_id} exceeded its timeout of {run.timeout}s while node "
        f"{node.name!r} was running; raise timeout= or make the nodes faster"
    )


async def _call_in_daemon(run: Run, node: NodeDef, payload: Any, handle: NodeRuntime) -> Any:
    """Run a sync node in a daemon thread so a timeout can abandon it if it hangs."""
    future: Future[Any] = Future()
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            result = ctx.run(node.fn, payload, runtime=handle, context=run.context)
        except BaseException as exc:
            with contextlib.suppress(InvalidStateError):  # the engine gave up (timeout)
                future.set_exception(exc)
            return
        with contextlib.suppress(InvalidStateError):
            future.set_result(result)

    threading.Thread(target=target, name=f"codon-node-{node.name}", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), _limit(run, node))
    except asyncio.TimeoutError:
        raise _timed_out(run, node, handle) from None
