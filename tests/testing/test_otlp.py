"""The OTLP receiver, fed by the real OpenTelemetry OTLP exporters (gRPC and HTTP/protobuf)."""

from __future__ import annotations

import http.client
import math
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from codon_sdk.testing import OTLPReceiver

TRANSPORTS = ["grpc", "http"]
RESOURCE = {"service.name": "research-agent", "deployment.environment.name": "test"}


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every test stops what it started: no thread outlives it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads leaked: {extra}"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as running:
        yield running


def span_exporter(
    transport: str, receiver: OTLPReceiver, *, timeout: float = 5.0, **options: Any
) -> SpanExporter:
    if transport == "grpc":
        return GrpcSpanExporter(
            endpoint=receiver.grpc_endpoint, insecure=True, timeout=timeout, **options
        )
    return HttpSpanExporter(endpoint=receiver.http_traces_url, timeout=timeout, **options)


def finished_spans(count: int = 1) -> Sequence[ReadableSpan]:
    """Real ended SDK spans, to hand to an exporter directly."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("codon.tests")
    for index in range(count):
        tracer.start_span(f"span-{index}").end()
    provider.shutdown()
    return memory.get_finished_spans()


def post(receiver: OTLPReceiver, path: str, body: bytes, content_type: str) -> int:
    """POST raw bytes to the receiver's HTTP port; returns the status."""
    conn = http.client.HTTPConnection("127.0.0.1", int(receiver.http_endpoint.rsplit(":", 1)[1]))
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# ---------------------------------------------------------------- traces


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_spans_arrive_faithfully_with_tree_kinds_attributes_and_resource(
    receiver: OTLPReceiver, transport: str
) -> None:
    """Names, kinds, ids, parents, attributes, resource, status, events and times survive."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(transport, receiver)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("codon_sdk", "0.1.0")
    root_attributes = {
        "gen_ai.operation.name": "invoke_workflow",
        "codon.node.count": 3,
        "codon.score": 0.75,
        "codon.replayed": False,
        "codon.tags": ["a", "b"],
    }
    with (
        tracer.start_as_current_span("invoke_workflow demo", attributes=root_attributes),
        tracer.start_as_current_span("codon.node.plan"),
        tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT) as chat,
    ):
        chat.set_attribute("gen_ai.usage.input_tokens", 27)
        chat.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop"})
        chat.set_status(trace.Status(trace.StatusCode.ERROR, "rate limited"))
    provider.shutdown()

    received = {s.span_id: s for s in receiver.wait_for_spans(3)}
    for sent in memory.get_finished_spans():
        assert sent.context is not None
        got = received[format(sent.context.span_id, "016x")]
        assert got.name == sent.name
        assert got.kind == sent.kind.name
        assert got.trace_id == format(sent.context.trace_id, "032x")
        parent = format(sent.parent.span_id, "016x") if sent.parent else None
        assert got.parent_span_id == parent
        assert got.attributes == dict(sent.attributes or {})
        assert got.resource_attributes == dict(sent.resource.attributes)
        assert got.status_code == sent.status.status_code.name
        assert got.status_description == (sent.status.description or "")
        assert [(e.name, e.attributes) for e in got.events] == [
            (e.name, dict(e.attributes or {})) for e in sent.events
        ]
        assert got.start_time_unix_nano == sent.start_time
        assert got.end_time_unix_nano == sent.end_time
        assert (got.scope_name, got.scope_version) == ("codon_sdk", "0.1.0")

    [chat_span] = receiver.spans_named("chat gpt-4o-mini")
    assert chat_span.kind == "CLIENT"
    assert chat_span.status_code == "ERROR"
    [root] = receiver.spans_named("invoke_workflow demo")
    assert root.kind == "INTERNAL"
    assert root.parent_span_id is None
    assert root.attributes["codon.tags"] == ("a", "b")
    assert root.resource_attributes["service.name"] == "research-agent"
    assert {e.transport for e in receiver.exports} == {transport}


def test_batch_processor_over_gzip_http_delivers_every_span(receiver: OTLPReceiver) -> None:
    """BatchSpanProcessor + gzip-compressed HTTP exports: all spans, accepted in batches."""
    exporter = span_exporter("http", receiver, compression=Compression.Gzip)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("codon.tests")
    for index in range(40):
        tracer.start_span(f"step-{index}").end()
    provider.force_flush()
    provider.shutdown()
    spans = receiver.wait_for_spans(40)
    assert sorted(s.name for s in spans) == sorted(f"step-{i}" for i in range(40))
    exports = receiver.exports
    assert all(e.outcome == "accepted" for e in exports)
    assert sum(e.items for e in exports) == 40
    assert exports[0].headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exporter_headers_are_recorded_but_not_shown(
    receiver: OTLPReceiver, transport: str
) -> None:
    """Configured exporter headers reach the receiver (gRPC metadata or HTTP headers)."""
    exporter = span_exporter(transport, receiver, headers={"x-codon-tenant": "acme"})
    assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    [export] = receiver.exports
    assert export.headers["x-codon-tenant"] == "acme"
    assert "acme" not in repr(export)


# ---------------------------------------------------------------- metrics


def _metric_exporter(transport: str, receiver: OTLPReceiver) -> Any:
    if transport == "grpc":
        return GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
    return HttpMetricExporter(endpoint=receiver.http_metrics_url, timeout=5)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metrics_arrive_with_kinds_points_and_histogram_buckets(
    receiver: OTLPReceiver, transport: str
) -> None:
    """Counters, up-down counters, gauges and histograms come back as plain records."""
    reader = PeriodicExportingMetricReader(
        _metric_exporter(transport, receiver), export_interval_millis=math.inf
    )
    provider = MeterProvider(resource=Resource.create(RESOURCE), metric_readers=[reader])
    meter = provider.get_meter("codon_sdk", "0.1.0")
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage",
        unit="{token}",
        explicit_bucket_boundaries_advisory=[1, 4, 16, 64, 256, 1024],
    )
    tokens.record(10, {"gen_ai.token.type": "input"})
    tokens.record(100, {"gen_ai.token.type": "input"})
    meter.create_counter("codon.node.activations").add(3, {"codon.node.name": "plan"})
    active = meter.create_up_down_counter("codon.runs.active")
    active.add(2)
    active.add(-1)
    meter.create_gauge("codon.queue.depth").set(5.5)
    provider.force_flush()
    provider.shutdown()

    names = [
        "gen_ai.client.token.usage",
        "codon.node.activations",
        "codon.runs.active",
        "codon.queue.depth",
    ]
    got = receiver.wait_for_metrics(names)
    histogram = got["gen_ai.client.token.usage"]
    assert (histogram.kind, histogram.unit, histogram.temporality) == (
        "histogram",
        "{token}",
        "CUMULATIVE",
    )
    [point] = histogram.data_points
    assert point.attributes == {"gen_ai.token.type": "input"}
    assert (point.count, point.sum, point.min, point.max) == (2, 110, 10, 100)
    assert point.explicit_bounds == (1, 4, 16, 64, 256, 1024)
    assert point.bucket_counts == (0, 0, 1, 0, 1, 0, 0)
    counter = got["codon.node.activations"]
    assert (counter.kind, counter.is_monotonic) == ("sum", True)
    assert counter.data_points[0].value == 3
    assert counter.data_points[0].attributes == {"codon.node.name": "plan"}
    updown = got["codon.runs.active"]
    assert (updown.kind, updown.is_monotonic, updown.data_points[0].value) == ("sum", False, 1)
    gauge = got["codon.queue.depth"]
    assert (gauge.kind, gauge.temporality, gauge.data_points[0].value) == ("gauge", None, 5.5)
    assert histogram.resource_attributes["service.name"] == "research-agent"
    assert histogram.scope_name == "codon_sdk"
    assert receiver.metrics_named("codon.queue.depth") == [gauge]


# ---------------------------------------------------------------- down and slow


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_down_receiver_refuses_exports_and_stores_nothing(
    receiver: OTLPReceiver, transport: str
) -> None:
    """Down: the export fails (UNAVAILABLE / 503), nothing is kept; healthy again, it works."""
    receiver.make_down()
    assert receiver.mode == "down"
    exporter = span_exporter(transport, receiver, timeout=0.5)
    assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
    assert receiver.spans == ()
    assert {e.outcome for e in receiver.exports} == {"refused"}

    receiver.make_healthy()
    assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert [s.name for s in receiver.spans] == ["span-0"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slow_receiver_fails_exports_with_a_shorter_deadline(
    receiver: OTLPReceiver, transport: str
) -> None:
    """Slow beyond the exporter's timeout: the export gives up with FAILURE."""
    receiver.make_slow(3.0)
    exporter = span_exporter(transport, receiver, timeout=0.3)
    assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert receiver.spans == ()


