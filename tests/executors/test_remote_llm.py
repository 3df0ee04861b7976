"""LLM calls inside a remote (Ray) activation are recorded as if they ran in the driver.

``instrument_openai()`` in the driver is carried to the Ray workers in each activation's
ticket (``Integration.carry``): the worker patches its own openai classes before it runs
the node, so the real ``openai`` client called there records the call (request,
response, usage, cost) as an effect that the driver's recorder writes. Each test runs
the same workload in process and on the cluster against the local OpenAI-protocol
server and compares the ledgers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk import verify_run
from codon_sdk.errors import WorkerSetupError, WorkloadRuntimeError
from codon_sdk.executors import RayExecutor
from codon_sdk.integrations import integration
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings

from . import _llm_workloads as llm

pytestmark = pytest.mark.timeout(300)

_VOLATILE = {"ts", "run_id", "prev", "trace_id", "span_id", "entry", "workload"}


@pytest.fixture
def ray_exec(ray_address: str) -> RayExecutor:
    return RayExecutor(address=ray_address)


@pytest.fixture
def server() -> Iterator[OpenAIProtocolServer]:
    with OpenAIProtocolServer(bundled_recordings()) as running:
        yield running


@pytest.fixture
def instrumented() -> Iterator[None]:
    instrument_openai()
    try:
        yield
    finally:
        uninstrument_openai()


def _effects(report: Any) -> list[dict[str, Any]]:
    """The run's recorded effects: name, value and metadata (no timings or ids)."""
    return [
        {"node": ev.node, "payload": ev.payload, "metadata": ev.metadata}
        for ev in report.events()
        if ev.type == "effect_recorded"
    ]


def _types(report: Any) -> list[str]:
    return [ev.type for ev in report.events()]


@pytest.mark.usefixtures("instrumented")
def test_an_llm_call_in_a_ray_worker_is_recorded_as_in_process(
    ray_exec: RayExecutor, server: OpenAIProtocolServer, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    context = {"llm_url": server.base_url}
    here = llm.geography_flow().execute("q", deployment_id="dev", context=context)
    there = llm.geography_flow().execute(
        "q", deployment_id="dev", context=context, store=store, executor=ray_exec
    )
    (result,) = there.node_results("geography")
    assert result["pid"] != os.getpid()  # the call was made in a Ray worker
    assert result["answer"] == here.node_results("geography")[0]["answer"] == llm.FRANCE_ANSWER
    assert len(server.requests) == 2  # one real HTTP call per run
    assert _types(there) == _types(here)
    recorded = _effects(there)
    assert recorded == _effects(here)
    (call,) = recorded
    assert call["metadata"]["name"] == "openai.chat"
    meta = call["metadata"]["llm"]
    assert meta["request"] == {"model": "gpt-4o-mini", "messages": llm.FRANCE, "temperature": 0}
    assert meta["usage"]["input_tokens"] == 27
    assert meta["usage"]["output_tokens"] == 8
    assert meta["cost_usd"] == pytest.approx((27 * 0.15 + 8 * 0.60) / 1e6)
    assert there.usage == here.usage
    assert there.usage["total"]["calls"] == 1
    assert there.usage["total"]["input_tokens"] == 27
    assert there.usage["total"]["cost_usd"] == pytest.approx(meta["cost_usd"])
    assert verify_run(store, there.run_id).ok
    assert all(llm.API_KEY not in bytes(entry).decode() for entry in there.entries)


@pytest.mark.usefixtures("instrumented")
def test_a_resumed_remote_activation_is_served_the_recorded_answer(
    ray_exec: RayExecutor, server: OpenAIProtocolServer, tmp_path: Path
) -> None:
    """The node asks the model, then pauses; resumed on the cluster, its call is served from
    the ledger (no second HTTP request), and a replay serves it too."""
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    pid_file = tmp_path / "pid"
    context = {"llm_url": server.base_url, "pid_file": str(pid_file)}
    paused = llm.checked_flow().execute(
        "q", deployment_id="dev", context=context, store=store, executor=ray_exec
    )
    assert paused.status == "interrupted"
    assert len(server.requests) == 1
    done = llm.checked_flow().resume(
        paused.run_id, store=store, input="ok", actor="ana", executor=ray_exec
    )
    assert done.status == "completed"
    assert done.node_results("checked") == [{"answer": llm.FRANCE_ANSWER, "verdict": "ok"}]
    assert int(pid_file.read_text()) != os.getpid()  # resumed in a Ray worker
    assert len(server.requests) == 1  # served from the ledger, never sent again
    assert [e["metadata"]["name"] for e in _effects(done)] == ["openai.chat"]
    assert done.usage["total"]["calls"] == 1
    assert verify_run(store, done.run_id).ok
    replayed = llm.checked_flow().replay(done.run_id, store=store)
    assert replayed.identical, replayed.summary()
    assert len(server.requests) == 1


def test_a_worker_drops_the_instrumentation_the_driver_dropped(
    ray_exec: RayExecutor, server: OpenAIProtocolServer
) -> None:
    """After ``uninstrument_openai()`` in the driver, remote calls go unrecorded again, as they
    would in process (the workers undo their patches at their next activation)."""
    context = {"llm_url": server.base_url}
    instrument_openai()
    try:
        recorded = llm.geography_flow().execute(
            "q", deployment_id="dev", context=context, executor=ray_exec
        )
    finally:
        uninstrument_openai()
    assert len(_effects(recorded)) == 1
    here = llm.geography_flow().execute("q", deployment_id="dev", context=context)
    for _ in range(4):  # every worker process of the cluster sees the driver's change
        there = llm.geography_flow().execute(
            "q", deployment_id="dev", context=context, executor=ray_exec
        )
        assert _effects(there) == _effects(here) == []
        assert there.usage["total"]["calls"] == 0


def test_a_set_up_that_fails_in_the_worker_names_the_integration(
    ray_exec: RayExecutor, server: OpenAIProtocolServer
) -> None:
    door = integration("acme-llm")
    door.carry(llm.broken_setup, reason="acme_llm")
    try:
        with pytest.raises(WorkloadRuntimeError) as caught:
            llm.geography_flow().execute(
                "q", deployment_id="dev", context={"llm_url": server.base_url}, executor=ray_exec
            )
    finally:
        door.stop_carrying()
    cause = caught.value.__cause__ or caught.value
    assert isinstance(cause, WorkerSetupError), repr(caught.value)
    message = str(caught.value)
    assert "'acme-llm'" in message
    assert "acme_llm" in message
    assert "worker process" in message
    assert server.requests == ()  # the node never ran


@pytest.mark.usefixtures("instrumented")
def test_a_submitted_run_records_its_llm_calls_on_the_cluster(
    ray_exec: RayExecutor, server: OpenAIProtocolServer, pg_url: str
) -> None:
    """The submitter's instrumentation reaches the run's driver task and, from it, the
    worker that makes the call."""
    handle = llm.geography_flow().submit(
        "q", store=pg_url, executor=ray_exec, deployment_id="dev",
        context={"llm_url": server.base_url},
    )  # fmt: skip
    report = handle.result(timeout=120)
    assert report.status == "completed"
    assert report.node_results("geography")[0]["pid"] != os.getpid()
    assert [e["metadata"]["name"] for e in _effects(report)] == ["openai.chat"]
    assert report.usage["total"]["input_tokens"] == 27
    assert verify_run(pg_url, handle.run_id).ok
