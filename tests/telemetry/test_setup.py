"""initialize_telemetry's rules: configuration, failure handling, attach semantics, repeated calls.

Configuration and the export guard are tested in-process (they touch no global
state). Whatever installs a global provider runs in a fresh interpreter, since
OpenTelemetry sets those once per process; the OTLP receiver runs here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import codon_sdk
import codon_sdk.instrumentation
from codon_sdk.telemetry._export import (
    CodonBatchSpanProcessor,
    CodonMetricReader,
    ExportHealth,
    GuardedMetricExporter,
    GuardedSpanExporter,
)
from codon_sdk.telemetry._setup import _collector, initialize_telemetry
from codon_sdk.telemetry._setup_config import (
    DEFAULT_EXPORT_TIMEOUT_SECONDS,
    ExportTarget,
    TelemetrySettings,
    display_endpoint,
    resolve_settings,
)
from codon_sdk.testing import OTLPReceiver

SRC = str(Path(codon_sdk.__file__).resolve().parent.parent)
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.common.http"
PYTHON_FLAGS = ["-W", "error", "-W", "ignore:unclosed <socket.socket:ResourceWarning"]


def resolve(
    environ: Mapping[str, str] | None = None,
    *,
    api_key: str | None = None,
    service_name: str | None = None,
    endpoint: str | None = None,
    deployment_environment: str | None = None,
) -> TelemetrySettings:
    return resolve_settings(
        api_key=api_key,
        service_name=service_name,
        endpoint=endpoint,
        attach_to_existing=None,
        deployment_environment=deployment_environment,
        environ=environ or {},
    )


def run_script(script: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter with a clean OTEL_*/CODON_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CODON_"))}
    clean.update(ORG_NAMESPACE="test-org", PYTHONPATH=SRC, **env)
    completed = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, "-c", textwrap.dedent(script)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def stderr_lines(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in completed.stderr.splitlines() if line.strip()]


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


# ---------------------------------------------------------------- public surface


def test_documented_import_path_exports_initialize_telemetry_and_its_handle() -> None:
    """`from codon_sdk.instrumentation import initialize_telemetry` works; __all__ is pinned."""
    assert codon_sdk.instrumentation.__all__ == ["TelemetryHandle", "initialize_telemetry"]
    assert codon_sdk.instrumentation.initialize_telemetry is initialize_telemetry
    assert "initialize_telemetry" in dir(codon_sdk.instrumentation)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = codon_sdk.instrumentation.nope


def test_instrumentation_imports_without_the_otel_extra_and_names_it_on_use() -> None:
    """Without opentelemetry-sdk the package and its schemas import; using it names the extra."""
    completed = run_script(
        """
        import sys
        sys.modules["opentelemetry.sdk"] = None
        import codon_sdk.instrumentation as instrumentation
        from codon_sdk.instrumentation.schemas.nodespec import NodeSpec
        try:
            instrumentation.initialize_telemetry
        except ImportError as exc:
            print(exc)
        """,
        {},
    )
    assert 'pip install "codon-sdk[otel]"' in completed.stdout


def test_without_grpc_the_grpc_protocol_fails_helpfully_while_http_still_exports(
    receiver: OTLPReceiver,
) -> None:
    """grpcio missing: ImportError naming the extra, nothing set up; http/protobuf works."""
    completed = run_script(
        f"""
        import os, sys
        sys.modules["grpc"] = None
        from opentelemetry import trace
        from codon_sdk.instrumentation import initialize_telemetry
        try:
            initialize_telemetry(endpoint="{receiver.grpc_endpoint}")
        except ImportError as exc:
            print("grpc:", exc)
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
        handle = initialize_telemetry(endpoint="{receiver.http_endpoint}")
        trace.get_tracer("t").start_span("over-http").end()
        print(handle.traces_mode)
        """,
        {},
    )
    first, mode = completed.stdout.strip().splitlines()
    assert first.startswith("grpc: OTLP export over grpc needs")
    assert 'pip install "codon-sdk[otel]"' in first
    assert mode == "installed"
    assert [s.name for s in receiver.wait_for_spans(1)] == ["over-http"]


# ---------------------------------------------------------------- configuration


def test_defaults_are_grpc_to_a_local_collector_with_a_short_timeout() -> None:
    """Nothing configured: gRPC to http://localhost:4317, 3 s timeout, no headers."""
    settings = resolve()
    for target in (settings.traces, settings.metrics):
        assert (target.protocol, target.endpoint) == ("grpc", "http://localhost:4317")
        assert target.timeout == DEFAULT_EXPORT_TIMEOUT_SECONDS == 3.0
        assert target.headers == ()


