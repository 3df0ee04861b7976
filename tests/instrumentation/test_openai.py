"""OpenAI instrumentation: patching, GenAI spans and metrics, content capture, secrets.

The real ``openai`` client talks HTTP to the OpenAI-protocol server on loopback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.resources.chat import AsyncCompletions, Completions
from openai.resources.embeddings import AsyncEmbeddings, Embeddings
from openai.resources.responses import AsyncResponses, Responses
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

import codon.instrumentation.openai as codon_openai
from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk.stores import MemoryStore
from codon_sdk.telemetry._metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from codon_sdk.testing import OpenAIProtocolServer, Recording, capture_spans, echo_fallback

from ._openai_support import (
    API_KEY,
    FOX,
    FRANCE,
    FRANCE_ANSWER,
    HAIKU,
    WEATHER,
    async_client,
    attrs,
    effects,
    histogram_points,
    instrumented,
    meter,
    serving,
    sync_client,
    workload,
)

PATCHED = [
    (Completions, "create"),
    (AsyncCompletions, "create"),
    (Responses, "create"),
    (AsyncResponses, "create"),
    (Embeddings, "create"),
    (AsyncEmbeddings, "create"),
]


@pytest.fixture(autouse=True)
def _org(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    yield
    uninstrument_openai()


@pytest.fixture
def server() -> Iterator[OpenAIProtocolServer]:
    with serving() as running:
        yield running


@pytest.fixture
def client(server: OpenAIProtocolServer) -> Iterator[openai.OpenAI]:
    with sync_client(server) as c:
        yield c


# ---------------------------------------------------------------- patching


def test_public_surface_is_instrument_and_uninstrument() -> None:
    """``codon.instrumentation.openai`` exports exactly its two documented names, sorted."""
    assert codon_openai.__all__ == ["instrument_openai", "uninstrument_openai"]


def test_uninstrument_restores_the_very_original_methods() -> None:
    """instrument patches create on every resource class; uninstrument puts back the same
    function objects (identity, not just equality)."""
    originals = [cls.__dict__[name] for cls, name in PATCHED]
    instrument_openai()
    assert all(
        cls.__dict__[name] is not orig for (cls, name), orig in zip(PATCHED, originals, strict=True)
    )
    uninstrument_openai()
    assert [cls.__dict__[name] for cls, name in PATCHED] == originals
    assert all(
        cls.__dict__[name] is orig for (cls, name), orig in zip(PATCHED, originals, strict=True)
    )


def test_instrument_twice_is_idempotent(client: openai.OpenAI) -> None:
    """A second instrument_openai() patches nothing again: one call, one span."""
    originals = [cls.__dict__[name] for cls, name in PATCHED]
    instrument_openai()
    patched = [cls.__dict__[name] for cls, name in PATCHED]
    instrument_openai()
    assert [cls.__dict__[name] for cls, name in PATCHED] == patched
    with capture_spans() as captured:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert captured.names() == ["chat gpt-4o-mini"]
    uninstrument_openai()
    assert [cls.__dict__[name] for cls, name in PATCHED] == originals


def test_one_client_can_be_instrumented_alone(server: OpenAIProtocolServer) -> None:
    """instrument_openai(client) traces that client only; uninstrument_openai(client) undoes it."""
    with sync_client(server) as mine, sync_client(server) as other:
        instrument_openai(mine)
        assert Completions.__dict__["create"].__name__ == "create"
        with capture_spans() as captured:
            mine.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
            other.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        assert captured.names() == ["chat gpt-4o-mini"]
        uninstrument_openai(mine)
        assert "create" not in vars(mine.chat.completions)
        with capture_spans() as captured:
            mine.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        assert captured.names() == []


def test_a_dropped_instrumented_client_is_not_kept_alive(server: OpenAIProtocolServer) -> None:
    """Per-client patches hold their client weakly: instrumenting clients leaks nothing."""
    import weakref

    from codon.instrumentation.openai import _patch

    client = sync_client(server)
    instrument_openai(client)
    assert len(_patch._client_patches) == 3
    ref = weakref.ref(client)
    client.close()
    del client
    gc.collect()
    assert ref() is None
    assert len(_patch._client_patches) == 0


def test_class_and_client_instrumentation_together_give_one_span(client: openai.OpenAI) -> None:
    """Instrumenting all clients and one client does not trace a call twice."""
    instrument_openai()
    instrument_openai(client)
    with capture_spans() as captured:
        client.embeddings.create(model="text-embedding-3-small", input=FOX)
    assert captured.names() == ["embeddings text-embedding-3-small"]


def test_instrument_rejects_what_is_not_an_openai_client() -> None:
    """A wrong argument is a TypeError that names what was given."""
    with pytest.raises(TypeError, match=r"openai\.OpenAI or openai\.AsyncOpenAI.*builtins\.str"):
        instrument_openai("client")  # type: ignore[arg-type]


# ---------------------------------------------------------------- spans


def test_chat_call_in_a_node_is_a_client_span_under_the_node_span(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """`chat <model>` CLIENT span, child of codon.node.<name>, with the GenAI attributes."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=FRANCE,
            max_tokens=64,
            temperature=0.2,
            top_p=0.9,
            seed=7,
            stop=["\n\n"],
            frequency_penalty=0.1,
            presence_penalty=0.0,
        )
        return reply.choices[0].message.content

    with instrumented(), capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    assert report.node_results("ask") == [FRANCE_ANSWER]
    span = captured.one("chat gpt-4o-mini")
    node = captured.one("codon.node.ask")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert node.context is not None
    assert span.parent.span_id == node.context.span_id
    got = attrs(span)
    assert got == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("\n\n",),
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.0,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": got["gen_ai.response.id"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 27,
        "gen_ai.usage.output_tokens": 8,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "codon.gen_ai.cost.usd": pytest.approx((27 * 0.15 + 8 * 0.60) / 1e6),
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": got["openai.response.system_fingerprint"],
    }
    assert got["gen_ai.response.id"].startswith("chatcmpl-")
    assert not any(key.startswith("gen_ai.system") for key in got)
    assert span.status.status_code is StatusCode.UNSET


