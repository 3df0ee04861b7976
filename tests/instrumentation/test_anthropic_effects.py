"""Anthropic calls inside Codon nodes are recorded effects: ledger, usage, cost, resume, replay.

Every run uses the real ``anthropic`` client against the Anthropic-protocol
server; replays and resumes run with that server stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from codon_sdk import WorkloadRuntimeError
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import Recording, anthropic_error, anthropic_overloaded, anthropic_rate_limit

from ._anthropic_support import (
    API_KEY,
    FRANCE,
    FRANCE_ANSWER,
    FRANCE_COST,
    SUPPORT,
    SUPPORT_COST,
    WEATHER,
    async_client,
    instrumented,
    serving,
    sync_client,
)
from ._openai_support import effects, workload


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    with instrumented():
        yield


def _calls(client: anthropic.Anthropic) -> list[Any]:
    """One of each recorded conversation; returns the client's answers."""
    return [
        client.messages.create(**FRANCE),
        client.messages.create(**WEATHER),
        client.messages.create(**SUPPORT),
    ]


def test_each_call_in_a_node_is_an_effect_with_llm_metadata() -> None:
    """Request parameters, models, usage with cache tokens and cost go into the ledger."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return _calls(client)[0].content[0].text

    with serving() as server, sync_client(server) as client:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    recorded = effects(report)
    assert [e.metadata["name"] for e in recorded] == ["anthropic.messages"] * 3
    assert recorded[0].metadata["llm"] == {
        "provider": "anthropic",
        "operation": "messages",
        "request_model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5-20250929",
        "usage": {
            "input_tokens": 21,
            "output_tokens": 10,
            "cached_input_tokens": 0,
            "reasoning_tokens": None,
            "cache_creation_input_tokens": 0,
        },
        "cost_usd": pytest.approx(FRANCE_COST),
        "request": FRANCE,
    }
    support = recorded[2].metadata["llm"]
    assert support["usage"] == {
        "input_tokens": 18 + 1536 + 2048,
        "output_tokens": 39,
        "cached_input_tokens": 2048,
        "reasoning_tokens": None,
        "cache_creation_input_tokens": 1536,
    }
    assert support["cost_usd"] == pytest.approx(SUPPORT_COST)
    assert recorded[1].metadata["llm"]["request"]["tools"][0]["name"] == "get_weather"
    assert all(API_KEY not in bytes(entry).decode() for entry in report.entries)


def test_report_usage_adds_up_per_node_and_per_model() -> None:
    """ExecutionReport.usage totals the recorded calls, cache reads and writes included."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        _calls(client)
        return "done"

    with serving() as server, sync_client(server) as client:
        report = workload(("ask", ask)).execute("go", deployment_id="d")
    total = report.usage["total"]
    assert total["calls"] == 3
    assert total["input_tokens"] == 21 + 412 + (18 + 1536 + 2048)
    assert total["output_tokens"] == 10 + 71 + 39
    assert total["cached_input_tokens"] == 2048
    assert total["cache_creation_input_tokens"] == 1536
    assert total["cost_complete"] is True
    haiku = (412 * 1.00 + 71 * 5.00) / 1e6
    assert total["cost_usd"] == pytest.approx(FRANCE_COST + haiku + SUPPORT_COST)
    assert report.usage["by_model"]["claude-opus-4-1-20250805"]["cost_usd"] == pytest.approx(
        SUPPORT_COST
    )


