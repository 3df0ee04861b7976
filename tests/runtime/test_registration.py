"""CodonWorkload registration: nodes, edges and the workload's properties (API.md Part 1)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from codon_sdk import CodonWorkload, NodeSpec, WorkloadRegistrationError
from codon_sdk.agents import Workload

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def ingest(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.emit("count", {"words": message["text"].split()})
    return message["text"].split()


def count(message: Any, *, runtime: Any, context: Any) -> int:
    return len(message["words"])


def echo(message: Any, *, runtime: Any, context: Any) -> Any:
    return message


def test_codon_workload_is_a_workload() -> None:
    """CodonWorkload implements the documented Workload interface."""
    assert isinstance(CodonWorkload(name="W", version="1"), Workload)


def test_constructor_takes_the_documented_keywords() -> None:
    """name, version, description, tags and enable_tracing are keyword arguments."""
    workload = CodonWorkload(
        name="Doc Agent", version="1.0.0", description="d", tags=["a", "b"], enable_tracing=False
    )
    assert workload.agent_class_id == "doc-agent:1.0.0"
    with pytest.raises(TypeError):
        CodonWorkload("Doc Agent", "1.0.0")  # type: ignore[misc]


def test_metadata_exposes_name_version_description_and_tags() -> None:
    """``metadata`` carries name, version, description and tags as attributes (as documented)."""
    workload = CodonWorkload(name="Doc", version="1.0", description="about", tags=["x", "y"])
    meta = workload.metadata
    assert meta.name == "Doc"
    assert meta.version == "1.0"
    assert meta.description == "about"
    assert tuple(meta.tags) == ("x", "y")


def test_add_node_returns_its_nodespec() -> None:
    """add_node returns the NodeSpec built from the function, name, role and model fields."""
    workload = CodonWorkload(name="W", version="1")
    spec = workload.add_node(
        echo, "echo", "responder", org_namespace="acme", model_name="m", model_version="v"
    )
    assert isinstance(spec, NodeSpec)
    assert (spec.name, spec.role, spec.org_namespace) == ("echo", "responder", "acme")
    assert (spec.model_name, spec.model_version) == ("m", "v")
    assert spec == NodeSpec(
        "echo", "responder", echo, org_namespace="acme", model_name="m", model_version="v"
    )
    assert workload.nodes == [spec] or tuple(workload.nodes) == (spec,)


def test_add_node_namespace_defaults_to_org_namespace_env() -> None:
    """Without org_namespace the node's namespace comes from ORG_NAMESPACE."""
    workload = CodonWorkload(name="W", version="1")
    assert workload.add_node(echo, "echo", "r").org_namespace == "test-org"


def test_duplicate_node_name_is_a_registration_error() -> None:
    """A second node with the same name raises WorkloadRegistrationError naming it."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "echo", "r")
    with pytest.raises(WorkloadRegistrationError, match="echo"):
        workload.add_node(count, "echo", "r")
    assert len(workload.nodes) == 1


@pytest.mark.parametrize("name", ["", "   ", None, 7, ("a",)])
def test_empty_or_non_string_node_name_is_a_registration_error(name: Any) -> None:
    """Empty and non-string node names raise WorkloadRegistrationError quoting the value."""
    workload = CodonWorkload(name="W", version="1")
    with pytest.raises(WorkloadRegistrationError) as info:
        workload.add_node(echo, name, "r")
    assert repr(name) in str(info.value)
    assert workload.nodes == [] or len(workload.nodes) == 0


def test_non_callable_node_is_a_registration_error() -> None:
    """Registering something that is not callable raises WorkloadRegistrationError."""
    workload = CodonWorkload(name="W", version="1")
    with pytest.raises(WorkloadRegistrationError):
        workload.add_node("not a function", "n", "r")  # type: ignore[arg-type]


@pytest.mark.parametrize(("source", "destination"), [("missing", "echo"), ("echo", "missing")])
def test_edge_to_unknown_node_is_a_registration_error(source: str, destination: str) -> None:
    """add_edge with an unregistered source or destination raises, naming the unknown node."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "echo", "r")
    with pytest.raises(WorkloadRegistrationError, match="missing"):
        workload.add_edge(source, destination)
    assert list(workload.topology) == []


