"""``LangGraphWorkloadAdapter.from_langgraph``: what it accepts, what it returns, how it fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

import codon.instrumentation.langgraph as adapter_pkg
from codon.instrumentation.langgraph import (
    LangGraphAdapterResult,
    LangGraphWorkload,
    LangGraphWorkloadAdapter,
    NodeOverride,
)
from codon_sdk import CodonWorkload, WorkloadRegistrationError
from codon_sdk.stores import MemoryStore

from ._support import Counted, conditional_loop, events_of, linear


def _adapt(graph: Any, **kwargs: Any) -> Any:
    return LangGraphWorkloadAdapter.from_langgraph(graph, name="api", version="1.0", **kwargs)


def test_public_names_are_sorted_and_resolve() -> None:
    """__all__ is sorted and every name (the lazy ones too) imports."""
    assert adapter_pkg.__all__ == sorted(adapter_pkg.__all__)
    for name in adapter_pkg.__all__:
        assert getattr(adapter_pkg, name) is not None
    from codon_sdk.instrumentation import initialize_telemetry

    assert adapter_pkg.initialize_telemetry is initialize_telemetry
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = adapter_pkg.nope


def test_wire_constants_match_the_installed_langgraph() -> None:
    """The configuration keys and channels the adapter reads are LangGraph's own."""
    from langgraph._internal import _constants as lg

    from codon.instrumentation.langgraph import _compat as ours

    for name in ("CONF", "CONFIG_KEY_SEND", "CONFIG_KEY_TASK_ID", "TASKS", "PUSH", "NS_SEP"):
        assert getattr(ours, name) == getattr(lg, name), name
    from langgraph.constants import END, START

    assert (ours.START, ours.END) == (START, END)
    assert {lg.RESUME, lg.INTERRUPT, lg.NO_WRITES, lg.ERROR, lg.RETURN} <= ours.RESERVED_CHANNELS


def test_the_wrapped_graph_is_a_drop_in_compiled_graph() -> None:
    """The wrapped graph is an instance of the compiled graph's class: get_graph, get_state,
    update_state and with_config behave as LangGraph's, and copies stay adapted."""
    store = MemoryStore()
    wrapped = _adapt(linear([]), store=store, compile_kwargs={"checkpointer": InMemorySaver()})
    plain = linear([]).compile(checkpointer=InMemorySaver())
    assert isinstance(wrapped, CompiledStateGraph)
    assert type(wrapped).__name__ == "CodonCompiledStateGraph"
    assert isinstance(wrapped.workload, CodonWorkload)
    assert isinstance(wrapped.workload, LangGraphWorkload)
    assert wrapped.workload.graph is wrapped
    assert set(wrapped.get_graph().nodes) == set(plain.get_graph().nodes)
    config = {"configurable": {"thread_id": "d"}}
    payload = {"items": [], "total": 0, "note": "n"}
    wrapped.invoke(payload, config)
    plain.invoke(payload, config)
    assert wrapped.get_state(config).values == plain.get_state(config).values
    wrapped.update_state(config, {"note": "edited"}, as_node="c")
    plain.update_state(config, {"note": "edited"}, as_node="c")
    assert wrapped.get_state(config).values == plain.get_state(config).values
    assert len(list(wrapped.get_state_history(config))) == len(
        list(plain.get_state_history(config))
    )
    tagged = wrapped.with_config({"tags": ["x"]})
    assert tagged.workload is wrapped.workload
    tagged.invoke(payload, {"configurable": {"thread_id": "e"}})
    assert wrapped.last_report is not None
    assert wrapped.last_report.context["conversation_id"] == "e"
    assert len(store.runs()) == 2


def test_state_graph_and_compiled_graph_are_both_accepted() -> None:
    """A StateGraph is compiled with compile_kwargs; a compiled graph is used as compiled."""
    saver = InMemorySaver()
    from_builder = _adapt(linear([]), compile_kwargs={"checkpointer": saver})
    assert from_builder.checkpointer is saver
    compiled = linear([]).compile(checkpointer=saver)
    from_compiled = _adapt(compiled)
    assert from_compiled.checkpointer is saver
    assert from_compiled.workload.logic_id == from_builder.workload.logic_id
    assert from_compiled is not compiled
    assert not hasattr(compiled, "workload")


def test_return_artifacts_gives_every_piece() -> None:
    """return_artifacts=True: the workload, the StateGraph, the unadapted compiled graph and
    the wrapped graph."""
    builder = linear([])
    result = _adapt(builder, return_artifacts=True)
    assert isinstance(result, LangGraphAdapterResult)
    assert result.state_graph is builder
    assert isinstance(result.compiled_graph, CompiledStateGraph)
    assert not hasattr(result.compiled_graph, "workload")
    assert result.wrapped_graph.workload is result.workload
    assert result.workload.graph is result.wrapped_graph


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (lambda state: state, "needs a LangGraph StateGraph or a compiled graph"),
        ({"nodes": []}, "got builtins.dict"),
        (StateGraph(Counted), "has no nodes"),
    ],
    ids=["function", "dict", "empty"],
)
def test_what_is_not_an_adaptable_graph_is_refused(graph: Any, message: str) -> None:
    """Objects that are not LangGraph graphs, and graphs without nodes, are refused clearly."""
    with pytest.raises(WorkloadRegistrationError, match=message):
        _adapt(graph)


