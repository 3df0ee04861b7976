"""The Anthropic instrumentation: patching, GenAI spans, usage with cache tokens, cost, secrets.

Every call goes through the real ``anthropic`` client to the local server that
speaks the Messages protocol from the bundled recordings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.resources.messages import AsyncMessages, Messages
from opentelemetry.trace import SpanKind, StatusCode

import codon.instrumentation.anthropic as codon_anthropic
from codon.instrumentation.anthropic import instrument_anthropic, uninstrument_anthropic
from codon_sdk.llm import model_price
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import (
    AnthropicProtocolServer,
    anthropic_error,
    anthropic_overloaded,
    anthropic_rate_limit,
    capture_spans,
)

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
from ._openai_support import attrs, workload

PATCHED = [
    (Messages, "create"),
    (AsyncMessages, "create"),
    (Messages, "stream"),
    (AsyncMessages, "stream"),
]


@pytest.fixture(autouse=True)
def _org(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    yield
    uninstrument_anthropic()


@pytest.fixture
def server() -> Iterator[AnthropicProtocolServer]:
    with serving() as running:
        yield running


@pytest.fixture
def client(server: AnthropicProtocolServer) -> Iterator[anthropic.Anthropic]:
    with sync_client(server) as c:
        yield c


# ---------------------------------------------------------------- patching


def test_the_module_exports_exactly_its_two_functions() -> None:
    """``codon.instrumentation.anthropic`` exports its two documented names, sorted."""
    assert codon_anthropic.__all__ == ["instrument_anthropic", "uninstrument_anthropic"]


def test_uninstrument_puts_back_the_very_functions_it_replaced() -> None:
    """create and stream, sync and async, are wrapped and then restored exactly."""
    originals = [vars(cls)[name] for cls, name in PATCHED]
    instrument_anthropic()
    instrument_anthropic()  # twice: still one wrapper each
    pairs = zip(PATCHED, originals, strict=True)
    assert all(vars(cls)[name] is not original for (cls, name), original in pairs)
    uninstrument_anthropic()
    assert [vars(cls)[name] for cls, name in PATCHED] == originals


def test_one_client_can_be_instrumented_alone(server: AnthropicProtocolServer) -> None:
    """instrument_anthropic(client) traces that client only, and uninstrumenting it undoes it."""
    with sync_client(server) as mine, sync_client(server) as other:
        instrument_anthropic(mine)
        with capture_spans() as captured:
            mine.messages.create(**FRANCE)
            other.messages.create(**FRANCE)
        assert captured.names() == ["chat claude-sonnet-4-5"]
        uninstrument_anthropic(mine)
        assert "create" not in vars(mine.messages)
        with capture_spans() as captured:
            mine.messages.create(**FRANCE)
        assert captured.names() == []


def test_instrument_rejects_what_is_not_an_anthropic_client() -> None:
    """A wrong argument is a TypeError naming the entry point, what it takes and what came."""
    with pytest.raises(
        TypeError, match=r"instrument_anthropic\(client\) takes an anthropic\.Anthropic.*str"
    ):
        instrument_anthropic("client")  # type: ignore[arg-type]


# ---------------------------------------------------------------- spans


def test_a_call_in_a_node_is_a_chat_client_span_under_the_node_span(
    client: anthropic.Anthropic, server: AnthropicProtocolServer
) -> None:
    """`chat <model>` CLIENT span, child of codon.node.<name>, with the GenAI attributes."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        reply = client.messages.create(**FRANCE, stop_sequences=["\n\n"])
        return reply.content[0].text

    with instrumented(), capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    assert report.node_results("ask") == [FRANCE_ANSWER]
    span = captured.one("chat claude-sonnet-4-5")
    node = captured.one("codon.node.ask")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert node.context is not None
    assert span.parent.span_id == node.context.span_id
    assert attrs(span) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.stop_sequences": ("\n\n",),
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "codon.gen_ai.cost.usd": pytest.approx(FRANCE_COST),
    }
    assert span.status.status_code is StatusCode.UNSET


def test_cache_reads_and_writes_count_as_input_and_are_priced_apart(
    client: anthropic.Anthropic,
) -> None:
    """input_tokens on the span includes cache reads and writes; each has its own price."""
    with instrumented(), capture_spans() as captured:
        reply = client.messages.create(**SUPPORT)
    assert reply.usage.cache_read_input_tokens == 2048
    got = attrs(captured.one("chat claude-opus-4-1"))
    assert got["gen_ai.usage.input_tokens"] == 18 + 1536 + 2048
    assert got["gen_ai.usage.cache_read.input_tokens"] == 2048
    assert got["gen_ai.usage.cache_creation.input_tokens"] == 1536
    assert got["gen_ai.usage.output_tokens"] == 39
    assert got["codon.gen_ai.cost.usd"] == pytest.approx(SUPPORT_COST)


