"""``workload.resume(run_id, *, store, input=None, actor=None)``: what it accepts, what it does
with runs that ended, stopped or failed midway, and the public names durable runs need."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest

import codon_sdk
from codon_sdk import CodonWorkload, WorkloadRuntimeError
from codon_sdk.stores import MemoryStore

from ._support import opened, parse, stored_entries


def two_steps(calls: Counter[str], broken: dict[str, bool]) -> CodonWorkload:
    """prepare -> charge; ``charge`` raises while ``broken["charge"]`` is true."""

    def prepare(order: Any, *, runtime: Any, context: Any) -> Any:
        calls["prepare"] += 1
        runtime.state["prepared"] = order
        runtime.emit("charge", order)
        return "prepared"

    def charge(order: Any, *, runtime: Any, context: Any) -> Any:
        calls["charge"] += 1
        if broken["charge"]:
            raise ConnectionError("payment gateway unreachable")
        runtime.state["charged"] = order
        return "charged"

    workload = CodonWorkload(name="checkout", version="1", org_namespace="durable-tests")
    workload.add_node(prepare, "prepare", "r")
    workload.add_node(charge, "charge", "r")
    workload.add_edge("prepare", "charge")
    return workload


def test_the_resume_signature_is_the_documented_one() -> None:
    parameters = inspect.signature(CodonWorkload.resume).parameters
    assert list(parameters)[:2] == ["self", "run_id"]
    for name, default in (("input", None), ("actor", None), ("allow_logic_change", False)):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is default
    assert parameters["store"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["store"].default is inspect.Parameter.empty


def test_resume_refuses_options_it_does_not_know(sqlite_url: str) -> None:
    workload = two_steps(Counter(), {"charge": False})
    with pytest.raises(TypeError, match="max_stepz"):
        workload.resume("any", store=sqlite_url, max_stepz=5)


def test_a_failed_run_is_final_and_a_fork_continues_it_as_a_new_run(ledger_url: str) -> None:
    """A node failed (the gateway was down). The failed run's ledger ends with
    run_finished(failed) and stays final: resuming it returns that report and runs
    nothing. Once the gateway is back, a fork from before the failure continues the
    work as a new run naming its parent; the completed activation is not run again."""
    calls: Counter[str] = Counter()
    broken = {"charge": True}
    with pytest.raises(WorkloadRuntimeError, match="payment gateway unreachable"):
        two_steps(calls, broken).execute(
            "order-7", deployment_id="d", store=ledger_url, run_id="failed-midway"
        )
    broken["charge"] = False
    again = two_steps(calls, broken).resume("failed-midway", store=ledger_url, actor="ops")
    assert again.status == "failed"
    assert calls == {"prepare": 1, "charge": 1}
    events = parse(stored_entries(ledger_url, "failed-midway"))
    before_failure = next(e.seq for e in events if e.type == "node_failed") - 1
    forked = two_steps(calls, broken).fork(
        "failed-midway", store=ledger_url, at_seq=before_failure, new_run_id="retry-7"
    )
    assert forked.status == "completed"
    assert calls == {"prepare": 1, "charge": 2}
    assert forked.node_results("charge") == ["charged"]
    assert forked.state == {"prepared": "order-7", "charged": "order-7"}
    with opened(ledger_url) as store:
        assert store.get_run("failed-midway").status == "failed"
        assert store.get_run("retry-7").parent_run_id == "failed-midway"


def test_resuming_a_stopped_run_returns_its_report_without_running_anything(
    sqlite_url: str,
) -> None:
    calls: list[int] = []

    def loop(i: Any, *, runtime: Any, context: Any) -> Any:
        calls.append(i)
        if i == 3:
            runtime.stop("enough")
        runtime.emit("loop", i + 1)
        return i

    workload = CodonWorkload(name="stopper", version="1", org_namespace="durable-tests")
    workload.add_node(loop, "loop", "r")
    workload.add_edge("loop", "loop")
    first = workload.execute(1, deployment_id="d", store=sqlite_url, run_id="stopped")
    assert first.status == "stopped"
    again = workload.resume("stopped", store=sqlite_url)
    assert again.status == "stopped"
    assert calls == [1, 2, 3]
    assert again.node_results("loop") == [1, 2, 3]
    assert list(again.entries) == list(first.entries)


def test_a_store_instance_works_as_well_as_a_url_and_stays_open(sqlite_url: str) -> None:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("ok?")

    workload = CodonWorkload(name="instance", version="1", org_namespace="durable-tests")
    workload.add_node(ask, "ask", "human")
    for store in (MemoryStore(), codon_sdk.stores.open_store(sqlite_url)):
        workload.execute(None, deployment_id="d", store=store, run_id="with-instance")
        report = workload.resume("with-instance", store=store, input="yes")
        assert report.node_results("ask") == ["yes"]
        assert store.get_run("with-instance").status == "completed"  # still usable
        store.close()


# --------------------------------------------------------------------------- public names


def test_open_store_is_importable_from_the_package_as_api_md_says() -> None:
    """API.md Part 2: "Stores: ``codon_sdk.open_store(url)``"."""
    assert callable(getattr(codon_sdk, "open_store", None))


def test_retry_policy_has_a_public_import_path() -> None:
    """``add_node(retry=RetryPolicy(...))`` needs the class importable from the package,
    not only from the private ``codon_sdk.runtime._policy``."""
    assert isinstance(getattr(codon_sdk, "RetryPolicy", None), type)


def test_the_durable_execution_errors_are_importable_from_codon_sdk_errors() -> None:
    from codon_sdk import errors

    for name in (
        "LogicChangedError",
        "NodeTimeoutError",
        "RunTimeoutError",
        "RunConflictError",
        "RunNotFoundError",
        "StoreConnectionError",
        "StoreCorruptError",
        "SchemaVersionError",
        "InvalidStoreURLError",
    ):
        assert issubclass(getattr(errors, name), codon_sdk.CodonError), name
