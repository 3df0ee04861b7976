"""Plain records of what an OTLP receiver got, converted from the OTLP protobuf messages.

Ids are lower-case hex, kinds and status codes readable names (``"CLIENT"``,
``"ERROR"``), attributes plain dicts (arrays become tuples, as in the SDK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'The OTLP receiver needs opentelemetry-proto: pip install "codon-sdk[otel]"'
    ) from err

__all__ = [
    "OTLPDataPoint",
    "OTLPMetric",
    "OTLPSpan",
    "OTLPSpanEvent",
    "OTLPSpanLink",
    "metrics_from_request",
    "spans_from_request",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPSpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPSpanLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPSpan:
    """One span as received; ``parent_span_id`` is None for a root span."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    scope_name: str
    scope_version: str
    status_code: str
    status_description: str
    events: tuple[OTLPSpanEvent, ...]
    links: tuple[OTLPSpanLink, ...]
    start_time_unix_nano: int
    end_time_unix_nano: int

    @property
    def duration_ns(self) -> int:
        return self.end_time_unix_nano - self.start_time_unix_nano


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPDataPoint:
    """A number point (``value``) or a histogram point (``count``, ``sum``, buckets)."""

    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPMetric:
    """One metric of one export; ``kind`` is gauge, sum, histogram, exponential_histogram
    or summary; ``temporality`` is ``"CUMULATIVE"`` or ``"DELTA"`` where it applies."""

    name: str
    description: str
    unit: str
    kind: str
    data_points: tuple[OTLPDataPoint, ...]
    resource_attributes: dict[str, Any]
    scope_name: str
    temporality: str | None
    is_monotonic: bool | None


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = _value(pair.value)
    return out


def _kind(span: Span) -> str:
    return str(Span.SpanKind.Name(span.kind)).removeprefix("SPAN_KIND_")


def _status(status: Status) -> str:
    return str(Status.StatusCode.Name(status.code)).removeprefix("STATUS_CODE_")


def _span(span: Span, resource: dict[str, Any], scope_name: str, scope_version: str) -> OTLPSpan:
    return OTLPSpan(
        name=span.name,
        kind=_kind(span),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        attributes=_attributes(span.attributes),
        resource_attributes=resource,
        scope_name=scope_name,
        scope_version=scope_version,
        status_code=_status(span.status),
        status_description=span.status.message,
        events=tuple(
            OTLPSpanEvent(
                name=e.name, time_unix_nano=e.time_unix_nano, attributes=_attributes(e.attributes)
            )
            for e in span.events
        ),
        links=tuple(
            OTLPSpanLink(
                trace_id=link.trace_id.hex(),
                span_id=link.span_id.hex(),
                attributes=_attributes(link.attributes),
            )
            for link in span.links
        ),
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
    )


def spans_from_request(request: ExportTraceServiceRequest) -> list[OTLPSpan]:
    """Every span of an export request, in the order sent."""
    out: list[OTLPSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            out.extend(_span(s, resource, scope.name, scope.version) for s in scope_spans.spans)
    return out


def _common(point: Any) -> dict[str, Any]:
    return {
        "attributes": _attributes(point.attributes),
        "start_time_unix_nano": point.start_time_unix_nano,
        "time_unix_nano": point.time_unix_nano,
    }


def _number_point(point: Any) -> OTLPDataPoint:
    kind = point.WhichOneof("value")
    return OTLPDataPoint(**_common(point), value=getattr(point, kind) if kind else None)


def _histogram_point(point: Any, buckets: bool) -> OTLPDataPoint:
    return OTLPDataPoint(
        **_common(point),
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        bucket_counts=tuple(point.bucket_counts)
        if buckets
        else tuple(point.positive.bucket_counts),
        explicit_bounds=tuple(point.explicit_bounds) if buckets else (),
    )


def _metric(metric: Metric, resource: dict[str, Any], scope_name: str) -> OTLPMetric:
    kind = metric.WhichOneof("data") or "unknown"
    data: Any = getattr(metric, kind, None)
    temporality: str | None = None
    if kind in ("sum", "histogram", "exponential_histogram"):
        name = str(AggregationTemporality.Name(data.aggregation_temporality))
        temporality = name.removeprefix("AGGREGATION_TEMPORALITY_")
    if kind in ("gauge", "sum"):
        points = tuple(_number_point(p) for p in data.data_points)
    elif kind in ("histogram", "exponential_histogram"):
        points = tuple(_histogram_point(p, kind == "histogram") for p in data.data_points)
    elif kind == "summary":
        points = tuple(
            OTLPDataPoint(**_common(p), count=p.count, sum=p.sum) for p in data.data_points
        )
    else:
        points = ()
    return OTLPMetric(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        kind=kind,
        data_points=points,
        resource_attributes=resource,
        scope_name=scope_name,
        temporality=temporality,
        is_monotonic=data.is_monotonic if kind == "sum" else None,
    )


def metrics_from_request(request: ExportMetricsServiceRequest) -> list[OTLPMetric]:
    """Every metric of an export request, in the order sent."""
    out: list[OTLPMetric] = []
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            name = scope_metrics.scope.name
            out.extend(_metric(m, resource, name) for m in scope_metrics.metrics)
    return out
