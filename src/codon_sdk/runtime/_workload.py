"""CodonWorkload: a graph of node functions (see ``_graph.py``) run by Codon's engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from codon_sdk.errors import (
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.governance import Governed
from codon_sdk.identity import Deployment
from codon_sdk.runtime._approval import ApprovalLike
from codon_sdk.runtime._checks import (
    checked_actor,
    checked_run_id,
)
from codon_sdk.runtime._dispatch import Executor
from codon_sdk.runtime._drive import run_coroutine, stream_async, stream_sync
from codon_sdk.runtime._engine import Run
from codon_sdk.runtime._graph import GraphWorkload, Workload, WorkloadMetadata
from codon_sdk.runtime._launch import RunOptions, new_run, resume_run
from codon_sdk.runtime._options import check_extras, check_options
from codon_sdk.runtime._queue import TokenQueueLike
from codon_sdk.runtime._recorder import DEFAULT_MAX_EVENT_BYTES
from codon_sdk.runtime._records import StreamEvent
from codon_sdk.runtime._recover import Recovered, recover_runs
from codon_sdk.runtime._replay import ReplayReport, fork_run, replay_run
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.sinks import AuditSink
from codon_sdk.stores import LedgerStore

__all__ = ["CodonWorkload", "Workload", "WorkloadMetadata"]

_RESUME_OPTIONS = frozenset(
    {
        "max_steps",
        "max_concurrency",
        "durability",
        "timeout",
        "lease_ttl",
        "audit_sink",
        "executor",
        "token_queue",
        "_observer",
    }
)


class CodonWorkload(Governed, GraphWorkload):
    """A graph of plain Python functions passing immutable tokens, with an audit ledger per run.

    >>> wl = CodonWorkload(name="Echo", version="1.0")
    >>> _ = wl.add_node(lambda message, *, runtime, context: message, "echo", "worker")
    >>> wl.execute("hi", deployment_id="dev").node_results("echo")
    ['hi']
    """

    # ------------------------------------------------------------------ joins

    def add_join(self, sources: Iterable[str] | str, node: str) -> None:
        """Make ``node`` a join: it runs once on all the tokens ``sources`` send it (fan-in).

        A token one of ``sources`` emits to ``node`` waits instead of activating it. When
        no more can come (nothing is queued for, running in or waiting at another join of
        a node from which a source can be reached), the join fires: ``node`` runs once,
        its message the tuple of the waiting tokens' payloads in the order of
        ``sources``, then in arrival order (the order their emitting activations
        completed). Inside a loop it fires once per round. Tokens from other nodes, and
        seeds, activate ``node`` as usual, one activation each. The ledger records the
        join's token (origin ``__join__``) with the tokens and sources it joined; resume
        after a crash fires it exactly once. Each source needs an edge to ``node``
        (``add_edge`` first); a node has one join, declared by one call.

        >>> wl = CodonWorkload(name="FanIn", version="1.0")
        >>> def plan(topic, *, runtime, context):
        ...     for q in ("a", "b", "c"):
        ...         runtime.emit("search", f"{topic}/{q}")
        >>> def search(query, *, runtime, context):
        ...     runtime.emit("write", query.upper())
        >>> def write(found, *, runtime, context):
        ...     return " + ".join(found)
        >>> for fn, name in ((plan, "plan"), (search, "search"), (write, "write")):
        ...     _ = wl.add_node(fn, name, "worker")
        >>> wl.add_edge("plan", "search"); wl.add_edge("search", "write")
        >>> wl.add_join(["search"], "write")
        >>> wl.execute("x", deployment_id="dev").node_results("write")
        ['X/A + X/B + X/C']
        """
        names = [sources] if isinstance(sources, str) else sources
        try:
            chosen = list(names)
        except TypeError:
            raise WorkloadRegistrationError(
                f"add_join: sources must be a list of node names, got {sources!r}"
            ) from None
        known = ", ".join(self._nodes) or "(none)"
        if not isinstance(node, str) or node not in self._nodes:
            raise WorkloadRegistrationError(
                f"add_join: node {node!r} is not registered; known nodes: {known}"
            )
        if not chosen:
            raise WorkloadRegistrationError(
                f"add_join({chosen!r}, {node!r}): name at least one source node whose tokens "
                f"{node!r} waits for"
            )
        for source in chosen:
            if not isinstance(source, str) or source not in self._nodes:
                raise WorkloadRegistrationError(
                    f"add_join: source {source!r} of join {node!r} is not registered; known "
                    f"nodes: {known}"
                )
            if chosen.count(source) > 1:
                raise WorkloadRegistrationError(
                    f"add_join: source {source!r} of join {node!r} is named twice; name each "
                    "source once"
                )
            if (source, node) not in self._edges:
                raise WorkloadRegistrationError(
                    f"add_join: join {node!r} waits for {source!r}, but there is no edge "
                    f"{source!r} -> {node!r}, so no token of {source!r} can reach it; add it "
                    f"first with workload.add_edge({source!r}, {node!r})"
                )
        target = self._nodes[node]
        if target.join:
            raise WorkloadRegistrationError(
                f"add_join: node {node!r} is already a join of {list(target.join)!r}; a node "
                "has one join: name all its sources in one add_join call"
            )
        target.join = tuple(chosen)
        self._logic_id = None
        self._identity = None

    # ------------------------------------------------------------------ approvals

    #: ``"signed"`` once :meth:`require_signed_approvals` was called, else ``"any"``.
    approvals: str = "any"

    def require_signed_approvals(self) -> None:
        """Refuse to resume a run paused by ``runtime.interrupt`` without an approval signed
        by an approver of this workload (``resume(..., approval=...)``; approvers are the
        store's keyring, ``codon approvers add``). Crash recovery needs no approval."""
        self.approvals = "signed"

    # ------------------------------------------------------------------ running

    def execute(
        self, payload: Any, *, deployment_id: str | Deployment, **kwargs: Any
    ) -> ExecutionReport:
        """Run the graph on ``payload`` and return its report (works inside a running loop too)."""
        return run_coroutine(
            lambda: self.execute_async(payload, deployment_id=deployment_id, **kwargs)
        )

    async def execute_async(
        self,
        payload: Any,
        *,
        deployment_id: str | Deployment,
        entry_nodes: Iterable[str] | None = None,
        max_steps: int = 1000,
        run_id: str | None = None,
        max_concurrency: int = 1,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        store: str | LedgerStore | None = None,
        durability: str = "batch",
        timeout: float | None = None,
        lease_ttl: float | None = None,
        audit_sink: AuditSink | str | None = None,
        context: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        token_queue: TokenQueueLike | None = None,
        subject: str | None = None,
        **context_extras: Any,
    ) -> ExecutionReport:
        """Run the graph on ``payload``; see :meth:`execute`.

        Extra keywords, and the ``context`` mapping, become values of the run's context
        (``context["key"]`` in nodes); a keyword that looks like a misspelt option
        (``max_concurency``, ``timout``) is refused with a ``TypeError`` naming the
        option meant: pass such a context value in ``context=`` instead.

        ``store`` (a store or a URL such as ``sqlite:///ledger.db``) makes the run
        durable with the given ``durability`` (``sync``, ``batch``, ``exit``; see
        ``codon_sdk.runtime._writer``); without one the ledger lives in memory only.
        ``timeout`` bounds the whole run, in seconds. ``lease_ttl`` (seconds, default
        60) is how long a durable run's lease lasts without a heartbeat: this process
        renews it every third of that while it runs, and another process may resume
        the run once it has gone unrenewed for that long. ``audit_sink`` (a
        ``codon_sdk.sinks.AuditSink`` or a URL such as ``nats://127.0.0.1:4222``; default
        the workload's ``audit_sink``) also receives every entry once it is committed to
        ``store``, which it then needs.
        ``executor`` (default: the workload's ``executor``, else in process) is where
        activations run, for example ``codon_sdk.executors.RayExecutor()`` (docs:
        guides/ray.md). ``token_queue`` (a ``TokenQueue``, or a factory of one; default the
        workload's ``token_queue``, else ``InMemoryTokenQueue``) holds the run's pending
        tokens; on resume it is rebuilt from the ledger.
        ``subject`` (a subject id, such as a user id; needs ``store``) records the whole run
        against that subject, so ``codon erase --subject`` erases it (guides/retention.md).
        """
        run = self._begin(
            payload,
            deployment_id=deployment_id,
            entry_nodes=entry_nodes,
            max_steps=max_steps,
            run_id=run_id,
            max_concurrency=max_concurrency,
            max_event_bytes=max_event_bytes,
            store=store,
            durability=durability,
            timeout=timeout,
            lease_ttl=lease_ttl,
            audit_sink=audit_sink,
            context=context,
            executor=executor,
            token_queue=token_queue,
            subject=subject,
            **context_extras,
        )
        return await run.execute()

    def _begin(
        self,
        payload: Any,
        *,
        deployment_id: str | Deployment,
        entry_nodes: Iterable[str] | None = None,
        max_steps: int = 1000,
        run_id: str | None = None,
        max_concurrency: int = 1,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        store: str | LedgerStore | None = None,
        durability: str = "batch",
        timeout: float | None = None,
        lease_ttl: float | None = None,
        audit_sink: AuditSink | str | None = None,
        context: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        token_queue: TokenQueueLike | None = None,
        subject: str | None = None,
        **context_extras: Any,
    ) -> Run:
        """The new run, its start recorded (``run_started``, seed tokens), ready to drive."""
        observer = context_extras.pop("_observer", None)
        check_extras(context_extras)
        if context is not None:
            if not isinstance(context, Mapping):
                raise TypeError(f"context must be a mapping of names to values, got {context!r}")
            context_extras = {**dict(context), **context_extras}
        if not self._nodes:
            raise WorkloadRuntimeError(
                f"workload {self._name!r} has no nodes; register some with add_node() first"
            )
        options = RunOptions(
            max_steps=max_steps,
            max_concurrency=max_concurrency,
            max_event_bytes=max_event_bytes,
            durability=durability,
            timeout=timeout,
            observer=observer,
            lease_ttl=lease_ttl,
            audit_sink=audit_sink,
            executor=executor,
            token_queue=token_queue,
        )
        options.validate()
        if store is None and (audit_sink or self.audit_sink) is not None:
            raise ValueError(
                "an audit sink receives entries after they commit to the run's ledger store, "
                "and catches up from it: pass store=... (a URL such as sqlite:///ledger.db)"
            )
        return new_run(
            self,
            payload,
            run_id=checked_run_id(run_id),
            deployment_id=self._deployment_id(deployment_id),
            entry_nodes=self._entry_nodes(entry_nodes),
            context_extras=context_extras,
            options=options,
            store=store,
            fresh_id=run_id is None,
            subject=subject,
        )

    def resume(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        input: Any = None,
        actor: str | None = None,
        allow_logic_change: bool = False,
        approval: ApprovalLike | None = None,
        **options: Any,
    ) -> ExecutionReport:
        """Continue an interrupted, crashed or paused run from its store; see :meth:`aresume`."""
        return run_coroutine(
            lambda: self.aresume(
                run_id,
                store=store,
                input=input,
                actor=actor,
                allow_logic_change=allow_logic_change,
                approval=approval,
                **options,
            )
        )

    async def aresume(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        input: Any = None,
        actor: str | None = None,
        allow_logic_change: bool = False,
        approval: ApprovalLike | None = None,
        **options: Any,
    ) -> ExecutionReport:
        """Rebuild the run's queue and state from its ledger and continue it.

        Activations that completed never run again; one that started but did not
        complete runs again. A run paused by ``runtime.interrupt`` re-enters the
        interrupted node, where ``interrupt`` now returns ``input``; ``actor`` (who
        approved) and ``input`` are recorded in a ``run_resumed`` event. Without
        ``input`` (or with ``None``), a run paused for one takes the interrupt's
        declared ``default`` or is refused (``InputRequiredError``); a crashed run
        needs none. A finished run's
        report is returned without running anything; given an ``input``, it is refused
        (``RunConflictError``: a late approval changes nothing). Code whose logic id
        differs from the recorded run's is refused (``LogicChangedError``) unless
        ``allow_logic_change=True``, which the ledger records. ``options`` may set
        ``max_steps``, ``max_concurrency``, ``durability``, ``timeout``, ``audit_sink``
        and ``lease_ttl`` (this process's lease period, recorded in the runs row; see
        :meth:`execute_async`). A run held by a live owner is refused
        (``RunConflictError``); a process that loses its lease while the run goes on
        stops with ``LeaseLostError`` and writes nothing more. ``approval`` is a signed
        approval of ``input`` (:func:`~codon_sdk.sign_approval`), checked against the
        store's keyring of approvers and recorded in ``run_resumed`` (its actor becomes the
        ``actor``); a workload that :meth:`require_signed_approvals` refuses an interrupted
        run without one (``ApprovalError``).
        """
        run_options = None
        if options:
            check_options(options, _RESUME_OPTIONS, "resume")
            observer = options.pop("_observer", None)
            run_options = RunOptions(observer=observer, **options)
        outcome = resume_run(
            self,
            run_id,
            store=store,
            input=input,
            actor=checked_actor(actor),
            allow_logic_change=allow_logic_change,
            options=run_options,
            approval=approval,
        )
        if isinstance(outcome, ExecutionReport):
            return outcome
        return await outcome.execute()

    def submit(
        self, payload: Any, *, store: str, executor: Executor, deployment_id: str, **options: Any
    ) -> Any:
        """Run the whole run where ``executor`` runs things (a Ray cluster), its ledger in
        ``store`` (a URL every worker can open); return at once with a handle:
        ``.run_id``, ``.status()``, ``.result()`` (docs: guides/ray.md). ``options`` are
        :meth:`execute`'s."""
        if not isinstance(executor, Executor):
            raise TypeError(f"submit needs an executor such as RayExecutor(), got {executor!r}")
        return executor.submit(self, payload, store=store, deployment_id=deployment_id, **options)

    def recover(self, *, store: str | LedgerStore, **options: Any) -> list[Recovered]:
        """Resume every *stale* run of this workload in ``store`` (recorded as running, its
        owner gone: a crash), each once, oldest first; safe to call from several processes
        at once (each run is claimed by one of them, the others skip it). ``options`` are
        resume's. Returns what happened to each run (``status`` ``completed``,
        ``interrupted``, ``failed``..., ``skipped`` when held elsewhere, ``refused`` when
        its logic changed)."""
        from codon_sdk.stores import open_store

        ledger = open_store(store) if isinstance(store, str) else store
        try:
            return recover_runs(self, ledger, **options)
        finally:
            if isinstance(store, str):
                ledger.close()

    def replay(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        live: Iterable[str] = (),
        force: bool = False,
    ) -> ReplayReport:
        """Re-run a recorded run with this code, offline, and say where it decides differently.

        Recorded effects (LLM calls, ``runtime.now()``...) and resume inputs are served
        from the ledger; an effect the ledger lacks is a divergence, never a live call,
        and one asked for with other arguments (another prompt) is a ``request
        changed`` divergence, still served from the ledger. The nodes named in
        ``live`` make their effects and LLM calls for real instead, to try a change
        against the rest of a recorded run; an unknown name raises ``ReplayError``.
        Nothing is written to ``store``. Never raises for a diverging run. A recorded
        run that does not verify is refused (``UntrustedRunError``) unless ``force=True``,
        which replays what can be read and says why it is untrusted (``untrusted``).
        """
        return run_coroutine(lambda: replay_run(self, run_id, store=store, live=live, force=force))

    async def areplay(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        live: Iterable[str] = (),
        force: bool = False,
    ) -> ReplayReport:
        """Async twin of :meth:`replay`."""
        return await replay_run(self, run_id, store=store, live=live, force=force)

    def fork(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        at_seq: int,
        state_patch: Mapping[str, Any] | None = None,
        new_run_id: str | None = None,
        **options: Any,
    ) -> ExecutionReport:
        """Start a new run from run ``run_id``'s history up to ``at_seq``, then run live.

        The new run (its own id, in the same store) names the parent run and seq in
        its ``run_started``; ``state_patch`` is merged into the state as of ``at_seq``.
        """
        check_options(options, _RESUME_OPTIONS, "fork")
        run_options = RunOptions(**options)
        run_options.validate()
        return run_coroutine(
            lambda: fork_run(
                self,
                run_id,
                store=store,
                at_seq=at_seq,
                state_patch=state_patch,
                new_run_id=checked_run_id(new_run_id),
                options=run_options,
            )
        )

    def execute_streaming(
        self, payload: Any, *, deployment_id: str | Deployment, **kwargs: Any
    ) -> Iterator[StreamEvent]:
        """Yield events as they happen; the last is ``workflow_finished`` with the report.

        Raises ``RuntimeError`` inside a running event loop: use
        :meth:`execute_streaming_async` there.
        """
        return stream_sync(
            lambda observer: self.execute_async(
                payload, deployment_id=deployment_id, _observer=observer, **kwargs
            )
        )

    def execute_streaming_async(
        self, payload: Any, *, deployment_id: str | Deployment, **kwargs: Any
    ) -> AsyncIterator[StreamEvent]:
        """Async iterator of events as they happen; the last is ``workflow_finished``."""
        return stream_async(
            lambda observer: self.execute_async(
                payload, deployment_id=deployment_id, _observer=observer, **kwargs
            )
        )

    # ------------------------------------------------------------------ run preparation

    def _entry_nodes(self, entry_nodes: Iterable[str] | None) -> list[str]:
        if entry_nodes is None:
            return self.default_entry_nodes()
        if isinstance(entry_nodes, str):
            entry_nodes = [entry_nodes]
        chosen = list(entry_nodes)
        if not chosen:
            raise WorkloadRuntimeError("entry_nodes is empty; name at least one node or pass None")
        for name in chosen:
            if name not in self._nodes:
                raise WorkloadRuntimeError(
                    f"unknown entry node {name!r}; registered nodes: {', '.join(self._nodes)}"
                )
        return chosen
