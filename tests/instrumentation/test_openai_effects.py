"""OpenAI calls inside Codon nodes are recorded effects: ledger, usage, cost, resume, replay.

Every run uses the real ``openai`` client against the OpenAI-protocol server;
replays and resumes run with that server stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from codon.instrumentation.openai import uninstrument_openai
from codon_sdk import WorkloadRuntimeError
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import Recording

from ._openai_support import (
    API_KEY,
    FOX,
    FRANCE,
    FRANCE_ANSWER,
    HAIKU,
    HAIKU_TEXT,
    PRIMES,
    WEATHER,
    effects,
    instrumented,
    serving,
    sync_client,
    workload,
)


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    with instrumented():
        yield
    uninstrument_openai()


def _calls(client: openai.OpenAI) -> list[Any]:
    """One of each kind of call; returns the client's answers."""
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, temperature=0)
    reasoning = client.chat.completions.create(model="o4-mini", messages=PRIMES)
    response = client.responses.create(**HAIKU)
    tool = client.responses.create(model="gpt-4.1-mini", input=WEATHER)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=FOX)
    return [chat, reasoning, response, tool, vectors]


def test_each_call_in_a_node_is_an_effect_with_llm_metadata() -> None:
    """Request parameters (content included), models, usage and cost go into the ledger."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return _calls(client)[0].choices[0].message.content

    with serving() as server, sync_client(server) as client:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    recorded = effects(report)
    assert [e.metadata["name"] for e in recorded] == [
        "openai.chat",
        "openai.chat",
        "openai.responses",
        "openai.responses",
        "openai.embeddings",
    ]
    chat = recorded[0].metadata["llm"]
    assert chat == {
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "usage": {
            "input_tokens": 27,
            "output_tokens": 8,
            "cached_input_tokens": 0,
            "reasoning_tokens": 0,
        },
        "cost_usd": chat["cost_usd"],
        "request": {"model": "gpt-4o-mini", "messages": FRANCE, "temperature": 0},
    }
    assert chat["cost_usd"] == pytest.approx((27 * 0.15 + 8 * 0.60) / 1e6)
    reasoning = recorded[1].metadata["llm"]["usage"]
    assert reasoning == {
        "input_tokens": 1206,
        "output_tokens": 342,
        "cached_input_tokens": 1152,
        "reasoning_tokens": 320,
    }
    assert recorded[2].metadata["llm"]["operation"] == "responses"
    assert recorded[2].metadata["llm"]["request"]["instructions"] == HAIKU["instructions"]
    assert recorded[4].metadata["llm"]["operation"] == "embeddings"
    assert all(API_KEY not in bytes(entry).decode() for entry in report.entries)


def test_report_usage_adds_up_per_node_and_per_run() -> None:
    """ExecutionReport.usage totals the recorded calls per node, per model and for the run."""

    def first(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        runtime.emit("second", "next")
        return "first"

    def second(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="o4-mini", messages=PRIMES)
        client.responses.create(**HAIKU)
        return "second"

    with serving() as server, sync_client(server) as client:
        report = workload(("first", first), ("second", second)).execute("go", deployment_id="d")
    usage = report.usage
    assert usage["by_node"]["first"]["calls"] == 1
    assert usage["by_node"]["first"]["input_tokens"] == 27
    assert usage["by_node"]["second"]["calls"] == 2
    assert usage["by_node"]["second"]["cached_input_tokens"] == 1152 * 2
    assert usage["by_node"]["second"]["reasoning_tokens"] == 320 + 192
    total = usage["total"]
    assert total["calls"] == 3
    assert total["input_tokens"] == 27 + 1206 + 1230
    assert total["output_tokens"] == 8 + 342 + 214
    assert total["cost_complete"] is True
    o4 = ((1206 - 1152) * 1.10 + 1152 * 0.275 + 342 * 4.40) / 1e6
    o4 += ((1230 - 1152) * 1.10 + 1152 * 0.275 + 214 * 4.40) / 1e6
    assert usage["by_model"]["o4-mini-2025-04-16"]["cost_usd"] == pytest.approx(o4)
    assert total["cost_usd"] == pytest.approx(o4 + (27 * 0.15 + 8 * 0.60) / 1e6)


def test_replay_with_the_server_stopped_gives_the_same_results(tmp_path: Path) -> None:
    """Replay serves every recorded response (same class, equal, same to_dict) offline."""
    seen: list[list[Any]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        answers = _calls(client)
        seen.append(answers)
        return [answers[0].choices[0].message.content, answers[2].output_text]

    store = f"sqlite:///{tmp_path}/l.db"
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        requests = len(server.requests)
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert requests == 5
    assert replay.report is not None
    assert replay.report.node_results("ask") == [[FRANCE_ANSWER, HAIKU_TEXT]]
    live, served = seen
    for original, again in zip(live, served, strict=True):
        assert type(again) is type(original)
        assert again == original
        assert again.to_dict() == original.to_dict()
        assert again._request_id == original._request_id
    assert served[3].output[0].type == "function_call"


def test_async_node_calls_are_recorded_and_replayed_offline() -> None:
    """AsyncOpenAI calls in an async node: recorded, then served by the replay."""

    async def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        async with openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0) as client:
            chat = await client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
            response = await client.responses.create(**HAIKU)
            vectors = await client.embeddings.create(model="text-embedding-3-small", input=FOX)
        return [chat.choices[0].message.content, response.output_text, len(vectors.data)]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server:
        url = server.base_url  # the replay builds a client too, but never sends with it
        report = wl.execute("go", deployment_id="dev", store=store)
    assert [e.metadata["name"] for e in effects(report)] == [
        "openai.chat",
        "openai.responses",
        "openai.embeddings",
    ]
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert replay.report is not None
    assert replay.report.node_results("ask") == [[FRANCE_ANSWER, HAIKU_TEXT, 2]]


def test_resume_serves_recorded_calls_without_the_network() -> None:
    """A run paused after an LLM call resumes with the server stopped: the call is served."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        verdict = runtime.interrupt("approve the answer", payload=reply.choices[0].message.content)
        return [reply.choices[0].message.content, verdict]

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
    pytest.param(Recording.rate_limit(retry_after=7), openai.RateLimitError, id="429"),
    pytest.param(Recording.server_error(503), openai.InternalServerError, id="503"),
    pytest.param(
        Recording.error(400, "bad request", type="invalid_request_error", code="bad"),
        openai.BadRequestError,
        id="400",
    ),
    pytest.param(Recording.malformed(), json.JSONDecodeError, id="malformed-body"),
]