def test_http_protobuf_protocol_appends_signal_paths_to_the_base_endpoint() -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: localhost:4318/v1/traces and /v1/metrics."""
    settings = resolve({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert settings.traces.endpoint == "http://localhost:4318/v1/traces"
    assert settings.metrics.endpoint == "http://localhost:4318/v1/metrics"
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "h://c/"}
    assert resolve(env).traces.endpoint == "h://c/v1/traces"


def test_endpoint_argument_wins_and_is_a_base_url_for_http() -> None:
    """The argument beats every variable; for HTTP a signal path given with it is replaced."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env-traces:4317",
    }
    assert resolve(env, endpoint="http://arg:4317").traces.endpoint == "http://arg:4317"
    http = {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    settings = resolve(http, endpoint="https://arg:4318/v1/traces/")
    assert settings.traces.endpoint == "https://arg:4318/v1/traces"
    assert settings.metrics.endpoint == "https://arg:4318/v1/metrics"


def test_signal_specific_variables_override_the_generic_ones() -> None:
    """*_TRACES_* / *_METRICS_* endpoint (used as is), protocol, headers and timeout win."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "c=3",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "7",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1.5",
    }
    settings = resolve(env)
    assert (settings.traces.protocol, settings.traces.endpoint) == (
        "http/protobuf",
        "http://traces:9999/custom",
    )
    assert (settings.metrics.protocol, settings.metrics.endpoint) == ("grpc", "http://generic:4318")
    assert settings.traces.headers == (("a", "1"), ("b", "2"))
    assert settings.metrics.headers == (("c", "3"),)
    assert (settings.traces.timeout, settings.metrics.timeout) == (7.0, 1.5)


def test_api_key_is_sent_as_a_header_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """api_key beats CODON_API_KEY as x-codon-api-key; no repr shows it."""
    env = {"CODON_API_KEY": "ck-env", "OTEL_EXPORTER_OTLP_HEADERS": "X-Tenant=acme%20corp"}
    from_env = resolve(env)
    assert dict(from_env.traces.headers) == {"x-tenant": "acme corp", "x-codon-api-key": "ck-env"}
    settings = resolve(env, api_key="ck-SECRET")
    assert dict(settings.metrics.headers)["x-codon-api-key"] == "ck-SECRET"
    assert settings.traces.header_names == ("x-codon-api-key", "x-tenant")
    assert "ck-SECRET" not in repr(settings)
    assert "acme" not in repr(settings)
    assert "ck-SECRET" not in caplog.text


def test_unsupported_protocols_and_timeouts_fall_back_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """http/json -> http/protobuf, unknown -> grpc, bad timeout -> 3 s; each says so."""
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "carrier-pigeon",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
    }
    with caplog.at_level(logging.WARNING, logger="codon_sdk.telemetry"):
        settings = resolve(env)
    assert (settings.traces.protocol, settings.metrics.protocol) == ("http/protobuf", "grpc")
    assert settings.traces.timeout == DEFAULT_EXPORT_TIMEOUT_SECONDS
    messages = [r.getMessage() for r in caplog.records]
    assert any("'http/json' is not supported" in m for m in messages)
    assert any("'carrier-pigeon'" in m for m in messages)
    assert any("invalid OTLP export timeout 'soon'" in m for m in messages)


def test_resource_attributes_come_from_arguments_then_codon_variables() -> None:
    """service.name and deployment from arguments, else CODON_*; the org id from the env."""
    env = {"CODON_ORGANIZATION_ID": "org-7", "CODON_DEPLOYMENT_ENVIRONMENT": "staging"}
    attrs = dict(resolve(env).resource_attributes)
    assert attrs == {
        "codon.organization.id": "org-7",
        "deployment.environment.name": "staging",
        "telemetry.distro.name": "codon-sdk",
        "telemetry.distro.version": codon_sdk.__version__,
    }
    attrs = dict(
        resolve(env, service_name="svc", deployment_environment="prod").resource_attributes
    )
    assert (attrs["service.name"], attrs["deployment.environment.name"]) == ("svc", "prod")


def test_display_endpoint_drops_credentials_and_query() -> None:
    """Log lines name the collector without user info, query or fragment."""
    assert display_endpoint("https://user:pw@collector:4318/v1/traces?k=v#f") == (
        "https://collector:4318/v1/traces"
    )
    assert display_endpoint("http://[::1]:4317") == "http://[::1]:4317"
    assert display_endpoint("collector:4317") == "collector:4317"


# ---------------------------------------------------------------- the export guard


TARGET = ExportTarget(
    signal="traces",
    protocol="grpc",
    endpoint="http://user:pw@collector:4317",
    timeout=3.0,
    headers=(("x-codon-api-key", "ck-SECRET"),),
)
METRICS_TARGET = ExportTarget(
    signal="metrics", protocol="grpc", endpoint="http://collector:4317", timeout=3.0, headers=()
)


class ScriptedSpanExporter(SpanExporter):
    """Answers from a script: a result, or an exception to raise; failures log like OTLP does."""

    def __init__(self, *answers: SpanExportResult | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.shutdowns = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer is SpanExportResult.FAILURE:
            logging.getLogger(EXPORTER_LOGGER).warning("Transient error, retrying in 1.00s.")
            logging.getLogger(EXPORTER_LOGGER).error("Failed to export spans batch code: 503")
        return answer

    def shutdown(self) -> None:
        self.shutdowns += 1


class ScriptedMetricExporter(MetricExporter):
    def __init__(self, *answers: MetricExportResult) -> None:
        super().__init__()
        self.answers = list(answers)
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return self.answers.pop(0) if self.answers else MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


def spans(count: int = 1) -> list[ReadableSpan]:
    return [ReadableSpan(name=f"span-{i}") for i in range(count)]


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_failures_across_signals_warn_once_and_drop_during_the_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning for the first failure; later batches of either signal are dropped untried."""
    caplog.set_level(logging.DEBUG)
    health = ExportHealth(cooldown=60.0)
    inner = ScriptedSpanExporter(SpanExportResult.FAILURE)
    span_exporter = GuardedSpanExporter(inner, TARGET, health)
    metric_inner = ScriptedMetricExporter()
    metric_exporter = GuardedMetricExporter(metric_inner, METRICS_TARGET, health)

    assert span_exporter.export(spans(2)) is SpanExportResult.FAILURE
    for _ in range(3):
        assert span_exporter.export(spans()) is SpanExportResult.FAILURE
    empty = MetricsData(resource_metrics=[])
    assert metric_exporter.export(empty) is MetricExportResult.FAILURE

    assert (inner.calls, metric_inner.exported) == (1, [])
    assert health.failing
    [warning] = warnings_in(caplog)
    assert warning.startswith("Codon telemetry: exporting traces to http://collector:4317 (grpc)")
    assert "Failed to export spans batch code: 503" in warning
    assert "pw@" not in caplog.text
    assert "ck-SECRET" not in caplog.text
    exporter_records = [r for r in caplog.records if r.name == EXPORTER_LOGGER]
    assert exporter_records == []  # the exporter's own lines became DEBUG copies
    assert "OTLP exporter: Transient error, retrying in 1.00s." in caplog.text


def test_a_raising_exporter_is_contained_and_recovery_rearms_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception is a failed export; a success logs recovery; the next outage warns again."""
    caplog.set_level(logging.INFO, logger="codon_sdk.telemetry")
    inner = ScriptedSpanExporter(
        ConnectionError("collector gone"),
        SpanExportResult.FAILURE,
        SpanExportResult.SUCCESS,
        SpanExportResult.FAILURE,
    )
    exporter = GuardedSpanExporter(inner, TARGET, ExportHealth(cooldown=0.0))
    results = [exporter.export(spans()) for _ in range(4)]
    assert results == [
        SpanExportResult.FAILURE,
        SpanExportResult.FAILURE,
        SpanExportResult.SUCCESS,
        SpanExportResult.FAILURE,
    ]
    first, second = warnings_in(caplog)
    assert "ConnectionError: collector gone" in first
    assert "Failed to export spans batch code: 503" in second
    assert "succeed again (2 item(s) were dropped meanwhile)" in caplog.text


def test_exporter_loggers_are_untouched_outside_a_guarded_export(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only records emitted inside a guarded export are quieted."""
    GuardedSpanExporter(ScriptedSpanExporter(), TARGET, ExportHealth())
    with caplog.at_level(logging.WARNING, logger=EXPORTER_LOGGER):
        logging.getLogger(EXPORTER_LOGGER).warning("constructed with odd settings")
    assert [r.getMessage() for r in caplog.records] == ["constructed with odd settings"]


def test_guarded_exporters_shut_down_their_exporter_once() -> None:
    """A second shutdown (the application's provider at exit) reaches nothing."""
    inner = ScriptedSpanExporter()
    exporter = GuardedSpanExporter(inner, TARGET, ExportHealth())
    exporter.shutdown()
    exporter.shutdown()
    assert inner.shutdowns == 1
    assert exporter.force_flush() is True


def test_processor_ends_silently_after_shutdown_and_shuts_down_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Spans ended after shutdown are ignored without a log line; shutdown is idempotent."""
    caplog.set_level(logging.DEBUG)
    memory = InMemorySpanExporter()
    processor = CodonBatchSpanProcessor(memory)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("codon.tests")
    tracer.start_span("before").end()
    processor.shutdown()
    tracer.start_span("after").end()
    processor.shutdown()
    provider.shutdown()
    assert [s.name for s in memory.get_finished_spans()] == ["before"]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_metric_reader_exports_at_shutdown_and_shuts_down_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The final collection is exported; a provider shutting it down again logs nothing."""
    caplog.set_level(logging.DEBUG)
    exporter = ScriptedMetricExporter()
    reader = CodonMetricReader(exporter)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    provider.get_meter("codon.tests").create_counter("codon.tests.count").add(2)
    reader.shutdown()
    provider.shutdown()
    assert len(exporter.exported) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_traces_and_metrics_share_an_outage_only_when_sent_to_one_collector() -> None:
    """Same protocol and host (HTTP paths aside) is one collector: one warning, one timeout."""
    http = resolve({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert _collector(http.traces) == _collector(http.metrics)
    split = resolve({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics-only:4317"})
    assert _collector(split.traces) != _collector(split.metrics)


# ---------------------------------------------------------------- process-wide behaviour


def test_repeated_calls_return_one_handle_until_shutdown(receiver: OTLPReceiver) -> None:
    """Same handle (warning once if arguments differ), one export per span; set-up again after."""
    completed = run_script(
        """
        from opentelemetry import trace
        from codon_sdk.instrumentation import initialize_telemetry
        first = initialize_telemetry(service_name="svc")
        again = initialize_telemetry(service_name="svc")
        other = initialize_telemetry(service_name="other")
        trace.get_tracer("t").start_span("once").end()
        first.shutdown()
        first.shutdown()
        later = initialize_telemetry(service_name="svc")
        trace.get_tracer("t").start_span("after-shutdown").end()
        print(first is again is other, later is not first, first.traces_mode, later.traces_mode)
        """,
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint},
    )
    assert completed.stdout.split() == ["True", "True", "installed", "attached"]
    [warning] = stderr_lines(completed)
    assert "initialize_telemetry() was already called" in warning
    receiver.wait_for_spans(2)
    assert sorted(s.name for s in receiver.spans) == ["after-shutdown", "once"]


APP_PROVIDERS = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from codon_sdk.instrumentation import initialize_telemetry
resource = Resource.create({"service.name": "host-app"})
app_tracing = TracerProvider(resource=resource)
app_metrics = MeterProvider(resource=resource)
trace.set_tracer_provider(app_tracing)
metrics.set_meter_provider(app_metrics)
"""


def test_default_attaches_to_application_sdk_providers(receiver: OTLPReceiver) -> None:
    """attach_to_existing=None with SDK providers installed: Codon's exporters join them."""
    completed = run_script(
        APP_PROVIDERS
        + """
handle = initialize_telemetry(service_name="unused")
trace.get_tracer("app").start_span("app.span").end()
metrics.get_meter("app").create_counter("app.requests").add(1)
print(handle.traces_mode, handle.metrics_mode,
      handle.tracer_provider is app_tracing, handle.meter_provider is app_metrics)
""",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint},
    )
    assert completed.stdout.split() == ["attached", "attached", "True", "True"]
    assert completed.stderr == ""
    [span] = receiver.wait_for_spans(1)
    metric = receiver.wait_for_metrics("app.requests")["app.requests"]
    assert span.resource_attributes["service.name"] == "host-app"
    assert metric.resource_attributes["service.name"] == "host-app"


def test_attach_false_with_an_application_provider_stays_private_and_says_so(
    receiver: OTLPReceiver,
) -> None:
    """attach_to_existing=False cannot replace a global provider: private, one warning each."""
    completed = run_script(
        APP_PROVIDERS
        + """
handle = initialize_telemetry(attach_to_existing=False)
print(handle.traces_mode, handle.metrics_mode, handle.tracer_provider is app_tracing)
""",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint},
    )
    assert completed.stdout.split() == ["private", "private", "False"]
    traces_warning, metrics_warning = stderr_lines(completed)
    assert "a global TracerProvider (TracerProvider) is already installed" in traces_warning
    assert "a global MeterProvider (MeterProvider) is already installed" in metrics_warning


def test_attach_true_without_an_application_provider_installs_codon_own(
    receiver: OTLPReceiver,
) -> None:
    """attach_to_existing=True with nothing to attach to: Codon's providers, and a warning."""
    completed = run_script(
        """
        from opentelemetry import trace
        from codon_sdk.instrumentation import initialize_telemetry
        handle = initialize_telemetry(attach_to_existing=True)
        trace.get_tracer("t").start_span("codon-installed").end()
        print(handle.traces_mode, trace.get_tracer_provider() is handle.tracer_provider)
        """,
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint},
    )
    assert completed.stdout.split() == ["installed", "True"]
    [warning] = stderr_lines(completed)
    assert "attach_to_existing=True, but no OpenTelemetry SDK TracerProvider" in warning
    assert [s.name for s in receiver.wait_for_spans(1)] == ["codon-installed"]
