"""Streamed Anthropic calls: the span ends exactly once and the stream is recorded however it ends.

``stream=True`` and the ``messages.stream()`` helper, sync and async: exhausted,
closed early or cut midway by the server. Replays serve the recorded raw events
with the server stopped, and the helper rebuilds the same final message from them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from codon_sdk.stores import MemoryStore
from codon_sdk.testing import bundled_anthropic_recordings, capture_spans

from ._anthropic_support import (
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
from ._openai_support import attrs, effects, workload

FRANCE_RECORDING = bundled_anthropic_recordings("messages")[0]


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    caplog.set_level(logging.WARNING, logger="opentelemetry")
    with instrumented():
        yield
    # the OpenTelemetry SDK logs a warning when a span is ended a second time
    logged = " ".join(r.getMessage() for r in caplog.get_records("call")).lower()
    assert "on an ended span" not in logged


def _text(events: list[Any]) -> str:
    return "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


def test_an_exhausted_stream_records_every_event_with_usage_and_cost() -> None:
    """Read to the end: one span with usage from message_start and message_delta, one effect."""

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return _text(list(client.messages.create(**FRANCE, stream=True)))

    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = workload(("ask", ask)).execute("go", deployment_id="dev")
    assert report.node_results("ask") == [FRANCE_ANSWER]
    span = attrs(captured.one("chat claude-sonnet-4-5"))
    assert span["gen_ai.usage.input_tokens"] == 21
    assert span["gen_ai.usage.output_tokens"] == 10
    assert span["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert span["gen_ai.response.id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    [effect] = effects(report)
    assert effect.metadata["name"] == "anthropic.messages.stream"
    assert effect.metadata["stream"]["outcome"] == "completed"
    assert effect.metadata["stream"]["chunks"] > 5
    assert report.usage["total"]["cost_usd"] == pytest.approx(FRANCE_COST)


def test_the_stream_helper_is_recorded_and_replayed_offline() -> None:
    """messages.stream(): the final message (tool call included) is the same on replay."""
    finals: list[Any] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        with client.messages.stream(**WEATHER) as stream:
            final = stream.get_final_message()
        with client.messages.stream(**SUPPORT) as stream:
            text = stream.get_final_text()
        finals.append(final)
        return [final.content[1].input, text[:6]]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = wl.execute("go", deployment_id="dev", store=store)
        assert server.requests[0].headers["x-stainless-helper-method"] == "stream"
    assert report.node_results("ask") == [
        [{"location": "Paris, France", "unit": "celsius"}, "Sorry,"]
    ]
    weather = attrs(captured.one("chat claude-haiku-4-5"))
    assert weather["gen_ai.response.finish_reasons"] == ("tool_use",)
    support = attrs(captured.one("chat claude-opus-4-1"))
    assert support["gen_ai.usage.cache_creation.input_tokens"] == 1536
    assert support["codon.gen_ai.cost.usd"] == pytest.approx(SUPPORT_COST)
    assert [e.metadata["name"] for e in effects(report)] == ["anthropic.messages.stream"] * 2
    with capture_spans() as replayed:
        replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    live, served = finals
    assert served == live
    assert attrs(replayed.one("chat claude-opus-4-1"))["codon.ledger.effect_served"] is True


@pytest.mark.parametrize("how", ["close", "with-break"])
def test_a_stream_closed_early_records_what_was_consumed(how: str) -> None:
    """Stopped after three events: the span ends once, the effect holds them, marked closed;
    the replay serves those three events."""
    consumed: list[list[str]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        stream = client.messages.create(**FRANCE, stream=True)
        got: list[Any] = []
        if how == "with-break":
            with stream:
                for event in stream:
                    got.append(event)
                    if len(got) == 3:
                        break
        else:
            got = [next(stream), next(stream), next(stream)]
            stream.close()
        consumed.append([e.type for e in got])
        return len(got)

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, sync_client(server) as client, capture_spans() as captured:
        report = wl.execute("go", deployment_id="dev", store=store)
    assert captured.one("chat claude-sonnet-4-5").status.status_code is StatusCode.UNSET
    [effect] = effects(report)
    assert effect.metadata["stream"] == {"outcome": "closed", "chunks": 3}
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    # the client drops the ping the server sends after message_start
    assert (
        consumed[0]
        == consumed[1]
        == ["message_start", "content_block_start", "content_block_delta"]
    )


def test_a_stream_cut_midway_fails_the_span_and_replays_the_same_error() -> None:
    """The server drops the connection after four SSE messages (a ping among them): the error
    propagates, is recorded with the three events read, and the replay raises the same class
    after the same events."""
    seen: list[tuple[int, str]] = []

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        got = 0
        try:
            for _ in client.messages.create(**FRANCE, stream=True):
                got += 1
        except anthropic.APIError as exc:
            seen.append((got, type(exc).__name__))
            return "cut"
        return "whole"

    store = MemoryStore()
    wl = workload(("ask", ask))
    with (
        serving(FRANCE_RECORDING.cut(4)) as server,
        sync_client(server) as client,
        capture_spans() as captured,
    ):
        report = wl.execute("go", deployment_id="dev", store=store)
    assert report.node_results("ask") == ["cut"]
    span = captured.one("chat claude-sonnet-4-5")
    assert span.status.status_code is StatusCode.ERROR
    [effect] = effects(report)
    assert effect.metadata["stream"] == {"outcome": "failed", "chunks": 3}
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert seen[0] == seen[1]
    assert seen[0][0] == 3


def test_async_streams_and_the_async_helper_are_recorded_and_replayed() -> None:
    """AsyncAnthropic: ``stream=True`` and ``messages.stream()`` under ``async with``."""

    async def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        async with async_client(url) as client:
            events = [e async for e in await client.messages.create(**FRANCE, stream=True)]
            async with client.messages.stream(**FRANCE) as stream:
                text = await stream.get_final_text()
        return [_text(events), text]

    store = MemoryStore()
    wl = workload(("ask", ask))
    with serving() as server, capture_spans() as captured:
        url = server.base_url  # the replay builds a client too, but never sends with it
        report = asyncio.run(wl.execute_async("go", deployment_id="dev", store=store))
    assert report.node_results("ask") == [[FRANCE_ANSWER, FRANCE_ANSWER]]
    assert captured.names().count("chat claude-sonnet-4-5") == 2
    replay = wl.replay(report.run_id, store=store)
    assert replay.identical, replay.summary()
    assert replay.report is not None
    assert replay.report.node_results("ask") == [[FRANCE_ANSWER, FRANCE_ANSWER]]