@pytest.mark.parametrize(("answer", "error"), ERRORS)
def test_openai_errors_are_recorded_and_raised_again_by_the_replay(
    answer: Recording, error: type[Exception]
) -> None:
    """The node sees the client's exception class live and, rebuilt, on replay."""
    caught: list[Exception] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
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
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    live, again = caught
    assert type(again) is type(live) is error
    assert str(again) == str(live)
    if isinstance(live, openai.APIStatusError):
        assert isinstance(again, openai.APIStatusError)
        assert (again.status_code, again.body, again.code, again.type) == (
            live.status_code,
            live.body,
            live.code,
            live.type,
        )
        assert again.request_id == live.request_id
        assert again.response.headers.get("retry-after") == live.response.headers.get("retry-after")
        assert effect.metadata["llm"]["cost_usd"] == 0.0
    else:
        assert effect.metadata["llm"]["cost_usd"] is None


def test_timeouts_are_recorded_and_replayed_as_api_timeout_error() -> None:
    """A client timeout surfaces as APITimeoutError, live and on replay."""
    caught: list[Exception] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        except openai.APITimeoutError as exc:
            caught.append(exc)
            return "timed out"
        return "answered"

    store = MemoryStore()
    wl = workload(("ask", ask))
    slow = Recording.server_error().delayed(2.0)
    with serving(slow) as server, sync_client(server, timeout=0.2) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert report.node_results("ask") == ["timed out"]
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert [type(e) for e in caught] == [openai.APITimeoutError, openai.APITimeoutError]


