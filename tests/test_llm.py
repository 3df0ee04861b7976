"""``track_llm`` / ``track_llm_async``: any LLM callable as a traced, recorded, priced call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import codon_sdk.llm as llm
from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk import CodonWorkload
from codon_sdk.ledger._events import EFFECT_RECORDED
from codon_sdk.llm import track_llm, track_llm_async
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, capture_spans

SECRET = "sk-track-llm-SECRET-123456"
FRANCE: Any = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(autouse=True)
def _org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")


@pytest.fixture
def server() -> Iterator[OpenAIProtocolServer]:
    with OpenAIProtocolServer(bundled_recordings()) as running:
        yield running


class FakeLLM:
    """A stand-in LLM client (not under test) returning OpenAI-shaped dicts."""

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, *, model: str, prompt: str, temperature: float = 1.0, **_: Any) -> Any:
        self.calls += 1
        return {
            "id": f"cmpl-{self.calls}",
            "model": f"{model}-2024-07-18",
            "choices": [{"text": f"echo {prompt}", "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 40},
            },
        }

    async def acomplete(self, *, model: str, prompt: str) -> Any:
        await asyncio.sleep(0)
        return self.complete(model=model, prompt=prompt)


def _one_node(fn: Any) -> CodonWorkload:
    wl = CodonWorkload(name="tracked", version="1.0.0", enable_tracing=True)
    wl.add_node(fn, "ask", "llm")
    return wl


def _effects(report: Any) -> list[Any]:
    return [e for e in report.events() if e.type == EFFECT_RECORDED]


def test_public_surface_is_sorted_and_documented() -> None:
    """codon_sdk.llm exports track_llm, track_llm_async and the price table API."""
    assert llm.__all__ == sorted(llm.__all__)
    assert {"track_llm", "track_llm_async", "set_model_price", "PRICES"} <= set(llm.__all__)


def test_track_llm_in_a_node_records_an_effect_with_usage_and_cost() -> None:
    """The call is a span and an effect: model, usage (cached too), cost, request parameters."""
    fake = FakeLLM()

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = track_llm(fake.complete, model="gpt-4o-mini", prompt=message, temperature=0.3)
        return reply["choices"][0]["text"]

    with capture_spans() as captured:
        report = _one_node(ask).execute("hi", deployment_id="dev")
    assert report.node_results("ask") == ["echo hi"]
    span = captured.one("chat gpt-4o-mini")
    assert span.kind is SpanKind.CLIENT
    got = dict(span.attributes or {})
    assert got["gen_ai.provider.name"] == "unknown"
    assert got["gen_ai.request.temperature"] == 0.3
    assert got["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert got["gen_ai.usage.input_tokens"] == 100
    assert got["gen_ai.usage.cache_read.input_tokens"] == 40
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    [effect] = _effects(report)
    assert effect.metadata["name"] == "llm.FakeLLM.complete"
    meta = effect.metadata["llm"]
    assert meta["request"] == {"model": "gpt-4o-mini", "prompt": "hi", "temperature": 0.3}
    assert meta["usage"]["cached_input_tokens"] == 40
    expected = (60 * 0.15 + 40 * 0.075 + 20 * 0.60) / 1e6
    assert meta["cost_usd"] == pytest.approx(expected)
    assert report.usage["total"]["cost_usd"] == pytest.approx(expected)


def test_replay_serves_the_recorded_result_without_calling_the_function() -> None:
    """On replay the recorded result comes back; the LLM function is not called."""
    fake = FakeLLM()

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return track_llm(fake.complete, model="gpt-4o-mini", prompt=message)["id"]

    store = MemoryStore()
    wl = _one_node(ask)
    report = wl.execute("hi", deployment_id="dev", store=store)
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert fake.calls == 1


def test_replay_of_a_changed_prompt_reports_the_request_and_serves_the_recording() -> None:
    """The request (llm.request, kept once) is compared: another prompt is ``request changed``;
    ``live=["ask"]`` calls the function again with today's prompt."""
    fake = FakeLLM()
    prompt = {"text": "hi"}

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return track_llm(fake.complete, model="gpt-4o-mini", prompt=prompt["text"])["id"]

    store = MemoryStore()
    wl = _one_node(ask)
    report = wl.execute(None, deployment_id="dev", store=store)
    [effect] = _effects(report)
    assert effect.metadata["request"] == {"value_at": "llm.request"}
    prompt["text"] = "hello"
    replay = wl.replay(report.run_id, store=store)
    assert [d.what for d in replay.divergences] == ["request changed"]
    assert replay.divergences[0].differences == ("$['prompt']: recorded 'hi', replay 'hello'",)
    assert fake.calls == 1
    live = wl.replay(report.run_id, store=store, live=["ask"])
    assert fake.calls == 2
    assert live.report is not None
    assert live.report.node_results("ask") == ["cmpl-2"]


def test_track_llm_async_records_and_replays() -> None:
    """The async twin awaits the function; the replay serves the result."""
    fake = FakeLLM()

    async def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = await track_llm_async(fake.acomplete, model="gpt-4.1-mini", prompt=message)
        return reply["model"]

    store = MemoryStore()
    wl = _one_node(ask)
    report = wl.execute("hi", deployment_id="dev", store=store)
    assert report.node_results("ask") == ["gpt-4.1-mini-2024-07-18"]
    assert _effects(report)[0].metadata["llm"]["cost_usd"] is not None
    assert wl.replay(report.run_id, store=store).identical
    assert fake.calls == 1


