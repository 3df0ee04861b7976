"""CodonWorkload: register node functions, wire edges, run the graph."""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from codon_sdk._version import __version__
from codon_sdk.errors import (
    CanonicalEncodingError,
    NodeSpecValidationError,
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import (
    IdentityDiff,
    IdentityExplanation,
    diff_parts,
    explain_node,
    recorded_identity,
)
from codon_sdk.identity._canonical import dumps, prepare
from codon_sdk.identity._logic import (
    AgentClass,
    Deployment,
    LogicRequest,
    NodeEdge,
    Topology,
    agent_class_id,
    generate_logic_id,
)
from codon_sdk.identity._nodespec import NodeSpec
from codon_sdk.redaction import Redactor
from codon_sdk.runtime._checks import (
    check_node_signature,
    checked_actor,
    checked_run_id,
    checked_timeout,
    compatible_ids,
    retry_policy,
)
from codon_sdk.runtime._drive import run_coroutine, stream_async, stream_sync
from codon_sdk.runtime._engine import NodeDef
from codon_sdk.runtime._handle import is_async_callable
from codon_sdk.runtime._launch import RunOptions, new_run, resume_run
from codon_sdk.runtime._options import check_extras, check_options
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.runtime._recorder import DEFAULT_MAX_EVENT_BYTES
from codon_sdk.runtime._records import ENTRY_ORIGIN, StreamEvent
from codon_sdk.runtime._recover import Recovered, recover_runs
from codon_sdk.runtime._replay import ReplayReport, fork_run, replay_run
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.stores._base import LedgerStore

__all__ = ["CodonWorkload", "Workload", "WorkloadMetadata"]

_RESERVED_NODE_NAMES = frozenset({ENTRY_ORIGIN})
_RESUME_OPTIONS = frozenset(
    {"max_steps", "max_concurrency", "durability", "timeout", "lease_ttl", "_observer"}
)


@dataclass(frozen=True, slots=True)
class WorkloadMetadata:
    """A workload's descriptive metadata."""

    name: str
    version: str
    description: str | None
    tags: tuple[str, ...]

    def __getitem__(self, key: str) -> Any:
        if key not in ("name", "version", "description", "tags"):
            raise KeyError(key)
        value = getattr(self, key)
        return list(value) if key == "tags" else value

    def to_dict(self) -> dict[str, Any]:
        return {k: self[k] for k in ("name", "version", "description", "tags")}


class Workload(abc.ABC):
    """The interface every Codon workload offers: a graph of nodes you can run."""

    @abc.abstractmethod
    def add_node(
        self,
        function: Callable[..., Any],
        name: str,
        role: str,
        *,
        org_namespace: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        retry: RetryPolicy | int | None = None,
        timeout: float | None = None,
    ) -> NodeSpec:
        """Register ``function`` as node ``name``."""

    @abc.abstractmethod
    def add_edge(self, source_name: str, destination_name: str) -> None:
        """Allow ``source_name`` to emit tokens to ``destination_name``."""

    @abc.abstractmethod
    def execute(
        self, payload: Any, *, deployment_id: str | Deployment, **kwargs: Any
    ) -> ExecutionReport:
        """Run the graph to completion."""

    @abc.abstractmethod
    async def execute_async(
        self, payload: Any, *, deployment_id: str | Deployment, **kwargs: Any
    ) -> ExecutionReport:
        """Run the graph to completion, awaitably."""


class CodonWorkload(Workload):
    """A graph of plain Python functions passing immutable tokens, with an audit ledger per run.

    >>> wl = CodonWorkload(name="Echo", version="1.0")
    >>> _ = wl.add_node(lambda message, *, runtime, context: message, "echo", "worker")
    >>> wl.execute("hi", deployment_id="dev").node_results("echo")
    ['hi']
    """

    def __init__(
        self,
        *,
        name: str,
        version: str,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        enable_tracing: bool = False,
        org_namespace: str | None = None,
        organization_id: str | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        for label, value in (("name", name), ("version", version)):
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise WorkloadRegistrationError(
                    f"workload {label} must be a non-empty string of printable characters, "
                    f"got {value!r}"
                )
        self._name = name
        self._version = version
        self._description = description
        self._tags = tuple(tags or ())
        self.enable_tracing = enable_tracing
        self._org_namespace = org_namespace
        self._organization_id = organization_id
        #: What is masked before anything is recorded or traced (None: the default policy,
        #: which masks API keys, bearer tokens and private keys; Redactor.disabled() for none).
        self.redactor = redactor
        self._nodes: dict[str, NodeDef] = {}
        self._edges: set[tuple[str, str]] = set()
        self._logic_id: str | None = None
        self._identity: IdentityExplanation | None = None
        self._compatible: dict[str, frozenset[str]] = {}

    #: Whether nodes are called as ``fn(message, *, runtime, context)`` (checked at
    #: ``add_node``); an adapter whose framework calls the nodes itself sets it False.
    node_calling_convention: ClassVar[bool] = True

    # ------------------------------------------------------------------ registration

    def add_node(
        self,
        function: Callable[..., Any],
        name: str,
        role: str,
        *,
        org_namespace: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        retry: RetryPolicy | int | None = None,
        timeout: float | None = None,
        compatible_with: Iterable[str | NodeSpec] = (),
    ) -> NodeSpec:
        """Register ``function(message, *, runtime, context)`` as node ``name``; return its spec.

        ``retry`` (a :class:`RetryPolicy`, or an int: that many attempts with the
        default backoff) and ``timeout`` (seconds per attempt) shape how the node
        runs; they are execution settings, not part of the node's identity.
        ``compatible_with`` names earlier NodeSpec ids of this node (or their specs)
        whose behaviour a reviewed change kept: paused and crashed runs recorded with
        one of them resume on this code without ``allow_logic_change`` (the ledger
        records the change all the same).
        """
        if not isinstance(name, str) or not name.strip():
            raise WorkloadRegistrationError(f"node name must be a non-empty string, got {name!r}")
        if len(name) > 200 or not name.isprintable():
            raise WorkloadRegistrationError(
                f"node name {name!r} must be at most 200 printable characters (no control "
                "characters, line breaks or escape sequences)"
            )
        if name in _RESERVED_NODE_NAMES:
            raise WorkloadRegistrationError(f"node name {name!r} is reserved; choose another name")
        if name in self._nodes:
            raise WorkloadRegistrationError(
                f"a node named {name!r} is already registered in workload {self._name!r}; "
                "node names must be unique"
            )
        if self.node_calling_convention:
            check_node_signature(name, function)
        try:
            spec = NodeSpec(
                name,
                role,
                function,
                org_namespace=org_namespace or self._org_namespace,
                model_name=model_name,
                model_version=model_version,
            )
        except NodeSpecValidationError as exc:
            raise WorkloadRegistrationError(str(exc)) from exc
        self._nodes[name] = NodeDef(
            name=name,
            fn=function,
            spec=spec,
            is_async=is_async_callable(function),
            retry=retry_policy(name, retry),
            timeout=checked_timeout(name, timeout),
        )
        self._compatible[name] = compatible_ids(name, compatible_with)
        self._logic_id = None
        self._identity = None
        return spec

    def add_edge(self, source_name: str, destination_name: str) -> None:
        """Add the directed edge ``source_name -> destination_name`` (a second add is a no-op)."""
        for label, node in (("source", source_name), ("destination", destination_name)):
            if not isinstance(node, str) or node not in self._nodes:
                raise WorkloadRegistrationError(
                    f"edge {source_name!r} -> {destination_name!r}: {label} node {node!r} is not "
                    f"registered; known nodes: {', '.join(self._nodes) or '(none)'}"
                )
        if (source_name, destination_name) not in self._edges:
            self._edges.add((source_name, destination_name))
            self._nodes[source_name].successors.add(destination_name)
            self._logic_id = None
            self._identity = None
        self._identity = None

    # ------------------------------------------------------------------ identity

    @property
    def metadata(self) -> WorkloadMetadata:
        """Name, version, description and tags (attributes; ``metadata["name"]`` works too)."""
        return WorkloadMetadata(
            name=self._name, version=self._version, description=self._description, tags=self._tags
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._version

    @property
    def agent_class_id(self) -> str:
        return agent_class_id(self._name, self._version)

    @property
    def nodes(self) -> list[NodeSpec]:
        return [n.spec for n in self._nodes.values()]

    @property
    def topology(self) -> list[tuple[str, str]]:
        return sorted(self._edges)

    @property
    def org_namespace(self) -> str:
        return self._org_namespace or os.environ.get("ORG_NAMESPACE") or "unknown"

    @property
    def organization_id(self) -> str:
        """``organization_id=``, else ``CODON_ORGANIZATION_ID``, else the org namespace."""
        return (
            self._organization_id or os.environ.get("CODON_ORGANIZATION_ID") or self.org_namespace
        )

    @property
    def logic_id(self) -> str:
        """Hex SHA-256 of the graph's logic: agent class, node specs and edges."""
        if self._logic_id is None:
            specs = {name: n.spec for name, n in self._nodes.items()}
            edges = [NodeEdge(specs[s].id, specs[t].id) for s, t in self._edges]
            self._logic_id = generate_logic_id(
                LogicRequest(
                    agent_class=AgentClass(self._name, self._version, self._description),
                    nodes=list(specs.values()),
                    topology=Topology(edges),
                )
            )
        return self._logic_id

    def node_spec(self, name: str) -> NodeSpec:
        return self._nodes[name].spec

    def accepts_node_id(self, name: str, node_id: object) -> bool:
        """True when a run recorded with NodeSpec id ``node_id`` for node ``name`` may run
        on this code: the same id, or one the node declared in ``compatible_with``."""
        node = self._nodes.get(name)
        return (
            node is not None
            and isinstance(node_id, str)
            and (node_id == node.spec.id or node_id in self._compatible.get(name, ()))
        )

    def explain_identity(self) -> IdentityExplanation:
        """What went into the logic id: per node its id and every part of it (code,
        signature, schemas, model, each constant, helper and local type it reads), each
        with a short digest; ``str()`` prints it, ``.diff(other)`` compares two versions."""
        if self._identity is None:
            self._identity = IdentityExplanation(
                workload=self.agent_class_id,
                logic_id=self.logic_id,
                nodes=tuple(explain_node(name, n.spec, n.fn) for name, n in self._nodes.items()),
                edges=tuple(sorted(self._edges)),
            )
        return self._identity

    def identity_diff(self, recorded: Mapping[str, Any]) -> IdentityDiff:
        """What changed from a run's recorded logic (its ``run_started`` payload) to this
        workload's, node by node with reasons; runs recorded before parts were kept name
        changed nodes with an unknown reason."""
        mine = self.explain_identity()
        return diff_parts(
            *recorded_identity(recorded),
            mine.logic_id,
            {n.node: (n.id, n.digests()) for n in mine.nodes},
            mine.edges,
        )

    def default_entry_nodes(self) -> list[str]:
        """Nodes with no incoming edge, else every node (registration order)."""
        targets = {t for _, t in self._edges}
        entries = [n for n in self._nodes if n not in targets]
        return entries or list(self._nodes)

    def deploy(self, name: str, config: Mapping[str, Any] | None = None) -> Deployment:
        """Bind this workload's logic to a named configuration; pass it as ``deployment_id``."""
        try:
            return Deployment.create(self.logic_id, name, config)
        except CanonicalEncodingError as exc:
            raise ValueError(f"deployment {name!r} has a configuration value that {exc}") from exc

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
        context: Mapping[str, Any] | None = None,
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
        the run once it has gone unrenewed for that long.
        """
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
        )
        options.validate()
        run = new_run(
            self,
            payload,
            run_id=checked_run_id(run_id),
            deployment_id=self._deployment_id(deployment_id),
            entry_nodes=self._entry_nodes(entry_nodes),
            context_extras=context_extras,
            options=options,
            store=store,
        )
        return await run.execute()

    def resume(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        input: Any = None,
        actor: str | None = None,
        allow_logic_change: bool = False,
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
        ``max_steps``, ``max_concurrency``, ``durability``, ``timeout`` and
        ``lease_ttl`` (this process's lease period, recorded in the runs row; see
        :meth:`execute_async`). A run held by a live owner is refused
        (``RunConflictError``); a process that loses its lease while the run goes on
        stops with ``LeaseLostError`` and writes nothing more.
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
        )
        if isinstance(outcome, ExecutionReport):
            return outcome
        return await outcome.execute()

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

    def _deployment_id(self, deployment_id: str | Deployment) -> str:
        if isinstance(deployment_id, Deployment):
            if deployment_id.logic_id != self.logic_id:
                raise ValueError(
                    f"deployment {deployment_id.name!r} was built for logic id "
                    f"{deployment_id.logic_id[:12]}…, but this workload's logic id is now "
                    f"{self.logic_id[:12]}…; build it again with workload.deploy(...)"
                )
            return deployment_id.id
        if not isinstance(deployment_id, str) or not deployment_id.strip():
            raise ValueError(
                f"deployment_id must be a non-empty string or a Deployment, got {deployment_id!r}"
            )
        if len(deployment_id) > 200 or not deployment_id.isprintable():
            raise ValueError(
                "deployment_id must be at most 200 printable characters (no control "
                f"characters or escapes), got {deployment_id!r}"
            )
        return deployment_id

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

    def _context(self, run_id: str, deployment_id: str, extras: dict[str, Any]) -> dict[str, Any]:
        logic_id = self.logic_id
        context: dict[str, Any] = {
            "deployment_id": deployment_id,
            "logic_id": logic_id,
            "workload_logic_id": logic_id,
            "workload_id": self.agent_class_id,
            "run_id": run_id,
            "workload_run_id": run_id,
            "workload_name": self._name,
            "workload_version": self._version,
            "organization_id": self.organization_id,
            "org_namespace": self.org_namespace,
        }
        context.update(extras)
        return context

    def _run_started(
        self,
        context: dict[str, Any],
        entries: list[str],
        extras: Any,
        max_steps: int,
        max_concurrency: int,
    ) -> dict[str, Any]:
        return {
            "workload": {
                "name": self._name,
                "version": self._version,
                "description": self._description,
                "tags": list(self._tags),
                "agent_class_id": self.agent_class_id,
                "logic_id": context["logic_id"],
                "org_namespace": context["org_namespace"],
                "organization_id": context["organization_id"],
            },
            "deployment_id": context["deployment_id"],
            "nodes": {
                n.node: {
                    "id": n.id,
                    "role": self._nodes[n.node].spec.role,
                    "code_hash": n.code_hash,
                    # digests the SDK computed, under labels such as "constant api_token":
                    # recorded as they are, or a credential-named label would mask its
                    # digest and identity diffs could no longer compare it
                    "parts": orjson.Fragment(dumps(prepare(n.digests()))),
                }
                for n in self.explain_identity().nodes
            },
            "edges": [list(e) for e in sorted(self._edges)],
            "entry_nodes": entries,
            "context": extras,
            "limits": {"max_steps": max_steps, "max_concurrency": max_concurrency},
            "sdk": {"name": "codon-sdk", "version": __version__},
        }
