"""OTLP exporters that never cost an agent run anything, and warn once when the collector fails.

- :class:`ExportHealth` is shared by the span and metric exporters that send to one
  collector. The first failed export logs one WARNING line on ``codon_sdk.telemetry``
  (later failures go to DEBUG); a success after an outage logs INFO and re-arms
  the warning. For :data:`COOLDOWN_SECONDS` after a failure, batches are dropped
  without an attempt, so a dead collector costs at most one export timeout at a
  time, also when everything is flushed at interpreter exit.
- :class:`GuardedSpanExporter` / :class:`GuardedMetricExporter` wrap the real
  OTLP exporters: they never raise, and the exporters' own log lines during an
  export (one per retry) are turned into DEBUG records on ``codon_sdk.telemetry``.
- :class:`CodonBatchSpanProcessor` / :class:`CodonMetricReader` are the SDK's
  batching processor and periodic reader with an idempotent, silent shutdown, so
  an application's provider may shut them down again after we did.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'Exporting Codon telemetry needs the OpenTelemetry SDK: pip install "codon-sdk[otel]"'
    ) from err

from codon_sdk.redaction import get_logger
from codon_sdk.telemetry._setup_config import ExportTarget, display_endpoint

__all__ = [
    "COOLDOWN_SECONDS",
    "CodonBatchSpanProcessor",
    "CodonMetricReader",
    "ExportHealth",
    "GuardedMetricExporter",
    "GuardedSpanExporter",
    "make_metric_exporter",
    "make_span_exporter",
]

_log = get_logger("codon_sdk.telemetry")

COOLDOWN_SECONDS = 5.0
_REASON_LIMIT = 240

# The loggers the OTLP exporters write to while exporting (one line per retry).
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
)


# ---------------------------------------------------------------- quiet exporter logs


class _ExportScope(threading.local):
    active: bool = False
    reason: str | None = None


_scope = _ExportScope()


class _QuietDuringExport(logging.Filter):
    """Drops exporter records emitted inside a guarded export on this thread, keeping a DEBUG copy.

    Outside a guarded export (for example while an exporter is constructed) the
    records pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _scope.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break the export
            message = str(record.msg)
        if record.levelno >= logging.ERROR or _scope.reason is None:
            _scope.reason = message
        _log.debug("OTLP exporter: %s", message)
        return False


_quiet_filter = _QuietDuringExport()
_install_lock = threading.Lock()
_installed = False


def _install_quiet_filter() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(_quiet_filter)
        _installed = True


@contextlib.contextmanager
def _guarded_call() -> Iterator[_ExportScope]:
    """Quiet the exporter loggers on this thread; ``scope.reason`` holds the last complaint."""
    outer = (_scope.active, _scope.reason)
    _scope.active, _scope.reason = True, None
    try:
        yield _scope
    finally:
        _scope.active, _scope.reason = outer


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _REASON_LIMIT else flat[: _REASON_LIMIT - 3] + "..."


# ---------------------------------------------------------------- health


class ExportHealth:
    """Outage state of the exporters sending to one collector: one warning each, fast drops."""

    def __init__(self, *, cooldown: float = COOLDOWN_SECONDS) -> None:
        self._lock = threading.Lock()
        self._cooldown = cooldown
        self._failing = False
        self._warned = False
        self._retry_at = 0.0
        self._dropped = 0

    @property
    def failing(self) -> bool:
        with self._lock:
            return self._failing

    def should_attempt(self) -> bool:
        """False while cooling down after a failure (the batch is then dropped)."""
        with self._lock:
            return not self._failing or time.monotonic() >= self._retry_at

    def dropped(self, target: ExportTarget, items: int) -> None:
        with self._lock:
            self._dropped += items
        _log.debug(
            "dropped %d %s item(s) for %s: the collector failed moments ago",
            items,
            target.signal,
            display_endpoint(target.endpoint),
        )

    def succeeded(self, target: ExportTarget) -> None:
        with self._lock:
            if not self._failing:
                return
            dropped, self._dropped = self._dropped, 0
            self._failing = self._warned = False
        _log.info(
            "Codon telemetry: exports to %s succeed again (%d item(s) were dropped meanwhile)",
            display_endpoint(target.endpoint),
            dropped,
        )

    def failed(self, target: ExportTarget, items: int, reason: str) -> None:
        with self._lock:
            self._failing = True
            self._retry_at = time.monotonic() + self._cooldown
            self._dropped += items
            first, self._warned = not self._warned, True
        where = f"{display_endpoint(target.endpoint)} ({target.protocol})"
        if first:
            _log.warning(
                "Codon telemetry: exporting %s to %s failed (%s); telemetry is dropped until "
                "the collector answers again, agent runs are not affected "
                "(further failures are logged at DEBUG on 'codon_sdk.telemetry')",
                target.signal,
                where,
                _one_line(reason),
            )
        else:
            _log.debug("exporting %s to %s failed again (%s)", target.signal, where, reason)


def _guarded_export(
    health: ExportHealth,
    target: ExportTarget,
    items: int,
    export: Callable[[], object],
    success: object,
) -> bool:
    """Run ``export()`` under the guard; True on success. Never raises."""
    if not health.should_attempt():
        health.dropped(target, items)
        return False
    reason = "the exporter reported a failure"
    try:
        with _guarded_call() as scope:
            result = export()
            reason = scope.reason or reason
    except Exception as exc:  # hooks never break a run
        result, reason = None, f"{type(exc).__name__}: {exc}"
    if result is success:
        health.succeeded(target)
        return True
    health.failed(target, items, reason)
    return False


