"""``initialize_telemetry``: ship Codon's spans and metrics to an OTLP collector (``otel`` extra).

Import it from :mod:`codon_sdk.instrumentation`. Resolution of endpoints,
protocol, headers, timeouts and resource attributes is described in
:mod:`codon_sdk.telemetry._setup_config`; failure handling in
:mod:`codon_sdk.telemetry._export`.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Literal
from urllib.parse import urlsplit

from opentelemetry import metrics, trace

try:
    from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "initialize_telemetry needs the OpenTelemetry SDK and OTLP exporters: "
        'pip install "codon-sdk[otel]"'
    ) from err

from codon_sdk.redaction import get_logger
from codon_sdk.telemetry._export import (
    CodonBatchSpanProcessor,
    CodonMetricReader,
    ExportHealth,
    make_metric_exporter,
    make_span_exporter,
)
from codon_sdk.telemetry._setup_config import ExportTarget, TelemetrySettings, resolve_settings

__all__ = ["ProviderMode", "TelemetryHandle", "initialize_telemetry"]

_log = get_logger("codon_sdk.telemetry")

ProviderMode = Literal["installed", "attached", "private"]
"""``installed``: Codon's provider, set as the global one; ``attached``: Codon's
exporter added to the application's provider; ``private``: Codon's provider,
not global (a global one was already set and OpenTelemetry allows that once)."""

_lock = threading.Lock()
_current: TelemetryHandle | None = None


def initialize_telemetry(
    api_key: str | None = None,
    service_name: str | None = None,
    endpoint: str | None = None,
    attach_to_existing: bool | None = None,
    *,
    deployment_environment: str | None = None,
) -> TelemetryHandle:
    """Export Codon's spans and metrics over OTLP (gRPC by default, or HTTP/protobuf).

    Args:
        api_key: sent as the ``x-codon-api-key`` header on every export; defaults
            to ``CODON_API_KEY``. Never logged nor shown in a ``repr``.
        service_name: the ``service.name`` resource attribute; defaults to
            ``OTEL_SERVICE_NAME``, then ``OTEL_RESOURCE_ATTRIBUTES``, then
            OpenTelemetry's ``unknown_service:<executable>``.
        endpoint: the collector's base URL; defaults to
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``, then
            ``OTEL_EXPORTER_OTLP_ENDPOINT``, then a local collector
            (``http://localhost:4317`` for gRPC, ``http://localhost:4318`` for
            HTTP). ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` selects HTTP.
        attach_to_existing: ``True`` adds Codon's exporters to the providers the
            application already installed instead of replacing them; ``False``
            always builds Codon's own providers; ``None`` (default) attaches when
            the application installed an OpenTelemetry SDK provider and installs
            Codon's globally otherwise. When attached, the application's resource
            applies and the resource arguments here are not used.
        deployment_environment: ``deployment.environment.name``; defaults to
            ``CODON_DEPLOYMENT_ENVIRONMENT``, then ``OTEL_RESOURCE_ATTRIBUTES``.

    The resource also carries ``codon.organization.id`` from
    ``CODON_ORGANIZATION_ID`` (as the spans do), every ``OTEL_RESOURCE_ATTRIBUTES``
    entry, and ``telemetry.distro.name=codon-sdk``.

    Spans are batched in a bounded queue (2048 spans, 512 per export, every 5 s;
    ``OTEL_BSP_*`` tune it) and exported on a background thread; metrics every
    60 s (``OTEL_METRIC_EXPORT_INTERVAL``). Each export gives up after 3 s
    (``OTEL_EXPORTER_OTLP_TIMEOUT``, seconds). A collector that is down or slow
    therefore never slows an agent run: the first failure logs one warning on
    ``codon_sdk.telemetry``, and batches arriving in the next 5 s are dropped
    without an attempt. Everything is flushed at interpreter exit.

    Repeated calls return the first handle (with a warning if the arguments
    differ) until :meth:`TelemetryHandle.shutdown` is called.
    """
    global _current
    settings = resolve_settings(
        api_key=api_key,
        service_name=service_name,
        endpoint=endpoint,
        attach_to_existing=attach_to_existing,
        deployment_environment=deployment_environment,
        environ=os.environ,
    )
    with _lock:
        if _current is not None:
            if _current.settings != settings:
                _log.warning(
                    "initialize_telemetry() was already called in this process; keeping the "
                    "first configuration (call shutdown() on its handle before setting up again)"
                )
            return _current
        _current = _set_up(settings)
        return _current


class TelemetryHandle:
    """What :func:`initialize_telemetry` set up: the providers, and their flush and shutdown.

    ``tracer_provider`` / ``meter_provider`` are Codon's own providers or, when
    attached, the application's; ``traces_mode`` / ``metrics_mode`` say which
    (see :data:`ProviderMode`).
    """

    __slots__ = (
        "_closed",
        "_lock",
        "_metric_reader",
        "_span_processor",
        "meter_provider",
        "metrics_mode",
        "settings",
        "tracer_provider",
        "traces_mode",
    )

    def __init__(
        self,
        *,
        settings: TelemetrySettings,
        tracer_provider: SDKTracerProvider,
        traces_mode: ProviderMode,
        span_processor: CodonBatchSpanProcessor,
        meter_provider: SDKMeterProvider,
        metrics_mode: ProviderMode,
        metric_reader: CodonMetricReader,
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.traces_mode = traces_mode
        self.meter_provider = meter_provider
        self.metrics_mode = metrics_mode
        self._span_processor = span_processor
        self._metric_reader = metric_reader
        self._lock = threading.Lock()
        self._closed = False

    @property
    def attached(self) -> bool:
        """True when Codon's span exporter was added to the application's tracer provider."""
        return self.traces_mode == "attached"

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export what Codon's processor and reader hold now; False if that failed. Never raises."""
        flushed = True
        try:
            flushed = self._span_processor.force_flush(timeout_millis)
        except Exception as exc:  # hooks never break a run
            _log.debug("flushing spans failed: %r", exc)
            flushed = False
        try:
            flushed = self._metric_reader.force_flush(timeout_millis) and flushed
        except Exception as exc:  # hooks never break a run
            _log.debug("flushing metrics failed: %r", exc)
            flushed = False
        return flushed

    def shutdown(self, timeout_millis: int = 10_000) -> None:
        """Flush and stop Codon's span processor and metric reader. Idempotent, never raises.

        ``timeout_millis`` bounds the metric flush; each span export is bounded by
        the export timeout. The providers stay as they are (OpenTelemetry sets the global ones once
        per process, and an application's keep serving it); a later
        :func:`initialize_telemetry` call attaches fresh exporters to them.
        """
        global _current
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._at_exit)
        try:
            self._span_processor.shutdown()
        except Exception as exc:  # hooks never break a run
            _log.debug("shutting down span export failed: %r", exc)
        try:
            self._metric_reader.shutdown(timeout_millis=timeout_millis)
            remove = getattr(self.meter_provider, "remove_metric_reader", None)
            if remove is not None:
                remove(self._metric_reader)
        except Exception as exc:  # hooks never break a run
            _log.debug("shutting down metric export failed: %r", exc)
        with _lock:
            if _current is self:
                _current = None

    def _at_exit(self) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        traces, metrics_ = self.settings.traces, self.settings.metrics
        return (
            f"TelemetryHandle(traces={self.traces_mode} {traces.protocol} {traces.endpoint!r}, "
            f"metrics={self.metrics_mode} {metrics_.protocol} {metrics_.endpoint!r})"
        )


def _set_up(settings: TelemetrySettings) -> TelemetryHandle:
    traces_health = ExportHealth()
    # One collector, one outage: traces and metrics sent to the same place share
    # their health (one warning, one timeout); different collectors do not.
    same_collector = _collector(settings.traces) == _collector(settings.metrics)
    metrics_health = traces_health if same_collector else ExportHealth()
    resource = Resource.create(dict(settings.resource_attributes))
    processor = CodonBatchSpanProcessor(make_span_exporter(settings.traces, traces_health))
    reader = CodonMetricReader(make_metric_exporter(settings.metrics, metrics_health))
    tracer_provider, traces_mode = _tracer_provider(processor, resource, settings)
    meter_provider, metrics_mode = _meter_provider(reader, resource, settings)
    handle = TelemetryHandle(
        settings=settings,
        tracer_provider=tracer_provider,
        traces_mode=traces_mode,
        span_processor=processor,
        meter_provider=meter_provider,
        metrics_mode=metrics_mode,
        metric_reader=reader,
    )
    # Registered after the providers' own exit hooks, so it runs first (atexit is LIFO)
    # and also flushes a processor attached to a provider that does not shut down at exit.
    atexit.register(handle._at_exit)
    _log.debug("telemetry set up: %r", handle)
    return handle


def _collector(target: ExportTarget) -> tuple[str, str]:
    """The protocol and host of a target (HTTP signal paths differ, the collector does not)."""
    parts = urlsplit(target.endpoint)
    return target.protocol, parts.netloc or target.endpoint


def _tracer_provider(
    processor: CodonBatchSpanProcessor, resource: Resource, settings: TelemetrySettings
) -> tuple[SDKTracerProvider, ProviderMode]:
    current = trace.get_tracer_provider()
    attach = settings.attach_to_existing
    if attach is not False and isinstance(current, SDKTracerProvider):
        current.add_span_processor(processor)
        return current, "attached"
    if attach is True:
        _log.warning(
            "attach_to_existing=True, but no OpenTelemetry SDK TracerProvider is installed "
            "(found %s); Codon sets up its own",
            type(current).__name__,
        )
    provider = SDKTracerProvider(resource=resource)
    provider.add_span_processor(processor)
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
        return provider, "installed"
    _log.warning(
        "a global TracerProvider (%s) is already installed and OpenTelemetry sets it only once; "
        "Codon's spans go to a provider of their own that is not global: use "
        "attach_to_existing=True, or pass handle.tracer_provider where one is accepted",
        type(current).__name__,
    )
    return provider, "private"


def _meter_provider(
    reader: CodonMetricReader, resource: Resource, settings: TelemetrySettings
) -> tuple[SDKMeterProvider, ProviderMode]:
    current = metrics.get_meter_provider()
    attach = settings.attach_to_existing
    if (
        attach is not False
        and isinstance(current, SDKMeterProvider)
        and hasattr(current, "add_metric_reader")  # not in every opentelemetry-sdk release
    ):
        current.add_metric_reader(reader)
        return current, "attached"
    provider = SDKMeterProvider(resource=resource, metric_readers=[reader])
    if _meter_provider_unset(current):
        metrics.set_meter_provider(provider)
        return provider, "installed"
    _log.warning(
        "a global MeterProvider (%s) is already installed and Codon cannot add its reader to "
        "it; Codon's metrics go to a provider of their own that is not global: pass "
        "handle.meter_provider where one is accepted",
        type(current).__name__,
    )
    return provider, "private"


def _meter_provider_unset(current: metrics.MeterProvider) -> bool:
    """True while no global MeterProvider was set (the API hands out its proxy).

    The proxy's class is private to the OpenTelemetry API, so it is recognised by name and
    module rather than imported."""
    kind = type(current)
    return kind.__name__ == "_ProxyMeterProvider" and kind.__module__.startswith(
        "opentelemetry.metrics"
    )