def test_responses_api_call_is_a_chat_span_with_cached_and_reasoning_tokens(
    client: openai.OpenAI,
) -> None:
    """The Responses API is gen_ai.operation.name=chat; cached input is cache_read tokens."""
    with instrumented(), capture_spans() as captured:
        response = client.responses.create(**HAIKU, max_output_tokens=500)
    assert response.output_text
    got = attrs(captured.one("chat o4-mini"))
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.request.max_tokens"] == 500
    assert got["gen_ai.response.model"] == "o4-mini-2025-04-16"
    assert got["gen_ai.response.id"] == response.id
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    assert got["gen_ai.usage.input_tokens"] == 1230
    assert got["gen_ai.usage.cache_read.input_tokens"] == 1152
    assert got["gen_ai.usage.output_tokens"] == 214
    assert got["gen_ai.usage.reasoning.output_tokens"] == 192
    expected = ((1230 - 1152) * 1.10 + 1152 * 0.275 + 214 * 4.40) / 1e6
    assert got["codon.gen_ai.cost.usd"] == pytest.approx(expected)


def test_tool_call_finish_reason_reaches_the_span(client: openai.OpenAI) -> None:
    """A Responses API function call finishes with tool_calls."""
    with instrumented(), capture_spans() as captured:
        client.responses.create(model="gpt-4.1-mini", input=WEATHER)
    got = attrs(captured.one("chat gpt-4.1-mini"))
    assert got["gen_ai.response.finish_reasons"] == ("tool_calls",)


def test_embeddings_span_has_input_usage_and_dimensions(client: openai.OpenAI) -> None:
    """`embeddings <model>` span: operation embeddings, input tokens, vector size, no finish."""
    with instrumented(), capture_spans() as captured:
        client.embeddings.create(model="text-embedding-3-small", input=FOX, encoding_format="float")
    got = attrs(captured.one("embeddings text-embedding-3-small"))
    assert got["gen_ai.operation.name"] == "embeddings"
    assert got["gen_ai.usage.input_tokens"] == 10
    assert "gen_ai.usage.output_tokens" not in got
    assert got["gen_ai.embeddings.dimension.count"] == 8
    assert got["gen_ai.request.encoding_formats"] == ("float",)
    assert "gen_ai.response.finish_reasons" not in got
    assert got["codon.gen_ai.cost.usd"] == pytest.approx(10 * 0.02 / 1e6)