def test_a_tool_use_answer_finishes_with_tool_use(client: anthropic.Anthropic) -> None:
    """stop_reason is the finish reason; the answer holds the tool call."""
    with instrumented(), capture_spans() as captured:
        reply = client.messages.create(**WEATHER)
    assert reply.content[1].type == "tool_use"
    got = attrs(captured.one("chat claude-haiku-4-5"))
    assert got["gen_ai.response.finish_reasons"] == ("tool_use",)
    expected = (412 * 1.00 + 71 * 5.00) / 1e6
    assert got["codon.gen_ai.cost.usd"] == pytest.approx(expected)


def test_async_calls_are_traced_like_sync_ones(server: AnthropicProtocolServer) -> None:
    """AsyncAnthropic's messages.create gets the same span."""

    async def go() -> str:
        async with async_client(server) as client:
            reply = await client.messages.create(**FRANCE)
            return str(reply.content[0].text)

    with instrumented(), capture_spans() as captured:
        assert asyncio.run(go()) == FRANCE_ANSWER
    got = attrs(captured.one("chat claude-sonnet-4-5"))
    assert got["gen_ai.usage.output_tokens"] == 10


def test_content_is_on_spans_only_when_capture_is_on(client: anthropic.Anthropic) -> None:
    """System, input and output messages (tool calls too) in the GenAI JSON form, when asked."""
    with instrumented(), capture_spans() as captured:
        client.messages.create(**FRANCE)
    assert not any(k.startswith("gen_ai.input") for k in attrs(captured.spans[0]))
    with instrumented(capture_content=True), capture_spans() as captured:
        client.messages.create(**FRANCE)
        client.messages.create(**WEATHER)
    france, weather = (attrs(s) for s in captured.spans)
    assert '"content": "What is the capital of France?"' in france["gen_ai.input.messages"]
    assert "concise geography assistant" in france["gen_ai.system_instructions"]
    assert FRANCE_ANSWER in france["gen_ai.output.messages"]
    assert '"name": "get_weather"' in weather["gen_ai.output.messages"]
    assert '"finish_reason": "tool_use"' in weather["gen_ai.output.messages"]


def test_api_errors_end_the_span_with_their_type(
    client: anthropic.Anthropic, server: AnthropicProtocolServer
) -> None:
    """429, 529 and 400 are raised as the client raises them; the span says error.type."""
    server.enqueue(anthropic_rate_limit(0.5), anthropic_overloaded())
    server.enqueue(anthropic_error(400, "max_tokens: Field required", type="invalid_request_error"))
    raised = []
    with instrumented(), capture_spans() as captured:
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError) as info:
                client.messages.create(**FRANCE)
            raised.append(info.value)
    assert [type(e) for e in raised] == [
        anthropic.RateLimitError,
        anthropic.OverloadedError,
        anthropic.BadRequestError,
    ]
    assert raised[1].status_code == 529
    kinds = [attrs(s)["error.type"] for s in captured.spans]
    assert kinds == ["RateLimitError", "OverloadedError", "BadRequestError"]
    assert all(s.status.status_code is StatusCode.ERROR for s in captured.spans)


def test_the_clients_own_span_nests_under_the_genai_span(server: AnthropicProtocolServer) -> None:
    """With the client's tracing on, its span is a child of ours: one tree per call."""
    with (
        sync_client(server, open_telemetry=None) as client,
        instrumented(),
        capture_spans() as captured,
    ):
        client.messages.create(**FRANCE)
    ours = captured.one("chat claude-sonnet-4-5")
    [theirs] = [s for s in captured.spans if s is not ours]
    assert theirs.parent is not None
    assert ours.context is not None
    assert theirs.parent.span_id == ours.context.span_id


def test_claude_snapshots_resolve_to_their_family_price() -> None:
    """Dated Claude ids (8-digit suffix) and the -latest aliases have a price."""
    for model in (
        "claude-opus-4-5-20251101",
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-sonnet-20241022",
        "claude-3-5-haiku-20241022",
        "claude-3-5-haiku-latest",
    ):
        assert model_price(model) is not None, model
    opus = model_price("claude-opus-4-5-20251101")
    assert opus is not None
    assert (opus.input, opus.cache_write, opus.cached_input, opus.output) == (5.0, 6.25, 0.5, 25.0)


# ---------------------------------------------------------------- secrets


def test_api_key_never_appears_in_spans_ledger_logs_or_exceptions(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the server echoes the key in an error, spans, ledger, logs and the raised
    and replayed exceptions never hold it (content capture on, to look everywhere)."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    caplog.set_level(logging.DEBUG)
    echoed = anthropic_error(401, f"invalid x-api-key: {API_KEY}", type="authentication_error")
    raised: list[BaseException] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        client.messages.create(**FRANCE)
        list(client.messages.create(**FRANCE, stream=True))
        with client.messages.stream(**WEATHER) as stream:
            stream.get_final_message()
        server.enqueue(echoed)  # the next call gets a 401 that echoes the key
        try:
            client.messages.create(**FRANCE)
        except anthropic.AuthenticationError as exc:
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
    assert "invalid x-api-key: <redacted>" in str(raised[0])
