"""Shared pieces of the OpenAI instrumentation tests: conversations, servers, runs, readers."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan

from codon.instrumentation.openai import instrument_openai, uninstrument_openai
from codon_sdk import CodonWorkload, ExecutionReport
from codon_sdk.ledger._events import EFFECT_RECORDED, LedgerEvent
from codon_sdk.testing import OpenAIProtocolServer, Recording, bundled_recordings

API_KEY = "sk-codon-test-SECRET-7f3a9c2e1b"
FRANCE: Any = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
FRANCE_ANSWER = "The capital of France is Paris."
WEATHER: Any = [{"role": "user", "content": "What's the weather in Paris right now?"}]
PRIMES: Any = [
    {"role": "developer", "content": "You are a careful math tutor. Show only the final answer."},
    {"role": "user", "content": "How many prime numbers are there between 1 and 50?"},
]
HAIKU: Any = {
    "model": "o4-mini",
    "instructions": "You are a poet who answers only in haiku.",
    "input": "Write a haiku about the sea.",
}
HAIKU_TEXT = "Waves fold into foam\nsalt wind carries gull voices\nthe tide keeps its time"
FOX = ["The quick brown fox", "jumps over the lazy dog"]


@contextlib.contextmanager
def serving(*queued: Recording) -> Iterator[OpenAIProtocolServer]:
    """The protocol server with the bundled recordings, ``queued`` answers first."""
    with OpenAIProtocolServer(bundled_recordings()) as server:
        server.enqueue(*queued)
        yield server


def sync_client(server: OpenAIProtocolServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, **options)


def async_client(server: OpenAIProtocolServer, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, **options)


@contextlib.contextmanager
def instrumented(client: Any = None, **options: Any) -> Iterator[None]:
    """``instrument_openai`` for the block, always undone after it."""
    instrument_openai(client, **options)
    try:
        yield
    finally:
        uninstrument_openai()


def workload(*nodes: tuple[str, Callable[..., Any]], tracing: bool = True) -> CodonWorkload:
    """A workload of ``nodes`` chained in order (each emits its result to the next)."""
    wl = CodonWorkload(name="llm-agent", version="1.0.0", enable_tracing=tracing)
    for name, fn in nodes:
        wl.add_node(fn, name, "llm")
    for (first, _), (second, _) in itertools.pairwise(nodes):
        wl.add_edge(first, second)
    return wl


def effects(report: ExecutionReport) -> list[LedgerEvent]:
    """The run's ``effect_recorded`` events, in order."""
    return [ev for ev in report.events() if ev.type == EFFECT_RECORDED]


def meter() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def histogram_points(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    """Every data point of histogram ``name`` collected by ``reader``."""
    data = reader.get_metrics_data()
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})