def test_errors_are_recorded_and_raised_again_on_replay() -> None:
    """An LLM function's exception is recorded and re-raised (same class) by the replay."""
    seen: list[str] = []

    def flaky(*, model: str) -> Any:
        raise TimeoutError("model busy")

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            track_llm(flaky, model="gpt-4o")
        except TimeoutError as exc:
            seen.append(str(exc))
        return "fallback"

    store = MemoryStore()
    wl = _one_node(ask)
    with capture_spans() as captured:
        report = wl.execute("hi", deployment_id="dev", store=store)
    span = captured.one("chat gpt-4o")
    assert dict(span.attributes or {})["error.type"] == "TimeoutError"
    assert span.status.status_code is StatusCode.ERROR
    assert _effects(report)[0].metadata["error"]["type"] == "builtins:TimeoutError"
    assert wl.replay(report.run_id, store=store).identical
    assert seen == ["model busy", "model busy"]


def test_outside_a_node_the_call_is_traced_only() -> None:
    """No run: the span, the result, nothing recorded."""
    fake = FakeLLM()
    with capture_spans() as captured:
        assert track_llm(fake.complete, model="gpt-4o-mini", prompt="x")["id"] == "cmpl-1"
    assert captured.names() == ["chat gpt-4o-mini"]


def test_credentials_are_neither_recorded_nor_shown() -> None:
    """api_key and headers keyword arguments stay out of the ledger; their values are scrubbed."""

    def complete(*, model: str, prompt: str, **credentials: Any) -> Any:
        return {"model": model, "text": "noted", "usage": {"input_tokens": 9, "output_tokens": 1}}

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        track_llm(
            complete,
            model="gpt-4o-mini",
            prompt=f"my key is {SECRET}",
            api_key=SECRET,
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        return "ok"

    with capture_spans() as captured:
        report = _one_node(ask).execute("hi", deployment_id="dev")
    request = _effects(report)[0].metadata["llm"]["request"]
    assert request == {"model": "gpt-4o-mini", "prompt": "my key is <redacted>"}
    assert all(SECRET not in bytes(e).decode() for e in report.entries)
    assert all(SECRET not in repr(s.attributes) for s in captured.spans)


def test_embeddings_results_make_an_embeddings_span() -> None:
    """A result holding embedding vectors is an embeddings operation."""

    def embed(*, model: str, input: list[str]) -> Any:
        data = [{"index": i, "embedding": [0.1, 0.2]} for i, _ in enumerate(input)]
        return {"model": model, "data": data, "usage": {"prompt_tokens": 4, "total_tokens": 4}}

    with capture_spans() as captured:
        track_llm(embed, model="text-embedding-3-small", input=["a", "b"])
    span = captured.one("embeddings text-embedding-3-small")
    assert dict(span.attributes or {})["gen_ai.operation.name"] == "embeddings"


def test_langchain_shaped_usage_is_read() -> None:
    """usage_metadata with input_token_details.cache_read and output_token_details.reasoning."""

    def chat(*, model: str) -> Any:
        return {
            "content": "hi",
            "response_metadata": {"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
            "usage_metadata": {
                "input_tokens": 50,
                "output_tokens": 30,
                "input_token_details": {"cache_read": 10},
                "output_token_details": {"reasoning": 5},
            },
        }

    with capture_spans() as captured:
        track_llm(chat, model="gpt-4o-mini")
    got = dict(captured.one("chat gpt-4o-mini").attributes or {})
    assert got["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert (got["gen_ai.usage.input_tokens"], got["gen_ai.usage.output_tokens"]) == (50, 30)
    assert got["gen_ai.usage.cache_read.input_tokens"] == 10
    assert got["gen_ai.usage.reasoning.output_tokens"] == 5
    assert got["gen_ai.response.finish_reasons"] == ("stop",)


def test_an_instrumented_openai_method_is_traced_once(server: OpenAIProtocolServer) -> None:
    """track_llm(client.chat.completions.create, ...) with the instrumentation on: one span,
    one effect (the instrumentation's), and the provider is openai."""
    instrument_openai()
    try:
        with openai.OpenAI(base_url=server.base_url, api_key=SECRET, max_retries=0) as client:

            def ask(message: Any, *, runtime: Any, context: Any) -> Any:
                reply = track_llm(
                    client.chat.completions.create, model="gpt-4o-mini", messages=FRANCE
                )
                return reply.choices[0].message.content

            with capture_spans() as captured:
                report = _one_node(ask).execute("hi", deployment_id="dev")
    finally:
        uninstrument_openai()
    assert captured.names().count("chat gpt-4o-mini") == 1
    assert [e.metadata["name"] for e in _effects(report)] == ["openai.chat"]


def test_an_openai_call_inside_a_tracked_function_is_traced_once(
    server: OpenAIProtocolServer,
) -> None:
    """A user function wrapping an instrumented client: the outer track_llm owns the span."""
    instrument_openai()
    try:
        with openai.OpenAI(base_url=server.base_url, api_key=SECRET, max_retries=0) as client:

            def answer(*, model: str) -> Any:
                return client.chat.completions.create(model=model, messages=FRANCE)

            with capture_spans() as captured:
                reply = track_llm(answer, model="gpt-4o-mini")
    finally:
        uninstrument_openai()
    assert captured.names() == ["chat gpt-4o-mini"]
    got = dict(captured.one("chat gpt-4o-mini").attributes or {})
    assert got["gen_ai.provider.name"] == "openai"  # learnt from the result's type
    assert got["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens


def test_an_async_function_given_to_track_llm_is_a_type_error() -> None:
    """track_llm on a coroutine function asks for track_llm_async instead."""
    fake = FakeLLM()
    with pytest.raises(TypeError, match="track_llm_async"):
        track_llm(fake.acomplete, model="gpt-4o-mini", prompt="x")


def test_a_non_callable_is_a_type_error() -> None:
    """The first argument must be callable."""
    with pytest.raises(TypeError, match="callable"):
        track_llm("gpt-4o-mini")  # type: ignore[arg-type]