def test_edges_are_directed() -> None:
    """add_edge(a, b) allows a -> b only; topology lists the pair once, in that direction."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(ingest, "ingest", "parser")
    workload.add_node(count, "count", "analyzer")
    workload.add_edge("ingest", "count")
    assert list(workload.topology) == [("ingest", "count")]


def test_adding_the_same_edge_twice_is_a_no_op() -> None:
    """A repeated add_edge changes neither the topology nor the logic id."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(ingest, "ingest", "parser")
    workload.add_node(count, "count", "analyzer")
    workload.add_edge("ingest", "count")
    logic_id = workload.logic_id
    workload.add_edge("ingest", "count")
    assert list(workload.topology) == [("ingest", "count")]
    assert workload.logic_id == logic_id


def test_self_edges_are_allowed() -> None:
    """A node may have an edge to itself (loops)."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "loop", "cycler")
    workload.add_edge("loop", "loop")
    assert list(workload.topology) == [("loop", "loop")]


def test_topology_is_sorted_pairs() -> None:
    """topology holds (source, destination) pairs in sorted order, whatever the add order."""
    workload = CodonWorkload(name="W", version="1")
    for name in ("c", "a", "b"):
        workload.add_node(echo, name, "r")
    workload.add_edge("c", "a")
    workload.add_edge("a", "c")
    workload.add_edge("a", "b")
    workload.add_edge("b", "b")
    assert list(workload.topology) == [("a", "b"), ("a", "c"), ("b", "b"), ("c", "a")]


def test_nodes_lists_the_nodespecs_in_registration_order() -> None:
    """``nodes`` holds the NodeSpecs, in the order they were added."""
    workload = CodonWorkload(name="W", version="1")
    specs = [workload.add_node(echo, name, "r") for name in ("z", "a", "m")]
    assert list(workload.nodes) == specs


def test_logic_id_is_recomputed_on_every_node_and_edge() -> None:
    """logic_id is hex SHA-256 and changes whenever a node or an edge is added."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(ingest, "ingest", "parser")
    seen = [workload.logic_id]
    workload.add_node(count, "count", "analyzer")
    seen.append(workload.logic_id)
    workload.add_edge("ingest", "count")
    seen.append(workload.logic_id)
    workload.add_edge("count", "count")
    seen.append(workload.logic_id)
    assert all(HEX64.match(x) for x in seen)
    assert len(set(seen)) == len(seen)


def test_logic_id_changes_with_the_agent_class() -> None:
    """The same graph under another workload name or version has another logic id."""

    def build(name: str, version: str) -> str:
        workload = CodonWorkload(name=name, version=version)
        workload.add_node(echo, "echo", "r")
        return workload.logic_id

    assert len({build("A", "1"), build("B", "1"), build("A", "2")}) == 3


def test_logic_id_depends_on_the_node_role() -> None:
    """The same function registered under another role gives another logic id."""

    def build(role: str) -> str:
        workload = CodonWorkload(name="W", version="1")
        workload.add_node(echo, "echo", role)
        return workload.logic_id

    assert build("responder") != build("critic")


def test_organization_id_defaults_to_the_org_namespace() -> None:
    """With only ORG_NAMESPACE configured, organization_id is that namespace (as before)."""
    workload = CodonWorkload(name="W", version="1")
    workload.add_node(echo, "echo", "r")
    assert workload.organization_id == "test-org"


def test_workload_is_an_abstract_interface() -> None:
    """The Workload base class cannot be instantiated on its own."""
    with pytest.raises(TypeError):
        Workload()  # type: ignore[abstract]