def test_slow_receiver_still_delivers_to_a_patient_exporter(receiver: OTLPReceiver) -> None:
    """Slow within the exporter's timeout: the spans arrive, just later."""
    receiver.make_slow(0.2)
    exporter = span_exporter("grpc", receiver, timeout=5.0)
    assert exporter.export(finished_spans(2)) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(receiver.spans) == 2


def test_ending_spans_does_not_wait_for_a_slow_receiver(receiver: OTLPReceiver) -> None:
    """With a BatchSpanProcessor, span.end() returns while the receiver still holds the export."""
    receiver.make_slow(1.5)
    provider = TracerProvider()
    exporter = span_exporter("grpc", receiver, timeout=10.0)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    tracer = provider.get_tracer("codon.tests")
    for index in range(50):
        tracer.start_span(f"step-{index}").end()
    assert receiver.spans == ()  # every end() returned before the receiver answered
    assert len(receiver.wait_for_spans(50, timeout=15.0)) == 50
    provider.shutdown()


def test_stop_wakes_exports_held_by_slow_mode() -> None:
    """stop() does not sit out a slow-mode delay: held requests are cut, threads joined."""
    receiver = OTLPReceiver().start()
    receiver.make_slow(60.0)
    outcome: list[object] = []

    def send() -> None:
        try:
            status = post(receiver, "/v1/traces", b"", "application/x-protobuf")
            outcome.append(status)
        except (ConnectionError, http.client.HTTPException) as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.2)  # let the request reach the receiver and start waiting
    started = time.monotonic()
    receiver.stop()
    sender.join(10.0)
    assert time.monotonic() - started < 10.0
    assert not sender.is_alive()
    assert len(outcome) == 1
    assert receiver.spans == ()