def test_graphs_that_do_not_compile_or_are_already_adapted_are_refused() -> None:
    """A StateGraph LangGraph cannot compile, compile_kwargs with a compiled graph, and an
    already adapted graph are registration errors."""
    broken = StateGraph(Counted)
    broken.add_node("a", lambda s: s)
    broken.add_edge(START, "a")
    broken.add_edge("a", "missing")
    with pytest.raises(WorkloadRegistrationError, match="does not compile"):
        _adapt(broken)
    compiled = linear([]).compile()
    with pytest.raises(WorkloadRegistrationError, match="already compiled"):
        _adapt(compiled, compile_kwargs={"checkpointer": InMemorySaver()})
    with pytest.raises(WorkloadRegistrationError, match="already adapted"):
        _adapt(_adapt(linear([])))


def test_node_overrides_set_role_and_model_and_change_the_identity() -> None:
    """NodeOverride (or a mapping) sets a node's role, model and namespace in its NodeSpec."""
    plain = _adapt(linear([]))
    wrapped = _adapt(
        linear([]),
        node_overrides={
            "a": NodeOverride(role="planner", model_name="gpt-4o-mini", model_version="2024-07"),
            "b": {"role": "writer", "org_namespace": "team-b"},
        },
    )
    a, b, c = (wrapped.workload.node_spec(n) for n in "abc")
    assert (a.role, a.model_name, a.model_version) == ("planner", "gpt-4o-mini", "2024-07")
    assert (b.role, b.org_namespace) == ("writer", "team-b")
    assert (c.role, c.org_namespace) == ("node", "test-org")
    assert wrapped.workload.node_spec("__start__").role == "entry"
    assert wrapped.workload.node_spec("__end__").role == "exit"
    assert c.id == plain.workload.node_spec("c").id
    assert a.id != plain.workload.node_spec("a").id
    assert wrapped.workload.logic_id != plain.workload.logic_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": NodeOverride(role="x")}, r"node\(s\) the graph does not have: \['nope'\]"),
        ({"a": {"colour": "red"}}, r"unknown field\(s\) \['colour'\]"),
        ({"a": {"role": 3}}, "must be a string or None"),
        ({"a": "planner"}, "must be a NodeOverride or a mapping"),
    ],
    ids=["unknown-node", "unknown-field", "bad-value", "bad-type"],
)
def test_bad_node_overrides_are_refused(overrides: Any, message: str) -> None:
    """Overrides naming unknown nodes or fields, or with wrong values, are registration errors."""
    with pytest.raises(WorkloadRegistrationError, match=message):
        _adapt(linear([]), node_overrides=overrides)


def test_entry_nodes_override_the_recorded_entry_and_are_validated() -> None:
    """entry_nodes changes the entry in the logic id and run_started; unknown names fail."""
    default = _adapt(linear([]))
    assert default.workload.default_entry_nodes() == ["__start__"]
    custom = _adapt(linear([]), entry_nodes=["a"])
    assert custom.workload.logic_id != default.workload.logic_id
    custom.invoke({"items": [], "total": 0, "note": ""})
    started = next(custom.last_report.events())
    assert started.metadata["entry_nodes"] == ["a"]
    with pytest.raises(WorkloadRegistrationError, match=r"unknown: \['z'\]"):
        _adapt(linear([]), entry_nodes=["z"])


def test_runtime_config_sets_the_deployment_and_is_validated() -> None:
    """runtime_config: deployment id and durability recorded; unknown keys and bad values fail."""
    store = MemoryStore()
    wrapped = _adapt(
        conditional_loop([]),
        store=store,
        runtime_config={"deployment_id": "prod-eu", "durability": "sync", "enable_tracing": False},
    )
    wrapped.invoke({"n": 3, "trail": []})
    assert wrapped.last_report.deployment_id == "prod-eu"
    assert store.get_run(wrapped.last_report.run_id).deployment_id == "prod-eu"
    for config, message in (
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"durability": "eventually"}, "durability"),
        ({"deployment_id": ""}, "deployment_id"),
        ({"actor_keys": "user"}, "actor_keys"),
        ({"enable_tracing": "yes"}, "enable_tracing"),
    ):
        with pytest.raises(WorkloadRegistrationError, match=message):
            _adapt(linear([]), runtime_config=config)


def test_store_may_be_a_url(tmp_path: Any) -> None:
    """store="sqlite:///..." opens that ledger; runs land in the file."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    wrapped = _adapt(conditional_loop([]), store=url)
    wrapped.invoke({"n": 4, "trail": []})
    from codon_sdk.stores import open_store

    with open_store(url) as opened:
        assert [info.status for info in opened.runs()] == ["completed"]


def test_workload_execute_invokes_the_graph_and_returns_its_report() -> None:
    """CodonWorkload.execute on the graph's workload runs LangGraph, with a deployment id."""
    wrapped = _adapt(conditional_loop([]))
    report = wrapped.workload.execute({"n": 2, "trail": []}, deployment_id="batch-job")
    assert report is wrapped.last_report
    assert report.status == "completed"
    assert report.deployment_id == "batch-job"
    assert report.node_results("done") == [{"trail": [-1]}]
    assert events_of(report, "langgraph.invocation")[0].value()["input"] == {"n": 2, "trail": []}


def test_without_langgraph_the_adapter_explains_how_to_install_it() -> None:
    """The package imports without LangGraph (track_node works); the adapter's ImportError names
    the extra to install."""
    script = textwrap.dedent(
        """
        import sys
        for name in ("langgraph", "langgraph.graph", "langgraph.pregel"):
            sys.modules[name] = None
        import codon.instrumentation.langgraph as pkg
        assert pkg.track_node("n", "r")(lambda x: x)(3) == 3
        try:
            pkg.LangGraphWorkloadAdapter
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"ORG_NAMESPACE": "x", "PATH": ""},
    )
    assert 'pip install "codon-sdk[langgraph]"' in out.stdout
