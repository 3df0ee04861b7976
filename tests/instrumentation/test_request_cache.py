"""The request cache: a node's LLM call served from an earlier recording of the same
request, with the real ``openai`` client against the local OpenAI-protocol server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from codon.instrumentation.openai import uninstrument_openai
from codon_sdk import CodonWorkload, RequestCache, WorkloadRegistrationError
from codon_sdk.telemetry import record_request_cache

from ._openai_support import FRANCE, FRANCE_ANSWER, PRIMES, effects, instrumented, serving
from ._openai_support import sync_client as client_of


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    with instrumented():
        yield
    uninstrument_openai()


def _agent(
    client: Any, messages: Any = FRANCE, model: str = "gpt-4o-mini", **cache: Any
) -> CodonWorkload:
    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        answer = client.chat.completions.create(model=model, messages=messages)
        return answer.choices[0].message.content

    workload = CodonWorkload(name="asker", version="1")
    workload.add_node(ask, "ask", "llm", **cache)
    return workload


def test_an_identical_request_is_served_from_the_first_recording(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    with serving() as server, client_of(server) as client:
        agent = _agent(client, request_cache=RequestCache())
        first = agent.execute("a", deployment_id="d", store=store)
        sent = len(server.requests)
        second = agent.execute("b", deployment_id="d", store=store)
        assert len(server.requests) == sent == 1  # the second run sent nothing
    assert first.node_results("ask") == second.node_results("ask") == [FRANCE_ANSWER]
    (hit,) = effects(second)
    (miss,) = effects(first)
    assert hit.metadata["cached_from"] == {
        "run_id": first.run_id,
        "seq": miss.seq,
        "leaf": hit.metadata["cached_from"]["leaf"],
    }
    assert miss.metadata["request_cache"] == "miss"
    total = second.usage["total"]
    assert (total["calls"], total["cache_hits"], total["input_tokens"]) == (1, 1, 0)
    assert total["cost_usd"] is None or total["cost_usd"] == 0
    assert first.usage["total"]["cache_misses"] == 1
    assert first.usage["total"]["input_tokens"] > 0


def test_a_replayed_run_serves_its_hit_without_the_network(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    with serving() as server, client_of(server) as client:
        agent = _agent(client, request_cache=RequestCache())
        agent.execute("a", deployment_id="d", store=store)
        second = agent.execute("b", deployment_id="d", store=store)
        assert len(server.requests) == 1
        replay = agent.replay(second.run_id, store=store)
        assert len(server.requests) == 1
    assert replay.identical


def test_another_request_or_a_node_without_the_cache_is_sent(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    with serving() as server, client_of(server) as client:
        _agent(client, request_cache=RequestCache()).execute("a", deployment_id="d", store=store)
        _agent(client, PRIMES, "o4-mini", request_cache=RequestCache()).execute(
            "b", deployment_id="d", store=store
        )
        _agent(client).execute("c", deployment_id="d", store=store)  # not opted in
        assert len(server.requests) == 3


def test_a_changed_node_asks_afresh(tmp_path: Path) -> None:
    """The node's logic id is part of the key: changed code sends its request again."""
    store = f"sqlite:///{tmp_path / 'l.db'}"

    def changed(message: Any, *, runtime: Any, context: Any) -> Any:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        return answer.choices[0].message.content.upper()

    with serving() as server, client_of(server) as client:
        _agent(client, request_cache=RequestCache()).execute("a", deployment_id="d", store=store)
        other = CodonWorkload(name="asker", version="1")
        other.add_node(changed, "ask", "llm", request_cache=RequestCache())
        report = other.execute("b", deployment_id="d", store=store)
        assert len(server.requests) == 2
    assert report.node_results("ask") == [FRANCE_ANSWER.upper()]


def test_an_expired_or_tampered_source_is_a_miss(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "l.db"
    store = f"sqlite:///{path}"
    with serving() as server, client_of(server) as client:
        agent = _agent(client, request_cache=RequestCache())
        agent.execute("a", deployment_id="d", store=store)
        with sqlite3.connect(path) as conn:  # the index now points at a hash that is not there
            conn.execute("UPDATE codon_cache SET leaf = ?", ("00" * 32,))
        again = agent.execute("b", deployment_id="d", store=store)
        assert len(server.requests) == 2
    assert again.node_results("ask") == [FRANCE_ANSWER]
    assert effects(again)[0].metadata["request_cache"] == "miss"


def test_lookups_are_counted_as_a_metric() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    record_request_cache("openai.chat", hit=True, meter_provider=provider)
    record_request_cache("openai.chat", hit=False, meter_provider=provider)
    record_request_cache("openai.chat", hit=True, meter_provider=provider)
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "codon.request_cache.lookups"
        for p in m.data.data_points
    ]
    counts = {p.attributes["codon.request_cache.result"]: p.value for p in points}
    assert counts == {"hit": 2, "miss": 1}


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), "600", True])
def test_a_bad_ttl_is_refused(ttl: Any) -> None:
    with pytest.raises(WorkloadRegistrationError, match="RequestCache ttl"):
        RequestCache(ttl=ttl)


def test_request_cache_must_be_a_request_cache() -> None:
    workload = CodonWorkload(name="x", version="1", org_namespace="t")
    with pytest.raises(WorkloadRegistrationError, match="request_cache must be a RequestCache"):
        workload.add_node(lambda m, *, runtime, context: m, "n", "r", request_cache=True)
