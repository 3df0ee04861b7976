"""Fixtures for the runtime tests: a fixed org namespace and an in-memory span exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture(autouse=True)
def org_namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every runtime test runs with ORG_NAMESPACE=test-org and no organisation id override."""
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    monkeypatch.delenv("CODON_ORGANIZATION_ID", raising=False)
    return "test-org"


@pytest.fixture(scope="session")
def _session_span_exporter() -> InMemorySpanExporter:
    """One SDK tracer provider per process (the global provider can be set only once).

    If another test module already installed an SDK provider, our exporter is
    added to it instead of replacing it.
    """
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "could not install an SDK tracer provider"
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def span_exporter(_session_span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The session exporter, emptied before and after the test."""
    _session_span_exporter.clear()
    yield _session_span_exporter
    _session_span_exporter.clear()
