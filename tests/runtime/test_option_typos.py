"""Misspelt options fail before a run starts, naming the option meant (they used to
land silently in ``runtime.context``); real context values go in ``context=``."""

from __future__ import annotations

from typing import Any

import pytest

from codon_sdk import CodonWorkload


def _workload() -> CodonWorkload:
    def echo(message: Any, *, runtime: Any, context: Any) -> Any:
        return {k: context.get(k) for k in ("timout", "region")}

    wl = CodonWorkload(name="typos", version="1", org_namespace="tests")
    wl.add_node(echo, "echo", "worker")
    return wl


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("max_concurency", "max_concurrency"),
        ("timout", "timeout"),
        ("durabilty", "durability"),
        ("stor", "store"),
        ("max_step", "max_steps"),
        ("lease_tll", "lease_ttl"),
        ("runid", "run_id"),
    ],
)
def test_a_near_miss_of_an_option_is_refused_naming_the_option(typo: str, meant: str) -> None:
    with pytest.raises(TypeError, match=rf"{typo}=\.\.\..*misspelling of the option '{meant}'"):
        _workload().execute("x", deployment_id="dev", **{typo: 3})


def test_context_values_pass_as_keywords_or_in_context() -> None:
    report = _workload().execute(
        "x", deployment_id="dev", region="eu", context={"timout": "really a context value"}
    )
    assert report.node_results("echo") == [{"timout": "really a context value", "region": "eu"}]


@pytest.mark.parametrize("call", ["resume", "fork"])
def test_resume_and_fork_take_only_their_options_and_say_which_was_meant(
    call: str, tmp_path: Any
) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    wl = _workload()
    wl.execute("x", deployment_id="dev", store=store, run_id="r")
    kwargs: dict[str, Any] = {"store": store, "max_concurency": 2}
    if call == "fork":
        kwargs["at_seq"] = 1
    with pytest.raises(TypeError, match=r"'max_concurency' \(did you mean 'max_concurrency'\?\)"):
        getattr(wl, call)("r", **kwargs)


def _langgraph_style(state):  # type: ignore[no-untyped-def]
    return state


def _message_only(message):  # type: ignore[no-untyped-def]
    return message


def _positional_runtime(message, runtime, context, extra):  # type: ignore[no-untyped-def]
    return message


@pytest.mark.parametrize("node", [_langgraph_style, _message_only, _positional_runtime])
def test_a_node_with_the_wrong_signature_is_refused_at_registration(node: Any) -> None:
    from codon_sdk import WorkloadRegistrationError

    wl = CodonWorkload(name="sig", version="1", org_namespace="tests")
    with pytest.raises(WorkloadRegistrationError, match=r"\(message, \*, runtime, context\)"):
        wl.add_node(node, "n", "worker")


def test_nodes_taking_the_keywords_in_any_accepted_form_register() -> None:
    def kw_only(message: Any, *, runtime: Any, context: Any) -> Any:
        return message

    def with_kwargs(message: Any, **kwargs: Any) -> Any:
        return message

    async def coroutine(message: Any, *, runtime: Any, context: Any, extra: int = 1) -> Any:
        return message

    wl = CodonWorkload(name="sig-ok", version="1", org_namespace="tests")
    for i, fn in enumerate((kw_only, with_kwargs, coroutine)):
        wl.add_node(fn, f"n{i}", "worker")
    assert len(wl.nodes) == 3