def test_make_healthy_releases_exports_held_by_slow_mode(receiver: OTLPReceiver) -> None:
    """Leaving slow mode answers held exports at once instead of after their delay."""
    receiver.make_slow(60.0)
    statuses: list[int] = []
    valid = ExportTraceServiceRequest().SerializeToString()
    sender = threading.Thread(
        target=lambda: statuses.append(
            post(receiver, "/v1/traces", valid, "application/x-protobuf")
        )
    )
    sender.start()
    time.sleep(0.2)  # let the request reach the receiver and start waiting
    receiver.make_healthy()
    sender.join(10.0)
    assert not sender.is_alive()
    assert statuses == [200]
    assert [e.outcome for e in receiver.exports] == ["accepted"]


def test_missing_otel_extra_fails_helpfully_while_the_openai_server_still_imports() -> None:
    """Without grpc, OTLPReceiver raises ImportError naming the extra; the rest imports."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["grpc"] = None
        import codon_sdk.testing as kit
        assert kit.OpenAIProtocolServer is not None
        try:
            kit.OTLPReceiver
        except ImportError as exc:
            print(exc)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert 'pip install "codon-sdk[otel]"' in completed.stdout


# ---------------------------------------------------------------- protocol edges and helpers


def test_http_receiver_answers_protocol_errors_like_a_collector(receiver: OTLPReceiver) -> None:
    """Unknown path 404, JSON encoding 415, undecodable protobuf 400 and logged as rejected."""
    valid = ExportTraceServiceRequest().SerializeToString()
    assert post(receiver, "/v1/logs", valid, "application/x-protobuf") == 404
    assert post(receiver, "/v1/traces", b"{}", "application/json") == 415
    assert post(receiver, "/v1/traces", b"\xff\xff\xff", "application/x-protobuf") == 400
    assert post(receiver, "/v1/traces", valid, "application/x-protobuf") == 200
    assert [e.outcome for e in receiver.exports] == ["rejected", "accepted"]


def test_waits_time_out_naming_what_did_arrive(receiver: OTLPReceiver) -> None:
    """wait_for_spans / wait_for_metrics raise TimeoutError saying what is missing."""
    with pytest.raises(TimeoutError, match=r"expected at least 1 spans within 0.05s, got 0"):
        receiver.wait_for_spans(1, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"metrics \['gen_ai.client.token.usage'\]"):
        receiver.wait_for_metrics("gen_ai.client.token.usage", timeout=0.05)


def test_clear_forgets_spans_metrics_and_exports(receiver: OTLPReceiver) -> None:
    """clear() empties everything received so far."""
    exporter = span_exporter("http", receiver)
    exporter.export(finished_spans())
    exporter.shutdown()
    receiver.clear()
    assert (receiver.spans, receiver.metrics, receiver.exports) == ((), (), ())


def test_endpoints_are_loopback_ephemeral_and_need_a_running_receiver() -> None:
    """Both endpoints are http://127.0.0.1:PORT on distinct ports, only while running."""
    receiver = OTLPReceiver()
    with pytest.raises(RuntimeError, match="not running"):
        _ = receiver.grpc_endpoint
    with receiver:
        assert receiver.grpc_endpoint.startswith("http://127.0.0.1:")
        assert receiver.http_endpoint.startswith("http://127.0.0.1:")
        assert receiver.grpc_endpoint != receiver.http_endpoint
    receiver.stop()  # idempotent
