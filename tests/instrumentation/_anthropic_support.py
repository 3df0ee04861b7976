"""Shared pieces of the Anthropic instrumentation tests: conversations, servers, clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anthropic

from codon.instrumentation.anthropic import instrument_anthropic, uninstrument_anthropic
from codon_sdk.testing import AnthropicProtocolServer, Recording, bundled_anthropic_recordings

API_KEY = "sk-ant-api03-codon-test-SECRET-4d9e2b7a1c"
FRANCE: Any = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "system": "You are a concise geography assistant.",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}
FRANCE_ANSWER = "The capital of France is Paris."
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The current weather at a place.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}
WEATHER: Any = {
    "model": "claude-haiku-4-5",
    "max_tokens": 512,
    "tools": [WEATHER_TOOL],
    "messages": [{"role": "user", "content": "What's the weather in Paris right now?"}],
}
SUPPORT_PROMPT = (
    "You are the support assistant of Larkspur Outfitters, a shop for hiking and "
    "climbing gear. Answer questions about orders, returns and products. Returns are accepted "
    "within 60 days with a receipt; worn climbing harnesses cannot be returned for safety "
    "reasons. Shipping is free over 75 EUR. Be brief and friendly."
)
SUPPORT: Any = {
    "model": "claude-opus-4-1",
    "max_tokens": 400,
    "system": [{"type": "text", "text": SUPPORT_PROMPT, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Can I return a harness I used once?"}],
}
# claude-opus-4-1: input 15.00, cache writes 18.75, cache hits 1.50, output 75.00 USD per 1M
SUPPORT_COST = (18 * 15.00 + 1536 * 18.75 + 2048 * 1.50 + 39 * 75.00) / 1e6
FRANCE_COST = (21 * 3.00 + 10 * 15.00) / 1e6  # claude-sonnet-4-5


@contextlib.contextmanager
def serving(*queued: Recording) -> Iterator[AnthropicProtocolServer]:
    """The protocol server with the bundled recordings, ``queued`` answers first."""
    with AnthropicProtocolServer(bundled_anthropic_recordings()) as server:
        server.enqueue(*queued)
        yield server


def sync_client(server: AnthropicProtocolServer, **options: Any) -> anthropic.Anthropic:
    """A client of ``server`` whose own tracing is off (one span per call: ours)."""
    options.setdefault("open_telemetry", False)
    return anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0, **options)


def async_client(server: AnthropicProtocolServer | str, **options: Any) -> anthropic.AsyncAnthropic:
    """An async client of ``server`` (or of its base URL, kept for a replay that never sends)."""
    options.setdefault("open_telemetry", False)
    url = server if isinstance(server, str) else server.base_url
    return anthropic.AsyncAnthropic(base_url=url, api_key=API_KEY, max_retries=0, **options)


@contextlib.contextmanager
def instrumented(client: Any = None, **options: Any) -> Iterator[None]:
    """``instrument_anthropic`` for the block, always undone after it."""
    instrument_anthropic(client, **options)
    try:
        yield
    finally:
        uninstrument_anthropic()
