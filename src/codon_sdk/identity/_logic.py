"""Logic ids (what a workflow is) and deployment ids (where and how it runs)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.identity._nodespec import NodeSpec

__all__ = [
    "LOGIC_ID_VERSION",
    "AgentClass",
    "Deployment",
    "LogicRequest",
    "NodeEdge",
    "Topology",
    "agent_class_id",
    "deployment_id_for",
    "generate_logic_id",
]

LOGIC_ID_VERSION = 1


@dataclass(frozen=True, slots=True)
class AgentClass:
    """The workflow's class: name, version and an optional description."""

    name: str
    version: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NodeEdge:
    """A directed edge between two nodes, named by their NodeSpec ids."""

    source_nodespec_id: str
    target_nodespec_id: str


@dataclass(frozen=True, slots=True, init=False)
class Topology:
    """The set of edges of a workflow graph."""

    edges: tuple[NodeEdge, ...]

    def __init__(self, edges: Iterable[NodeEdge] = ()) -> None:
        object.__setattr__(self, "edges", tuple(edges))


@dataclass(frozen=True, slots=True)
class LogicRequest:
    """Everything a logic id is computed from.

    ``entry_nodes`` (NodeSpec ids) is optional: ``None`` means "the graph's
    natural entry nodes", which the nodes and edges already determine.
    """

    agent_class: AgentClass
    nodes: Sequence[NodeSpec]
    topology: Topology = field(default_factory=Topology)
    entry_nodes: Sequence[str] | None = None


def generate_logic_id(request: LogicRequest) -> str:
    """Hex SHA-256 of the workflow's logic; independent of node and edge order."""
    ac = request.agent_class
    body: dict[str, Any] = {
        "v": LOGIC_ID_VERSION,
        "agent_class": {"name": ac.name, "version": ac.version, "description": ac.description},
        "nodes": sorted({n.id for n in request.nodes}),
        "edges": sorted(
            {(e.source_nodespec_id, e.target_nodespec_id) for e in request.topology.edges}
        ),
        "entry": None if request.entry_nodes is None else sorted(set(request.entry_nodes)),
    }
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def agent_class_id(name: str, version: str) -> str:
    """``"<name lower-cased, spaces to dashes>:<version>"``."""
    return f"{name.lower().replace(' ', '-')}:{version}"


def deployment_id_for(logic_id: str, name: str, config: Mapping[str, Any]) -> str:
    """Hex SHA-256 over the logic id, the deployment name and its configuration."""
    body = {"v": 1, "logic_id": logic_id, "name": name, "config": dict(config)}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """A workload's logic bound to a named configuration (models, endpoints, stores, limits).

    Build one with ``workload.deploy(name, config)`` and pass it as ``deployment_id=``;
    its ``id`` changes when the logic, the name or any configuration value changes.
    """

    name: str
    logic_id: str
    config: Mapping[str, Any]
    id: str

    @classmethod
    def create(
        cls, logic_id: str, name: str, config: Mapping[str, Any] | None = None
    ) -> Deployment:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"deployment name must be a non-empty string, got {name!r}")
        cfg = copy.deepcopy(dict(config or {}))
        return cls(
            name=name,
            logic_id=logic_id,
            config=MappingProxyType(cfg),
            id=deployment_id_for(logic_id, name, cfg),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deployment) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id