def test_an_uncaught_openai_error_fails_the_node_with_the_client_exception() -> None:
    """Not caught by the node: the run fails with the client's RateLimitError as cause."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)

    with (
        serving(Recording.rate_limit()) as server,
        sync_client(server) as client,
        pytest.raises(WorkloadRuntimeError) as failed,
    ):
        workload(("ask", ask)).execute("go", deployment_id="dev")
    assert isinstance(failed.value.__cause__, openai.RateLimitError)


def test_replay_of_a_call_the_ledger_lacks_never_calls_out() -> None:
    """Today's code asks for one more call than was recorded: a divergence, and no HTTP."""
    extra = [False]

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        if extra[0]:
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        return "done"

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        extra[0] = True
        replay = wl.replay(report.run_id, store=store)
        assert len(server.requests) == 1  # the replay made no request, server running or not
    assert not replay.identical
    assert "openai.chat" in replay.summary()


def test_with_raw_response_calls_are_recorded_and_served() -> None:
    """with_raw_response (the path langchain-openai takes): parse() and headers, live and
    served from the ledger."""
    seen: list[Any] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=FRANCE)
        completion = raw.parse()
        seen.append((completion, raw.headers.get("x-request-id")))
        return completion.choices[0].message.content

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert effects(report)[0].metadata["llm"]["usage"]["input_tokens"] == 27
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    (live, live_id), (again, again_id) = seen
    assert again == live
    assert again_id == live_id is not None


def test_with_streaming_response_is_refused_by_a_replay() -> None:
    """with_streaming_response is not recorded; a replay refuses it instead of calling out."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=FRANCE
        ) as response:
            return response.parse().choices[0].message.content

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
        assert report.node_results("ask") == [FRANCE_ANSWER]
        assert effects(report) == []
        replay = wl.replay(report.run_id, store=store)
        assert len(server.requests) == 1
    assert not replay.identical


def test_the_run_span_carries_the_runs_token_and_cost_totals() -> None:
    """The root span of a run totals its LLM calls: input and output tokens and cost."""
    from codon_sdk.testing import capture_spans

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        client.chat.completions.create(model="o4-mini", messages=PRIMES)
        return "asked"

    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="d")
    (root,) = [s for s in captured.spans if s.name.startswith("invoke_workflow")]
    total = report.usage["total"]
    assert root.attributes["gen_ai.usage.input_tokens"] == total["input_tokens"] == 27 + 1206
    assert root.attributes["gen_ai.usage.output_tokens"] == total["output_tokens"]
    assert root.attributes["codon.run.cost_usd"] == pytest.approx(total["cost_usd"])


def test_each_node_span_carries_the_totals_of_its_own_calls() -> None:
    """A node span totals the LLM calls its activation made; a node that made none has none."""
    from codon_sdk.testing import capture_spans

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        runtime.emit("think", "asked")

    def think(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="o4-mini", messages=PRIMES)
        runtime.emit("write", "thought")

    def write(message: Any, *, runtime: Any, context: Any) -> Any:
        return "written"

    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = workload(("ask", ask), ("think", think), ("write", write)).execute(
            "go", deployment_id="d"
        )
    by_node = report.usage["by_node"]
    for name in ("ask", "think"):
        span = captured.one(f"codon.node.{name}")
        assert span.attributes["gen_ai.usage.input_tokens"] == by_node[name]["input_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == by_node[name]["output_tokens"]
        assert span.attributes["codon.node.cost_usd"] == pytest.approx(by_node[name]["cost_usd"])
    assert captured.one("codon.node.ask").attributes["gen_ai.usage.input_tokens"] == 27
    quiet = captured.one("codon.node.write").attributes
    assert "gen_ai.usage.input_tokens" not in quiet
    assert "codon.node.cost_usd" not in quiet