def test_replay_with_the_server_stopped_gives_the_same_results(tmp_path: Path) -> None:
    """Replay serves every recorded message (same class, equal, same to_dict) offline."""
    seen: list[list[Any]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        answers = _calls(client)
        seen.append(answers)
        return [answers[0].content[0].text, answers[1].content[1].input]

    store = f"sqlite:///{tmp_path}/l.db"
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        requests = len(server.requests)
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert requests == 3
    assert replay.report is not None
    where = {"location": "Paris, France", "unit": "celsius"}
    assert replay.report.node_results("ask") == [[FRANCE_ANSWER, where]]
    live, served = seen
    for original, again in zip(live, served, strict=True):
        assert type(again) is type(original) is anthropic.types.Message
        assert again == original
        assert again.to_dict() == original.to_dict()
        assert again._request_id == original._request_id


def test_async_node_calls_are_recorded_and_replayed_offline() -> None:
    """AsyncAnthropic calls in an async node: recorded, then served by the replay."""

    async def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        async with async_client(url) as client:
            reply = await client.messages.create(**FRANCE)
        return reply.content[0].text

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server:
        url = server.base_url  # the replay builds a client too, but never sends with it
        report = wl.execute("go", deployment_id="dev", store=store)
    assert [e.metadata["name"] for e in effects(report)] == ["anthropic.messages"]
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert replay.report is not None
    assert replay.report.node_results("ask") == [FRANCE_ANSWER]


def test_resume_serves_recorded_calls_without_the_network() -> None:
    """A run paused after an LLM call resumes with the server stopped: the call is served."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = client.messages.create(**FRANCE)
        verdict = runtime.interrupt("approve the answer", payload=reply.content[0].text)
        return [reply.content[0].text, verdict]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        paused = wl.execute("go", deployment_id="dev", store=store)
        assert len(server.requests) == 1
    assert paused.status == "interrupted"
    resumed = wl.resume(paused.run_id, store=store, input="approved", actor="reviewer")
    assert resumed.status == "completed"
    assert resumed.node_results("ask") == [[FRANCE_ANSWER, "approved"]]
    assert resumed.usage["total"]["calls"] == 1


ERRORS = [
    pytest.param(anthropic_rate_limit(retry_after=7), anthropic.RateLimitError, id="429"),
    pytest.param(anthropic_overloaded(), anthropic.OverloadedError, id="529"),
    pytest.param(
        anthropic_error(
            400, "messages: at least one message is required", type="invalid_request_error"
        ),
        anthropic.BadRequestError,
        id="400",
    ),
    pytest.param(Recording.malformed(b'{"id": "msg_trunc'), json.JSONDecodeError, id="malformed"),
]


@pytest.mark.parametrize(("answer", "error"), ERRORS)
def test_anthropic_errors_are_recorded_and_raised_again_by_the_replay(
    answer: Recording, error: type[Exception]
) -> None:
    """The node sees the client's exception class live and, rebuilt, on replay."""
    caught: list[Exception] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            client.messages.create(**FRANCE)
        except Exception as exc:
            caught.append(exc)
            return [type(exc).__name__, getattr(exc, "status_code", None), str(exc)]
        return None

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving(answer) as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    [effect] = effects(report)
    assert effect.metadata["error"]["type"].endswith(error.__name__)
    assert "anthropic_error" in effect.metadata
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    live, again = caught
    assert type(again) is type(live) is error
    assert str(again) == str(live)
    if isinstance(live, anthropic.APIStatusError):
        assert isinstance(again, anthropic.APIStatusError)
        assert (again.status_code, again.body) == (live.status_code, live.body)
        assert again.request_id == live.request_id is not None
        assert again.response.headers.get("retry-after") == live.response.headers.get("retry-after")
        assert effect.metadata["llm"]["cost_usd"] == 0.0
    else:
        assert effect.metadata["llm"]["cost_usd"] is None


def test_timeouts_are_recorded_and_replayed_as_api_timeout_error() -> None:
    """A client timeout surfaces as APITimeoutError, live and on replay."""
    caught: list[Exception] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            client.messages.create(**FRANCE)
        except anthropic.APITimeoutError as exc:
            caught.append(exc)
            return "timed out"
        return "answered"

    store = MemoryStore()
    wl = workload(("ask", ask))
    slow = anthropic_overloaded().delayed(2.0)
    with serving(slow) as server, sync_client(server, timeout=0.2) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert report.node_results("ask") == ["timed out"]
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert [type(e) for e in caught] == [anthropic.APITimeoutError, anthropic.APITimeoutError]


def test_an_uncaught_anthropic_error_fails_the_node_with_the_client_exception() -> None:
    """Not caught by the node: the run fails with the client's RateLimitError as cause."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return client.messages.create(**FRANCE)

    with (
        serving(anthropic_rate_limit()) as server,
        sync_client(server) as client,
        pytest.raises(WorkloadRuntimeError) as failed,
    ):
        workload(("ask", ask)).execute("go", deployment_id="dev")
    assert isinstance(failed.value.__cause__, anthropic.RateLimitError)


def test_replay_of_a_call_the_ledger_lacks_never_calls_out() -> None:
    """Today's code asks for one more call than was recorded: a divergence, and no HTTP."""
    extra = [False]

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.messages.create(**FRANCE)
        if extra[0]:
            client.messages.create(**FRANCE)
        return "done"

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        extra[0] = True
        replay = wl.replay(report.run_id, store=store)
        assert len(server.requests) == 1  # the replay made no request, server running or not
    assert not replay.identical
    assert "anthropic.messages" in replay.summary()


def test_with_raw_response_calls_are_recorded_and_served() -> None:
    """with_raw_response: parse() and the request-id header, live and served from the ledger."""
    seen: list[Any] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        raw = client.messages.with_raw_response.create(**FRANCE)
        reply = raw.parse()
        seen.append((reply, raw.headers.get("request-id"), raw.request_id))
        return reply.content[0].text

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert effects(report)[0].metadata["llm"]["usage"]["input_tokens"] == 21
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    (live, live_id, live_rid), (again, again_id, again_rid) = seen
    assert again == live
    assert again_id == live_id == "req_011CUa6s2ZtmPdBWKsM9QHPq"
    assert again_rid == live_rid == live_id


def test_with_streaming_response_is_refused_by_a_replay() -> None:
    """with_streaming_response is not recorded; a replay refuses it instead of calling out."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        with client.messages.with_streaming_response.create(**FRANCE) as response:
            return response.parse().content[0].text

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        assert report.node_results("ask") == [FRANCE_ANSWER]
        assert effects(report) == []
        replay = wl.replay(report.run_id, store=store)
        assert len(server.requests) == 1
    assert not replay.identical
    assert replay.report is not None
    assert replay.report.status == "failed"