def test_async_client_calls_get_the_same_spans(server: OpenAIProtocolServer) -> None:
    """AsyncOpenAI chat, Responses and embeddings calls are traced like sync ones."""

    async def scenario() -> None:
        async with async_client(server) as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
            await client.responses.create(**HAIKU)
            await client.embeddings.create(model="text-embedding-3-small", input=FOX)

    with instrumented(), capture_spans() as captured:
        asyncio.run(scenario())
    assert captured.names() == [
        "chat gpt-4o-mini",
        "chat o4-mini",
        "embeddings text-embedding-3-small",
    ]
    assert all(span.kind is SpanKind.CLIENT for span in captured.spans)
    assert attrs(captured.one("chat o4-mini"))["gen_ai.usage.output_tokens"] == 214


def test_message_content_stays_out_of_spans_by_default(client: openai.OpenAI) -> None:
    """Without the opt-in, no prompt or answer text is on the span."""
    with instrumented(), capture_spans() as captured:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        client.responses.create(**HAIKU)
    for span in captured.spans:
        text = repr(attrs(span))
        assert "France" not in text
        assert "Paris" not in text
        assert "haiku" not in text
        assert "gen_ai.input.messages" not in attrs(span)


def test_content_capture_env_puts_messages_on_spans(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true adds input/output messages."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with instrumented(), capture_spans() as captured:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        client.responses.create(**HAIKU)
    chat = attrs(captured.one("chat gpt-4o-mini"))
    assert json.loads(chat["gen_ai.input.messages"])[1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "What is the capital of France?"}],
    }
    assert json.loads(chat["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": FRANCE_ANSWER}],
            "finish_reason": "stop",
        }
    ]
    haiku = attrs(captured.one("chat o4-mini"))
    assert json.loads(haiku["gen_ai.system_instructions"]) == [
        {"type": "text", "content": HAIKU["instructions"]}
    ]
    assert "Waves fold into foam" in haiku["gen_ai.output.messages"]


