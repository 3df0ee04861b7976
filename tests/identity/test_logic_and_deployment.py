"""Logic ids (what a workflow is) and deployment ids (where and how it runs)."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from codon_sdk import (
    AgentClass,
    CodonWorkload,
    Deployment,
    LogicRequest,
    NodeEdge,
    NodeSpec,
    Topology,
    generate_logic_id,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def alpha(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.emit("beta", message)
    return message


def beta(message: Any, *, runtime: Any, context: Any) -> Any:
    return {"seen": message}


def gamma(message: Any, *, runtime: Any, context: Any) -> Any:
    return None


def _specs() -> list[NodeSpec]:
    return [
        NodeSpec("alpha", "a", alpha, org_namespace="acme"),
        NodeSpec("beta", "b", beta, org_namespace="acme"),
        NodeSpec("gamma", "c", gamma, org_namespace="acme"),
    ]


def _request(
    nodes: list[NodeSpec],
    edges: list[NodeEdge],
    agent: AgentClass | None = None,
) -> LogicRequest:
    return LogicRequest(
        agent_class=agent or AgentClass("Agent", "1.0", "desc"),
        nodes=nodes,
        topology=Topology(edges=edges),
    )


def _edges(specs: list[NodeSpec]) -> list[NodeEdge]:
    a, b, c = specs
    return [NodeEdge(a.id, b.id), NodeEdge(b.id, c.id), NodeEdge(a.id, c.id)]


def test_generate_logic_id_is_hex_sha256() -> None:
    """generate_logic_id returns a 64-character lower-case hex digest."""
    specs = _specs()
    assert HEX64.match(generate_logic_id(_request(specs, _edges(specs))))


@pytest.mark.parametrize("seed", range(5))
def test_logic_id_does_not_depend_on_node_or_edge_order(seed: int) -> None:
    """Shuffling the nodes and the edges gives the same logic id."""
    specs = _specs()
    edges = _edges(specs)
    baseline = generate_logic_id(_request(specs, edges))
    rng = random.Random(seed)
    shuffled_specs, shuffled_edges = specs[:], edges[:]
    rng.shuffle(shuffled_specs)
    rng.shuffle(shuffled_edges)
    assert generate_logic_id(_request(shuffled_specs, shuffled_edges)) == baseline


@pytest.mark.parametrize(
    "agent",
    [
        AgentClass("Other", "1.0", "desc"),
        AgentClass("Agent", "2.0", "desc"),
        AgentClass("Agent", "1.0"),
    ],
    ids=["name", "version", "description"],
)
def test_agent_class_feeds_the_logic_id(agent: AgentClass) -> None:
    """Agent class name, version and description each change the logic id."""
    specs = _specs()
    edges = _edges(specs)
    assert generate_logic_id(_request(specs, edges, agent)) != generate_logic_id(
        _request(specs, edges)
    )


def test_nodes_and_edges_feed_the_logic_id() -> None:
    """Dropping a node, dropping an edge or reversing an edge changes the logic id."""
    specs = _specs()
    edges = _edges(specs)
    baseline = generate_logic_id(_request(specs, edges))
    a, b, _c = specs
    variants = [
        _request(specs[:2], [NodeEdge(a.id, b.id)]),
        _request(specs, edges[:2]),
        _request(specs, [NodeEdge(b.id, a.id), *edges[1:]]),
    ]
    ids = {generate_logic_id(v) for v in variants}
    assert baseline not in ids
    assert len(ids) == len(variants)


def test_agent_class_id_format() -> None:
    """agent_class_id is the name lower-cased with spaces as dashes, a colon, the version."""
    workload = CodonWorkload(name="My Research Agent", version="2.1.0")
    assert workload.agent_class_id == "my-research-agent:2.1.0"


def _workload(order: list[str]) -> CodonWorkload:
    fns = {"alpha": alpha, "beta": beta, "gamma": gamma}
    workload = CodonWorkload(name="Order", version="1")
    for name in order:
        workload.add_node(fns[name], name, name[0], org_namespace="acme")
    return workload


def test_workload_logic_id_ignores_registration_order() -> None:
    """Registering the same nodes and edges in another order gives the same logic id."""
    first = _workload(["alpha", "beta", "gamma"])
    first.add_edge("alpha", "beta")
    first.add_edge("beta", "gamma")
    second = _workload(["gamma", "beta", "alpha"])
    second.add_edge("beta", "gamma")
    second.add_edge("alpha", "beta")
    assert first.logic_id == second.logic_id


# ----------------------------------------------------------------- deployments


def _graph() -> CodonWorkload:
    workload = _workload(["alpha", "beta"])
    workload.add_edge("alpha", "beta")
    return workload


def test_deploy_returns_a_deployment_with_a_sha256_id() -> None:
    """workload.deploy(name, config) gives a Deployment with a hex SHA-256 id and its inputs."""
    workload = _graph()
    deployment = workload.deploy("prod", {"model": "gpt-4o"})
    assert isinstance(deployment, Deployment)
    assert HEX64.match(deployment.id)
    assert deployment.name == "prod"
    assert deployment.logic_id == workload.logic_id


def test_deployment_id_is_deterministic_and_order_free() -> None:
    """The same name and config (keys in any order) give the same id, in another workload too."""
    one = _graph().deploy("prod", {"model": "gpt-4o", "limits": {"a": 1, "b": 2}})
    two = _graph().deploy("prod", {"limits": {"b": 2, "a": 1}, "model": "gpt-4o"})
    assert one.id == two.id


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("staging", {"model": "gpt-4o"}),
        ("prod", {"model": "gpt-4o-mini"}),
        ("prod", {"model": "gpt-4o", "endpoint": "https://eu.example"}),
        ("prod", {}),
    ],
)
def test_deployment_name_and_config_feed_the_id(name: str, config: dict[str, Any]) -> None:
    """Changing the deployment name or any configuration value changes the id."""
    workload = _graph()
    assert workload.deploy(name, config).id != workload.deploy("prod", {"model": "gpt-4o"}).id


def test_deployment_id_changes_with_the_logic() -> None:
    """The same name and config on a different graph give a different deployment id."""
    workload = _graph()
    before = workload.deploy("prod", {"model": "gpt-4o"})
    workload.add_node(gamma, "gamma", "c", org_namespace="acme")
    after = workload.deploy("prod", {"model": "gpt-4o"})
    assert before.id != after.id


def test_execute_accepts_a_deployment_and_records_its_id() -> None:
    """A Deployment passed as deployment_id puts its id in the context and run_started."""
    workload = _graph()
    deployment = workload.deploy("prod", {"model": "gpt-4o"})
    report = workload.execute({"x": 1}, deployment_id=deployment)
    assert report.context["deployment_id"] == deployment.id
    started = next(report.events())
    assert started.type == "run_started"
    assert started.metadata["deployment_id"] == deployment.id


def test_plain_string_deployment_id_stays_accepted() -> None:
    """A plain string deployment_id works as before and is passed through unchanged."""
    report = _graph().execute({"x": 1}, deployment_id="dev-west")
    assert report.context["deployment_id"] == "dev-west"


def test_deployment_built_for_other_logic_is_refused() -> None:
    """A Deployment made before the graph changed is refused with ValueError, not silently used."""
    workload = _graph()
    stale = workload.deploy("prod", {})
    workload.add_node(gamma, "gamma", "c", org_namespace="acme")
    with pytest.raises(ValueError, match="prod"):
        workload.execute({"x": 1}, deployment_id=stale)


def test_deploy_rejects_an_empty_name() -> None:
    """An empty deployment name is a ValueError."""
    with pytest.raises(ValueError):
        _graph().deploy("", {})


def test_deploy_rejects_unencodable_config_clearly() -> None:
    """A configuration value with no canonical encoding is refused, naming its type."""
    with pytest.raises((ValueError, TypeError), match="object"):
        _graph().deploy("prod", {"client": object()})
