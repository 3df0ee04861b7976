"""Streamed OpenAI calls: the span ends exactly once and the stream is recorded however it ends.

Exhausted, closed early (close(), ``with``, the response, garbage collection) or
failed midway; sync and async; ``stream=True`` and the client's ``.stream()``
helpers. Replays serve a stand-in stream from the ledger with the server stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from codon.instrumentation.openai import uninstrument_openai
from codon_sdk.stores import MemoryStore
from codon_sdk.testing import SpanCapture, bundled_recordings, capture_spans

from ._openai_support import (
    API_KEY,
    FRANCE,
    FRANCE_ANSWER,
    HAIKU,
    HAIKU_TEXT,
    attrs,
    effects,
    instrumented,
    serving,
    sync_client,
    workload,
)

FRANCE_RECORDING = bundled_recordings("chat_completions")[0]


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    caplog.set_level(logging.WARNING, logger="opentelemetry")
    with instrumented():
        yield
    uninstrument_openai()
    # the OpenTelemetry SDK logs a warning when a span is ended a second time
    logged = " ".join(r.getMessage() for r in caplog.get_records("call")).lower()
    assert "on an ended span" not in logged


def _one_span(captured: SpanCapture, name: str = "chat gpt-4o-mini") -> dict[str, Any]:
    return attrs(captured.one(name))


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_exhausted_stream_records_every_chunk_and_its_usage() -> None:
    """Read to the end: one span with usage, one effect with outcome completed."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=FRANCE,
            stream=True,
            stream_options={"include_usage": True},
        )
        return _text(list(stream))

    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    assert report.node_results("ask") == [FRANCE_ANSWER]
    span = _one_span(captured)
    assert span["gen_ai.usage.input_tokens"] == 27
    assert span["gen_ai.usage.output_tokens"] == 8
    assert span["gen_ai.response.finish_reasons"] == ("stop",)
    assert span["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    [effect] = effects(report)
    assert effect.metadata["name"] == "openai.chat.stream"
    assert effect.metadata["stream"] == {"outcome": "completed", "chunks": 10}
    assert effect.metadata["llm"]["usage"]["output_tokens"] == 8
    assert report.usage["total"]["cost_usd"] == pytest.approx((27 * 0.15 + 8 * 0.60) / 1e6)


def test_stream_without_usage_chunk_has_unknown_usage_and_no_cost() -> None:
    """Without stream_options.include_usage the tokens are unknown: no cost, not zero."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True)
        return _text(list(stream))

    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    [effect] = effects(report)
    assert effect.metadata["llm"]["usage"]["input_tokens"] is None
    assert effect.metadata["llm"]["cost_usd"] is None
    assert "gen_ai.usage.input_tokens" not in _one_span(captured)


@pytest.mark.parametrize("how", ["close", "with-break", "response-close", "garbage"])
def test_stream_closed_early_records_what_was_consumed(how: str) -> None:
    """Stopped after two chunks: the span ends once, the effect holds the two, marked closed;
    the replay serves those two chunks."""
    consumed: list[list[str]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True)
        got: list[Any] = []
        if how == "with-break":
            with stream:
                for chunk in stream:
                    got.append(chunk)
                    if len(got) == 2:
                        break
        else:
            got = [next(stream), next(stream)]
            if how == "close":
                stream.close()
            elif how == "response-close":
                stream.response.close()
            else:
                del stream
                gc.collect()
        consumed.append([c.choices[0].delta.content for c in got])
        return len(got)

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = wl.execute("go", deployment_id="dev", store=store)
    span = captured.one("chat gpt-4o-mini")
    assert span.status.status_code is StatusCode.UNSET
    [effect] = effects(report)
    assert effect.metadata["stream"] == {"outcome": "closed", "chunks": 2}
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert consumed[0] == consumed[1]


def test_stream_failing_midway_records_the_error_and_replays_it() -> None:
    """The connection is cut after three chunks: APIConnectionError surfaces as the client
    raises it, the span gets error.type, and the replay raises it after the same chunks."""
    outcomes: list[tuple[int, str]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        got = []
        try:
            for chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=FRANCE, stream=True
            ):
                got.append(chunk)
        except openai.APIConnectionError as exc:
            outcomes.append((len(got), type(exc).__name__))
        return len(got)

    store = MemoryStore()
    wl = workload(("ask", ask))
    with (
        serving(FRANCE_RECORDING.cut(3)) as server,
        sync_client(server) as client,
        capture_spans() as captured,
    ):
        report = wl.execute("go", deployment_id="dev", store=store)
    span = captured.one("chat gpt-4o-mini")
    assert attrs(span)["error.type"] == "APIConnectionError"
    assert span.status.status_code is StatusCode.ERROR
    [effect] = effects(report)
    assert effect.metadata["stream"] == {"outcome": "failed", "chunks": 3}
    assert effect.metadata["openai_error"]["type"] == "openai:APIConnectionError"
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert outcomes == [(3, "APIConnectionError"), (3, "APIConnectionError")]


def test_replayed_stream_behaves_like_the_clients() -> None:
    """The stand-in stream supports iteration, with, close() and .response like the real one."""
    kinds: list[str] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True)
        kinds.append(type(stream).__name__)
        with stream:
            text = _text(list(stream))
        stream.close()
        stream.response.close()
        return text

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client:
        report = wl.execute("go", deployment_id="dev", store=store)
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert replay.report is not None
    assert replay.report.node_results("ask") == [FRANCE_ANSWER]
    assert kinds == ["InstrumentedStream", "ReplayStream"]


def test_stream_helpers_end_one_span_and_replay() -> None:
    """chat.completions.stream() and responses.stream() build on the instrumented stream."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=FRANCE) as chat:
            completion = chat.get_final_completion()
        with client.responses.stream(**HAIKU) as events:
            for _ in events:
                pass
            response = events.get_final_response()
        return [completion.choices[0].message.content, response.output_text]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert report.node_results("ask") == [[FRANCE_ANSWER, HAIKU_TEXT]]
    assert _one_span(captured)["gen_ai.response.finish_reasons"] == ("stop",)
    haiku = _one_span(captured, "chat o4-mini")
    assert haiku["gen_ai.usage.reasoning.output_tokens"] == 192
    assert [e.metadata["stream"]["outcome"] for e in effects(report)] == ["completed"] * 2
    with capture_spans() as replayed:
        replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert replayed.one("chat o4-mini").attributes["codon.ledger.effect_served"] is True


def test_responses_stream_outside_a_node_is_traced_once() -> None:
    """A Responses API stream read to the end outside any run: one span with the usage."""
    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        events = list(client.responses.create(**HAIKU, stream=True))
    assert events[-1].type == "response.completed"
    span = _one_span(captured, "chat o4-mini")
    assert span["gen_ai.usage.input_tokens"] == 1230
    assert span["gen_ai.response.id"] == events[-1].response.id


def test_async_streams_exhausted_and_closed_early_then_replayed() -> None:
    """AsyncOpenAI streams: async for to the end, aclose after one chunk; replayed offline."""

    async def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        async with openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=FRANCE, stream=True
            )
            text = _text([chunk async for chunk in stream])
            events = await client.responses.create(**HAIKU, stream=True)
            first = await events.__anext__()
            await events.close()
        return [text, first.type]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, capture_spans() as captured:
        url = server.base_url
        report = wl.execute("go", deployment_id="dev", store=store)
    assert report.node_results("ask") == [[FRANCE_ANSWER, "response.created"]]
    assert len(captured.by_name("chat gpt-4o-mini")) == 1
    assert len(captured.by_name("chat o4-mini")) == 1
    assert [e.metadata["stream"] for e in effects(report)] == [
        {"outcome": "completed", "chunks": 9},  # no usage chunk without include_usage
        {"outcome": "closed", "chunks": 1},
    ]
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()


def test_async_stream_helper_works_through_the_instrumentation() -> None:
    """AsyncOpenAI chat.completions.stream() reads the instrumented async stream."""

    async def scenario(url: str) -> str | None:
        client = openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0)
        async with (
            client,
            client.chat.completions.stream(model="gpt-4o-mini", messages=FRANCE) as stream,
        ):
            completion = await stream.get_final_completion()
        return completion.choices[0].message.content

    with serving() as server, capture_spans() as captured:
        assert asyncio.run(scenario(server.base_url)) == FRANCE_ANSWER
    assert captured.names() == ["chat gpt-4o-mini"]
