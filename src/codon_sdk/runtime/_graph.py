"""The graph every workload is: nodes, edges and their identity (logic id, NodeSpecs,
deployments), and what a run records about them.

:class:`GraphWorkload` is shared by the workloads that run a graph: ``CodonWorkload``
(Codon's engine schedules the nodes) and the LangGraph adapter's workload (LangGraph's
scheduler does). Each adds its own ``execute``, ``resume`` and ``replay``.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from codon_sdk._version import __version__
from codon_sdk.errors import (
    CanonicalEncodingError,
    NodeSpecValidationError,
    WorkloadRegistrationError,
)
from codon_sdk.identity import (
    AgentClass,
    Deployment,
    IdentityDiff,
    IdentityExplanation,
    LogicRequest,
    NodeEdge,
    NodeSpec,
    Topology,
    agent_class_id,
    canonical_bytes,
    diff_parts,
    dumps,
    explain_node,
    generate_logic_id,
    prepare,
    recorded_identity,
)
from codon_sdk.redaction import Redactor
from codon_sdk.runtime._blobs import check_threshold
from codon_sdk.runtime._cache import CachePolicy, checked_cache
from codon_sdk.runtime._checks import (
    check_node_signature,
    checked_timeout,
    compatible_ids,
    retry_policy,
)
from codon_sdk.runtime._dispatch import Executor, checked_resources
from codon_sdk.runtime._engine import NodeDef
from codon_sdk.runtime._handle import is_async_callable
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.runtime._queue import TokenQueueLike
from codon_sdk.runtime._records import ENTRY_ORIGIN, JOIN_ORIGIN
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._request_cache import RequestCache, checked_request_cache
from codon_sdk.sinks import AuditSink

__all__ = ["GraphWorkload", "Workload", "WorkloadMetadata"]

_RESERVED_NODE_NAMES = frozenset({ENTRY_ORIGIN, JOIN_ORIGIN})


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


class GraphWorkload(Workload):
    """A named, versioned graph of nodes with a stable identity; subclasses run it."""

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
        #: Where every run's committed entries also go (``codon_sdk.sinks``): a sink or URL.
        self.audit_sink: AuditSink | str | None = None
        #: Where activations run unless ``execute(executor=...)`` says (None: in process).
        self.executor: Executor | None = None
        #: The runs' token queue unless ``execute(token_queue=...)`` says: a zero-argument
        #: factory of a ``TokenQueue`` (None: in memory, ``InMemoryTokenQueue``).
        self.token_queue: TokenQueueLike | None = None
        self._nodes: dict[str, NodeDef] = {}
        self._edges: set[tuple[str, str]] = set()
        self._logic_id: str | None = None
        self._identity: IdentityExplanation | None = None
        self._compatible: dict[str, frozenset[str]] = {}

    #: Whether nodes are called as ``fn(message, *, runtime, context)`` (checked at
    #: ``add_node``); an adapter whose framework calls the nodes itself sets it False.
    node_calling_convention: ClassVar[bool] = True
    #: Whether the engine opens the run and node spans (when ``enable_tracing``); an
    #: adapter whose framework drives the run opens its own and sets it False.
    engine_spans: ClassVar[bool] = True
    #: Values over this many bytes go to the ledger's blob store (:meth:`store_blobs_over`).
    blob_threshold: int | None = None

    def store_blobs_over(self, nbytes: int | None) -> None:
        """Record payloads, results, effect values and state values whose canonical JSON is
        over ``nbytes`` (at least 256) in the blob store beside the ledger store, the entry
        holding their SHA-256 and size (docs: guides/blobs.md); None keeps them inline."""
        self.blob_threshold = check_threshold(nbytes)

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
        cache: CachePolicy | None = None,
        request_cache: RequestCache | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> NodeSpec:
        """Register ``function(message, *, runtime, context)`` as node ``name``; return its spec.

        ``retry`` (a :class:`RetryPolicy`, or an int: that many attempts with the
        default backoff) and ``timeout`` (seconds per attempt) shape how the node
        runs; they are execution settings, not part of the node's identity.
        ``compatible_with`` names earlier NodeSpec ids of this node (or their specs)
        whose behaviour a reviewed change kept: paused and crashed runs recorded with
        one of them resume on this code without ``allow_logic_change`` (the ledger
        records the change all the same). ``cache`` (a :class:`CachePolicy`) reuses the
        recorded outcome of an earlier activation with the same node logic id and input,
        within and across runs (docs: guides/caching.md); it is not part of the identity.
        ``request_cache`` (a :class:`RequestCache`) serves the node's effects (LLM calls)
        from an earlier recording of the same request instead of sending it again.
        ``resources`` (``{"num_cpus": 1, "num_gpus": 0.5}``) is what a remote executor
        reserves for each activation (docs: guides/ray.md); not part of the identity.
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
            cache=checked_cache(name, cache),
            request_cache=checked_request_cache(name, request_cache),
            resources=checked_resources(name, resources),
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
        """Hex SHA-256 of the graph's logic: agent class, node specs and edges (and the
        entry nodes, for a workload whose :meth:`_logic_entry_nodes` names them); a graph
        with joins hashes that id with its joins (:meth:`joins`)."""
        if self._logic_id is None:
            specs = {name: n.spec for name, n in self._nodes.items()}
            edges = [NodeEdge(specs[s].id, specs[t].id) for s, t in self._edges]
            entries = self._logic_entry_nodes()
            logic_id = generate_logic_id(
                LogicRequest(
                    agent_class=AgentClass(self._name, self._version, self._description),
                    nodes=list(specs.values()),
                    topology=Topology(edges),
                    entry_nodes=None if entries is None else [specs[e].id for e in entries],
                )
            )
            joins = self.joins
            if joins:  # the order of a join's sources is the order its node receives
                body = {"v": 1, "logic_id": logic_id, "joins": joins}
                logic_id = hashlib.sha256(canonical_bytes(body)).hexdigest()
            self._logic_id = logic_id
        return self._logic_id

    @property
    def joins(self) -> dict[str, list[str]]:
        """Each join node (``add_join``) and its sources, in the order it receives them."""
        return {name: list(n.join) for name, n in self._nodes.items() if n.join}

    def _logic_entry_nodes(self) -> list[str] | None:
        """The entry nodes the logic id covers; None (Codon's graphs): the id leaves them out,
        a run names its own with ``entry_nodes=``."""
        return None

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
                joins=tuple((node, tuple(sources)) for node, sources in self.joins.items()),
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
            old_joins=recorded.get("joins"),
            new_joins=self.joins,
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
            **({"joins": joins} if (joins := self.joins) else {}),
            "entry_nodes": entries,
            "context": extras,
            "limits": {"max_steps": max_steps, "max_concurrency": max_concurrency},
            "sdk": {"name": "codon-sdk", "version": __version__},
        }