def test_failed_call_sets_error_type_and_error_status(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A 500 raises InternalServerError as the client does; the span has error.type."""
    server.enqueue(Recording.server_error())
    with (
        instrumented(),
        capture_spans() as captured,
        pytest.raises(openai.InternalServerError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    span = captured.one("chat gpt-4o-mini")
    assert attrs(span)["error.type"] == "InternalServerError"
    assert span.status.status_code is StatusCode.ERROR


def test_calls_outside_a_node_are_traced_and_not_recorded(client: openai.OpenAI) -> None:
    """No Codon run around the call: a span, the client's answer, nothing else needed."""
    with instrumented(), capture_spans() as captured:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert reply.choices[0].message.content == FRANCE_ANSWER
    assert type(reply) is openai.types.chat.ChatCompletion
    assert captured.names() == ["chat gpt-4o-mini"]


def test_explicit_tracer_provider_receives_the_spans(client: openai.OpenAI) -> None:
    """instrument_openai(tracer_provider=p) sends the spans to p."""
    provider = TracerProvider()
    with (
        instrumented(tracer_provider=provider),
        capture_spans(tracer_provider=provider) as captured,
    ):
        client.embeddings.create(model="text-embedding-3-small", input=FOX)
    assert captured.names() == ["embeddings text-embedding-3-small"]


# ---------------------------------------------------------------- metrics


def test_token_usage_and_duration_metrics_use_the_spec_buckets(client: openai.OpenAI) -> None:
    """gen_ai.client.token.usage (input/output) and operation.duration with spec boundaries."""
    provider, reader = meter()
    with instrumented(meter_provider=provider):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    tokens = histogram_points(reader, "gen_ai.client.token.usage")
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert by_type["input"].sum == 27
    assert by_type["output"].sum == 8
    assert tuple(by_type["input"].explicit_bounds) == TOKEN_BUCKETS
    common = dict(by_type["input"].attributes)
    assert common["gen_ai.operation.name"] == "chat"
    assert common["gen_ai.provider.name"] == "openai"
    assert common["gen_ai.request.model"] == "gpt-4o-mini"
    assert common["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    [duration] = histogram_points(reader, "gen_ai.client.operation.duration")
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    assert duration.count == 1
    assert 0 < duration.sum < 10
    assert "error.type" not in duration.attributes


def test_failed_call_duration_carries_error_type(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """The duration of a failed call is recorded with error.type; no token usage."""
    provider, reader = meter()
    server.enqueue(Recording.rate_limit(retry_after=0.01))
    with instrumented(meter_provider=provider), pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    [duration] = histogram_points(reader, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "RateLimitError"
    assert histogram_points(reader, "gen_ai.client.token.usage") == []


# ---------------------------------------------------------------- hooks never break a call


class _BrokenTracerProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        raise RuntimeError("tracer backend down")


def test_a_broken_tracer_provider_never_fails_the_call(
    client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Telemetry failures are logged and swallowed; the answer still arrives."""
    with instrumented(tracer_provider=_BrokenTracerProvider()):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert reply.choices[0].message.content == FRANCE_ANSWER
    assert "could not start the GenAI span" in caplog.text


def test_unknown_model_has_no_cost_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """A model without a price: cost None (never 0) on the effect and report, one warning."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        for _ in range(2):
            client.chat.completions.create(model="acme-llm-9", messages=FRANCE)
        return "ok"

    caplog.set_level(logging.WARNING, logger="codon_sdk.telemetry.cost")
    with (
        OpenAIProtocolServer(fallback=echo_fallback) as server,
        sync_client(server) as client,
        instrumented(),
    ):
        report = workload(("ask", ask), tracing=False).execute("go", deployment_id="dev")
    assert [e.metadata["llm"]["cost_usd"] for e in effects(report)] == [None, None]
    assert report.usage["total"]["cost_usd"] is None
    assert report.usage["total"]["cost_complete"] is False
    warnings = [r for r in caplog.records if "acme-llm-9" in r.getMessage()]
    assert len(warnings) == 1


# ---------------------------------------------------------------- secrets


def test_api_key_never_appears_in_spans_ledger_logs_or_exceptions(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the server echoes the key in an error, spans, ledger, logs and the raised
    and replayed exceptions never hold it (content capture on, to look everywhere)."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    caplog.set_level(logging.DEBUG)
    echoed = Recording.error(
        401,
        f"Incorrect API key provided: {API_KEY}. You can find your API key at ...",
        type="invalid_request_error",
        code="invalid_api_key",
    )
    raised: list[BaseException] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True))
        client.embeddings.create(model="text-embedding-3-small", input=FOX)
        server.enqueue(echoed)  # the next chat call gets a 401 that echoes the key
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        except openai.AuthenticationError as exc:
            raised.append(exc)
            return exc.status_code
        return None

    store = MemoryStore()
    wl = workload(("ask", ask))
    with instrumented():
        with serving() as server, sync_client(server) as client, capture_spans() as captured:
            report = wl.execute("go", deployment_id="dev", store=store)
        with capture_spans() as replayed_spans:  # the server is stopped: served from the ledger
            replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert report.node_results("ask") == [401]
    assert len(raised) == 2  # the live error and the one rebuilt by the replay
    haystacks = [repr(attrs(s)) + repr(s.status) + repr(s.events) for s in captured.spans]
    haystacks += [repr(attrs(s)) + repr(s.status) for s in replayed_spans.spans]
    haystacks += [bytes(e).decode() for e in report.entries]
    haystacks += [caplog.text]
    for exc in raised:
        haystacks += [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "body", None))]
    assert all(API_KEY not in text for text in haystacks)
    assert "Incorrect API key provided: <redacted>" in str(raised[0])
