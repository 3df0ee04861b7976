"""``capture_spans()``: the spans ended inside a ``with`` block, for tests.

OpenTelemetry lets the global tracer provider be set once per process, so tests
must not each install their own. Instead one SDK ``TracerProvider`` per process
(the global one) gets, once, a ``SimpleSpanProcessor`` over a fan-out exporter;
each ``capture_spans()`` plugs a fresh ``InMemorySpanExporter`` into that
fan-out for the duration of its block and unplugs it afterwards::

    with capture_spans() as captured:
        run_agent()
    assert captured.names() == ["chat gpt-4o-mini", "invoke_workflow demo"]

Which provider is used:

- ``capture_spans(tracer_provider=p)``: the SDK provider ``p`` you pass.
- otherwise the global provider when it is an SDK ``TracerProvider``;
- otherwise, when no global provider is set yet, a new SDK provider installed
  as the global one (once per process);
- otherwise (the global one is some other implementation) a private SDK
  provider: ``captured.is_global`` is False and you pass
  ``captured.tracer_provider`` to the code under test.

Concurrent or nested captures each see every span ended while they are open.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator, Sequence

from opentelemetry import trace

try:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'capture_spans needs the OpenTelemetry SDK: pip install "codon-sdk[otel]"'
    ) from err

__all__ = ["SpanCapture", "capture_spans"]

_lock = threading.Lock()
_fanouts: weakref.WeakKeyDictionary[TracerProvider, _FanOut] = weakref.WeakKeyDictionary()
_private: TracerProvider | None = None


class _FanOut(SpanExporter):
    """Hands each ended span to every capture currently open on its provider."""

    def __init__(self) -> None:
        self._targets: tuple[InMemorySpanExporter, ...] = ()
        self._targets_lock = threading.Lock()

    def plug(self, target: InMemorySpanExporter) -> None:
        with self._targets_lock:
            self._targets = (*self._targets, target)

    def unplug(self, target: InMemorySpanExporter) -> None:
        with self._targets_lock:
            self._targets = tuple(t for t in self._targets if t is not target)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for target in self._targets:
            target.export(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._targets = ()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _fanout_for(provider: TracerProvider) -> _FanOut:
    with _lock:
        fanout = _fanouts.get(provider)
        if fanout is None:
            fanout = _FanOut()
            provider.add_span_processor(SimpleSpanProcessor(fanout))
            _fanouts[provider] = fanout
        return fanout


def _default_provider() -> tuple[TracerProvider, bool]:
    """The provider to capture on, and whether it is the global one."""
    global _private
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(TracerProvider())  # a no-op if another thread won the race
        current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current, True
    with _lock:
        if _private is None:
            _private = TracerProvider()
        return _private, False


class SpanCapture:
    """The spans ended while its ``capture_spans()`` block was open, in end order."""

    __slots__ = ("_exporter", "_provider", "is_global")

    def __init__(
        self, provider: TracerProvider, exporter: InMemorySpanExporter, *, is_global: bool
    ) -> None:
        self._provider = provider
        self._exporter = exporter
        self.is_global = is_global

    @property
    def tracer_provider(self) -> TracerProvider:
        """The provider whose spans are captured; pass it to code taking ``tracer_provider``."""
        return self._provider

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self._exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [span.name for span in self.spans]

    def by_name(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        """The single span called ``name``; AssertionError when there are none or several."""
        found = self.by_name(name)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one span named {name!r}, found {len(found)}; "
                f"captured: {self.names()}"
            )
        return found[0]

    def clear(self) -> None:
        """Forget the spans captured so far (capturing continues)."""
        self._exporter.clear()


@contextlib.contextmanager
def capture_spans(*, tracer_provider: TracerProvider | None = None) -> Iterator[SpanCapture]:
    """Capture the spans ended inside the block (see the module docstring)."""
    if tracer_provider is None:
        provider, is_global = _default_provider()
    else:
        provider = tracer_provider
        is_global = trace.get_tracer_provider() is tracer_provider
    fanout = _fanout_for(provider)
    exporter = InMemorySpanExporter()
    fanout.plug(exporter)
    try:
        yield SpanCapture(provider, exporter, is_global=is_global)
    finally:
        fanout.unplug(exporter)
