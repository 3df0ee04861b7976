"""``capture_spans()``: a fresh view of the spans ended inside each block."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from codon_sdk.testing import SpanCapture, capture_spans


def _end(provider: trace.TracerProvider, *names: str) -> None:
    tracer = provider.get_tracer("codon.tests")
    for name in names:
        tracer.start_span(name).end()


def test_capture_holds_only_spans_ended_inside_the_block() -> None:
    """Spans ended before or after the block are not in it; the capture stays readable."""
    provider = TracerProvider()
    _end(provider, "before")
    with capture_spans(tracer_provider=provider) as captured:
        _end(provider, "inside")
    _end(provider, "after")
    assert captured.names() == ["inside"]


def test_nested_captures_each_see_their_own_window() -> None:
    """The outer capture sees everything in it; the inner one only its own part."""
    provider = TracerProvider()
    with capture_spans(tracer_provider=provider) as outer:
        _end(provider, "first")
        with capture_spans(tracer_provider=provider) as inner:
            _end(provider, "second")
        _end(provider, "third")
    assert outer.names() == ["first", "second", "third"]
    assert inner.names() == ["second"]


def test_parent_and_child_are_captured_in_end_order_with_their_parent_link() -> None:
    """Spans come back as SDK ReadableSpans, children first (they end first)."""
    provider = TracerProvider()
    tracer = provider.get_tracer("codon.tests")
    with (
        capture_spans(tracer_provider=provider) as captured,
        tracer.start_as_current_span("invoke_workflow demo"),
        tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT),
    ):
        pass
    child, parent = captured.spans
    assert (child.name, parent.name) == ("chat gpt-4o-mini", "invoke_workflow demo")
    assert child.parent is not None
    assert parent.context is not None
    assert child.parent.span_id == parent.context.span_id
    assert child.kind is trace.SpanKind.CLIENT


def test_helpers_find_spans_by_name_and_clear() -> None:
    """by_name lists matches, one() insists on exactly one, clear() starts afresh."""
    provider = TracerProvider()
    with capture_spans(tracer_provider=provider) as captured:
        _end(provider, "plan", "act", "act")
        assert [s.name for s in captured.by_name("act")] == ["act", "act"]
        assert captured.one("plan").name == "plan"
        with pytest.raises(AssertionError, match="exactly one span named 'act', found 2"):
            captured.one("act")
        with pytest.raises(AssertionError, match="found 0"):
            captured.one("missing")
        captured.clear()
        _end(provider, "reflect")
    assert captured.names() == ["reflect"]


def test_explicit_provider_is_captured_and_reported_as_not_global() -> None:
    """A provider passed explicitly is the one captured and exposed."""
    provider = TracerProvider()
    with capture_spans(tracer_provider=provider) as captured:
        _end(provider, "x")
    assert captured.tracer_provider is provider
    assert captured.is_global is False
    assert isinstance(captured, SpanCapture)


def test_spans_ended_on_other_threads_are_captured() -> None:
    """Worker threads' spans land in the capture that is open while they end."""
    provider = TracerProvider()
    with capture_spans(tracer_provider=provider) as captured:
        workers = [threading.Thread(target=_end, args=(provider, f"w{i}")) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(captured.names()) == ["w0", "w1", "w2", "w3"]


def test_unsampled_spans_are_not_captured() -> None:
    """Like any exporter, the capture only gets sampled spans."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    with capture_spans(tracer_provider=provider) as captured:
        _end(provider, "dropped")
    assert captured.spans == ()


def test_default_capture_uses_a_provider_whose_spans_it_sees() -> None:
    """Without arguments the capture picks a provider (global when possible) and sees it."""
    with capture_spans() as captured:
        _end(captured.tracer_provider, "node")
        if captured.is_global:
            _end(trace.get_tracer_provider(), "via-global")
    expected = ["node", "via-global"] if captured.is_global else ["node"]
    assert captured.names() == expected


def _run(script: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_unset_global_provider_is_installed_once_and_shared_by_captures() -> None:
    """In a fresh process the first capture installs the global SDK provider, once."""
    output = _run(
        """
        from opentelemetry import trace
        from codon_sdk.testing import capture_spans

        with capture_spans() as first:
            trace.get_tracer("t").start_span("a").end()
        with capture_spans() as second:
            trace.get_tracer("t").start_span("b").end()
        print(first.is_global, second.tracer_provider is first.tracer_provider,
              trace.get_tracer_provider() is first.tracer_provider,
              first.names(), second.names())
        """
    )
    assert output == "True True True ['a'] ['b']"


def test_foreign_global_provider_leads_to_a_private_provider() -> None:
    """When another implementation owns the global slot, captures use a private SDK provider."""
    output = _run(
        """
        from opentelemetry import trace
        from codon_sdk.testing import capture_spans

        trace.set_tracer_provider(trace.NoOpTracerProvider())
        with capture_spans() as captured:
            trace.get_tracer("t").start_span("global-noop").end()
            captured.tracer_provider.get_tracer("t").start_span("explicit").end()
        print(captured.is_global, captured.names())
        """
    )
    assert output == "False ['explicit']"


def test_missing_sdk_makes_capture_spans_fail_helpfully() -> None:
    """Without the OpenTelemetry SDK, capture_spans raises ImportError naming the extra."""
    output = _run(
        """
        import sys
        sys.modules["opentelemetry.sdk"] = None
        sys.modules["opentelemetry.sdk.trace"] = None
        try:
            from codon_sdk.testing import capture_spans
        except ImportError as exc:
            print(exc)
        """
    )
    assert 'pip install "codon-sdk[otel]"' in output
