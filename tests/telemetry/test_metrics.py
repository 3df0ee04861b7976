"""The four metric instruments and their recording helpers, read back with an SDK reader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from codon_sdk.telemetry._genai import TokenUsage
from codon_sdk.telemetry._metrics import (
    COST_BUCKETS,
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    instruments,
    record_node_duration,
    record_operation_duration,
    record_run_cost,
    record_run_duration,
    record_token_usage,
)

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
}


def _meter() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def _metrics(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    found: dict[str, Any] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = metric
    return found


def _points(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    metric = _metrics(reader).get(name)
    return list(metric.data.data_points) if metric else []


def test_the_genai_spec_bucket_boundaries() -> None:
    """The semantic conventions' explicit boundaries, verbatim."""
    assert tuple(4**i for i in range(14)) == TOKEN_BUCKETS
    assert tuple(round(0.01 * 2**i, 2) for i in range(14)) == DURATION_BUCKETS


def test_token_usage_records_input_and_output_with_token_type() -> None:
    """One point per gen_ai.token.type; counts not given are not recorded."""
    provider, reader = _meter()
    record_token_usage(
        TokenUsage(input_tokens=1206, output_tokens=342), CHAT, meter_provider=provider
    )
    record_token_usage(TokenUsage(input_tokens=10), CHAT, meter_provider=provider)
    metric = _metrics(reader)["gen_ai.client.token.usage"]
    assert metric.unit == "{token}"
    points = {p.attributes["gen_ai.token.type"]: p for p in metric.data.data_points}
    assert (points["input"].count, points["input"].sum) == (2, 1216)
    assert (points["output"].count, points["output"].sum) == (1, 342)
    assert tuple(points["input"].explicit_bounds) == TOKEN_BUCKETS
    assert {k: v for k, v in points["input"].attributes.items() if k in CHAT} == CHAT


def test_operation_duration_records_seconds_and_error_type() -> None:
    """gen_ai.client.operation.duration in seconds, with error.type when the call failed."""
    provider, reader = _meter()
    record_operation_duration(0.25, CHAT, meter_provider=provider)
    record_operation_duration(1.5, CHAT, error_type="RateLimitError", meter_provider=provider)
    metric = _metrics(reader)["gen_ai.client.operation.duration"]
    assert metric.unit == "s"
    by_error = {p.attributes.get("error.type"): p for p in metric.data.data_points}
    assert by_error[None].sum == 0.25
    assert by_error["RateLimitError"].sum == 1.5
    assert tuple(by_error[None].explicit_bounds) == DURATION_BUCKETS


def test_node_duration_helper_names_the_node() -> None:
    """codon.node.duration: seconds per activation, codon.nodespec.name, low-cardinality attrs."""
    provider, reader = _meter()
    attrs = {"codon.workload.id": "demo:1", "codon.nodespec.role": "llm"}
    record_node_duration(0.5, node="ask", attributes=attrs, meter_provider=provider)
    record_node_duration(0.1, node="ask", error_type="ValueError", meter_provider=provider)
    points = _points(reader, "codon.node.duration")
    ok = next(p for p in points if "error.type" not in p.attributes)
    assert dict(ok.attributes) == {**attrs, "codon.nodespec.name": "ask"}
    assert ok.sum == 0.5
    assert [p.attributes["error.type"] for p in points if "error.type" in p.attributes] == [
        "ValueError"
    ]


def test_run_cost_records_known_costs_only() -> None:
    """codon.run.cost gets a run's USD; an unknown (None) cost is not recorded as zero."""
    provider, reader = _meter()
    record_run_cost(None, meter_provider=provider)
    assert _points(reader, "codon.run.cost") == []
    record_run_cost(0.0123, {"codon.workload.id": "demo:1"}, meter_provider=provider)
    metric = _metrics(reader)["codon.run.cost"]
    assert metric.unit == "{USD}"
    [point] = metric.data.data_points
    assert point.sum == pytest.approx(0.0123)
    assert tuple(point.explicit_bounds) == COST_BUCKETS


def test_run_duration_records_the_time_a_run_ran_with_its_status() -> None:
    provider, reader = _meter()
    record_run_duration(0.25, status="interrupted", meter_provider=provider)
    record_run_duration(-1.0, status="completed", meter_provider=provider)  # clamped, kept
    metric = _metrics(reader)["codon.run.duration"]
    assert metric.unit == "s"
    points = {p.attributes["codon.workload.status"]: p for p in metric.data.data_points}
    assert points["interrupted"].sum == pytest.approx(0.25)
    assert points["completed"].sum == 0.0


def test_instruments_are_made_once_per_provider() -> None:
    """The same provider gets the same instruments; another provider its own."""
    first, _ = _meter()
    second, _ = _meter()
    assert instruments(first) is instruments(first)
    assert instruments(first) is not instruments(second)


class _BrokenMeterProvider(metrics.MeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> metrics.Meter:
        raise RuntimeError("metrics backend down")


def test_helpers_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    """A failing meter provider is logged, never raised to the caller."""
    broken = _BrokenMeterProvider()
    record_token_usage(TokenUsage(input_tokens=1, output_tokens=1), CHAT, meter_provider=broken)
    record_operation_duration(0.1, CHAT, meter_provider=broken)
    record_node_duration(0.1, node="n", meter_provider=broken)
    record_run_cost(1.0, meter_provider=broken)
    assert caplog.text.count("could not record") == 4