def _guarded_shutdown(inner: Any, **kwargs: Any) -> None:
    try:
        with _guarded_call():
            inner.shutdown(**kwargs)
    except Exception as exc:  # hooks never break a run
        _log.debug("shutting down an OTLP exporter failed: %r", exc)


# ---------------------------------------------------------------- exporters


class GuardedSpanExporter(SpanExporter):
    """A span exporter that never raises and reports failures through :class:`ExportHealth`."""

    def __init__(self, inner: SpanExporter, target: ExportTarget, health: ExportHealth) -> None:
        _install_quiet_filter()
        self._inner = inner
        self._target = target
        self._health = health
        self._shutdown_lock = threading.Lock()
        self._shut = False

    @property
    def target(self) -> ExportTarget:
        return self._target

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = _guarded_export(
            self._health,
            self._target,
            len(spans),
            lambda: self._inner.export(spans),
            SpanExportResult.SUCCESS,
        )
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # the OTLP exporters buffer nothing

    def shutdown(self) -> None:
        with self._shutdown_lock:
            if self._shut:
                return
            self._shut = True
        _guarded_shutdown(self._inner)

    def __repr__(self) -> str:
        return f"GuardedSpanExporter({self._target!r})"


class GuardedMetricExporter(MetricExporter):
    """A metric exporter that never raises and reports failures through :class:`ExportHealth`.

    Keeps the wrapped exporter's preferred temporality and aggregation (which the
    OTLP exporters take from ``OTEL_EXPORTER_OTLP_METRICS_*`` variables).
    """

    def __init__(self, inner: MetricExporter, target: ExportTarget, health: ExportHealth) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        _install_quiet_filter()
        self._inner = inner
        self._target = target
        self._health = health
        self._shutdown_lock = threading.Lock()
        self._shut = False

    @property
    def target(self) -> ExportTarget:
        return self._target

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        items = sum(
            len(scope.metrics)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
        )
        ok = _guarded_export(
            self._health,
            self._target,
            items,
            lambda: self._inner.export(metrics_data, timeout_millis=timeout_millis),
            MetricExportResult.SUCCESS,
        )
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # the OTLP exporters buffer nothing

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with self._shutdown_lock:
            if self._shut:
                return
            self._shut = True
        _guarded_shutdown(self._inner, timeout_millis=timeout_millis)

    def __repr__(self) -> str:
        return f"GuardedMetricExporter({self._target!r})"


def make_span_exporter(target: ExportTarget, health: ExportHealth) -> GuardedSpanExporter:
    """The OTLP span exporter for ``target`` (gRPC or HTTP/protobuf), guarded."""
    headers = dict(target.headers)
    inner: SpanExporter
    if target.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError as err:
            raise _missing("grpc", err) from err
        inner = GrpcSpanExporter(endpoint=target.endpoint, headers=headers, timeout=target.timeout)
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HttpSpanExporter,
            )
        except ImportError as err:
            raise _missing("http/protobuf", err) from err
        inner = HttpSpanExporter(endpoint=target.endpoint, headers=headers, timeout=target.timeout)
    return GuardedSpanExporter(inner, target, health)


def make_metric_exporter(target: ExportTarget, health: ExportHealth) -> GuardedMetricExporter:
    """The OTLP metric exporter for ``target`` (gRPC or HTTP/protobuf), guarded."""
    headers = dict(target.headers)
    inner: MetricExporter
    if target.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )
        except ImportError as err:
            raise _missing("grpc", err) from err
        inner = GrpcMetricExporter(
            endpoint=target.endpoint, headers=headers, timeout=target.timeout
        )
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HttpMetricExporter,
            )
        except ImportError as err:
            raise _missing("http/protobuf", err) from err
        inner = HttpMetricExporter(
            endpoint=target.endpoint, headers=headers, timeout=target.timeout
        )
    return GuardedMetricExporter(inner, target, health)


def _missing(protocol: str, err: ImportError) -> ImportError:
    return ImportError(
        f"OTLP export over {protocol} needs the OpenTelemetry OTLP exporters "
        f'({err.name or "a dependency"} is missing): pip install "codon-sdk[otel]"'
    )


# ---------------------------------------------------------------- processor and reader


class CodonBatchSpanProcessor(BatchSpanProcessor):
    """The SDK batch processor (bounded queue, background exports) with a silent, idempotent end.

    After :meth:`shutdown`, ended spans are ignored without a log line, and a
    second shutdown (the application's provider shutting down at exit after we
    flushed) does nothing.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        super().__init__(exporter)
        self._closed = threading.Event()
        self._close_lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if not self._closed.is_set():
            super().on_end(span)

    def shutdown(self) -> None:
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
        base: Any = BatchSpanProcessor.shutdown  # untyped in the SDK
        base(self)


class CodonMetricReader(PeriodicExportingMetricReader):
    """The SDK periodic reader with a silent, idempotent shutdown (final export included)."""

    def __init__(self, exporter: MetricExporter) -> None:
        super().__init__(exporter)
        self._close_lock = threading.Lock()
        self._closed = False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        base: Any = PeriodicExportingMetricReader.shutdown  # untyped **kwargs in the SDK
        base(self, timeout_millis=timeout_millis, **kwargs)
