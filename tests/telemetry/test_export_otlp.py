"""initialize_telemetry end to end: real OTLP (gRPC and HTTP/protobuf) to a receiver on loopback.

OpenTelemetry lets a process set its global providers once, so every scenario
runs in a fresh interpreter (a small script) while the :class:`OTLPReceiver`
runs here. The scripts never flush: what arrives was delivered by the exit hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import codon_sdk
from codon_sdk.telemetry._setup_config import DEFAULT_EXPORT_TIMEOUT_SECONDS
from codon_sdk.testing import OTLPExport, OTLPMetric, OTLPReceiver, OTLPSpan

SRC = str(Path(codon_sdk.__file__).resolve().parent.parent)
WORKFLOW = "invoke_workflow Research Agent"
NODES = ("plan", "act", "report")

# urllib3 2.x drops pooled connections without closing them when the HTTP
# exporter's requests.Session closes at exit; that ResourceWarning is theirs.
PYTHON_FLAGS = ["-W", "error", "-W", "ignore:unclosed <socket.socket:ResourceWarning"]

AGENT = """
import json, os, sys, time
from codon_sdk import CodonWorkload

def plan(message, *, runtime, context):
    runtime.emit("act", {"value": message["value"] + 1})
    return message["value"]

def act(message, *, runtime, context):
    runtime.emit("report", {"value": message["value"] * 2})
    return message["value"]

def report(message, *, runtime, context):
    return message["value"]

def build():
    workload = CodonWorkload(name="Research Agent", version="1.2.0", enable_tracing=True)
    workload.add_node(plan, "plan", "planner")
    workload.add_node(act, "act", "actor")
    workload.add_node(report, "report", "reporter")
    workload.add_edge("plan", "act")
    workload.add_edge("act", "report")
    return workload

KWARGS = json.loads(os.environ.get("TEST_INIT_KWARGS", "{}"))
"""


@dataclass(frozen=True)
class ScriptRun:
    returncode: int
    stdout: str
    stderr: str
    finished_at: float

    @property
    def output(self) -> dict[str, Any]:
        """The JSON object the script printed last."""
        lines = self.stdout.strip().splitlines()
        assert lines, f"the script printed nothing; stderr:\n{self.stderr}"
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_script(
    body: str, env: Mapping[str, str], kwargs: Mapping[str, Any] | None = None
) -> ScriptRun:
    """Run AGENT + body in a fresh interpreter with a clean OTEL_*/CODON_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CODON_"))}
    clean.update(
        ORG_NAMESPACE="test-org", PYTHONPATH=SRC, TEST_INIT_KWARGS=json.dumps(kwargs or {})
    )
    clean.update(env)
    script = AGENT + textwrap.dedent(body)
    completed = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, "-c", script],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    run = ScriptRun(completed.returncode, completed.stdout, completed.stderr, time.time())
    assert run.returncode == 0, run.stderr
    return run


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


def endpoint_env(transport: str, receiver: OTLPReceiver) -> dict[str, str]:
    """Point OTEL_EXPORTER_OTLP_ENDPOINT (and the protocol) at the receiver."""
    if transport == "grpc":
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint}
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
    }


# ---------------------------------------------------------------- a traced run, delivered at exit

TRACED_RUN = """
from opentelemetry import metrics
from codon_sdk.instrumentation import initialize_telemetry

handle = initialize_telemetry(**KWARGS)
workload = build()
report = workload.execute({"value": 1}, deployment_id="dev-otlp")
latency = metrics.get_meter("codon.tests").create_histogram("codon.tests.latency", unit="ms")
latency.record(12.5, {"node": "plan"})
print(json.dumps({
    "mode": handle.traces_mode,
    "metrics_mode": handle.metrics_mode,
    "repr": repr(handle),
    "run_id": report.run_id,
    "logic_id": workload.logic_id,
    "workload_id": workload.agent_class_id,
    "nodes": {
        s.name: {"id": s.id, "role": s.role, "code_hash": s.code_hash} for s in workload.nodes
    },
}))
# No force_flush(), no shutdown(): the exit hook has to deliver everything.
"""

# Spans would wait a minute in the batch queue, metrics a minute in the reader:
# whatever arrives was sent by the exit flush.
NO_PERIODIC_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}


@dataclass(frozen=True)
class Delivery:
    transport: str
    run: ScriptRun
    spans: tuple[OTLPSpan, ...]
    metric: OTLPMetric
    exports: tuple[OTLPExport, ...]
    resource: dict[str, Any]
    headers: dict[str, str]
    api_key: str


def _configuration(
    transport: str, receiver: OTLPReceiver
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], dict[str, str], str]:
    """(env, kwargs, expected resource subset, expected headers, api key) per transport.

    gRPC: everything from the environment. HTTP/protobuf: endpoint, api_key,
    service name and deployment from arguments, which win over the environment.
    """
    common = {"CODON_ORGANIZATION_ID": "org-42", **NO_PERIODIC_EXPORT}
    if transport == "grpc":
        env = {
            **common,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,x-team=agents%20core",
            "OTEL_SERVICE_NAME": "research-agent",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=from-otel,host.team=ml",
            "CODON_DEPLOYMENT_ENVIRONMENT": "staging",
            "CODON_API_KEY": "ck-env-SECRET",
        }
        resource = {"deployment.environment.name": "staging", "host.team": "ml"}
        headers = {"x-tenant": "acme", "x-team": "agents core"}
        return env, {}, resource, headers, "ck-env-SECRET"
    env = {
        **common,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # the argument wins
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=acme",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-tenant=acme",
        "OTEL_SERVICE_NAME": "from-env",
        "CODON_API_KEY": "ck-env-ignored",
    }
    kwargs = {
        "endpoint": receiver.http_endpoint,
        "api_key": "ck-arg-SECRET",
        "service_name": "research-agent",
        "deployment_environment": "production",
    }
    return (
        env,
        kwargs,
        {"deployment.environment.name": "production"},
        {"x-tenant": "acme"},
        ("ck-arg-SECRET"),
    )


@pytest.fixture(scope="module", params=["grpc", "http"])
def delivered(request: pytest.FixtureRequest) -> Iterator[Delivery]:
    """One traced run per transport, in a script that exits without flushing."""
    transport: str = request.param
    with OTLPReceiver() as receiver:
        env, kwargs, resource, headers, api_key = _configuration(transport, receiver)
        run = run_script(TRACED_RUN, env, kwargs)
        spans = receiver.wait_for_spans(1 + len(NODES))
        metric = receiver.wait_for_metrics("codon.tests.latency")["codon.tests.latency"]
        expected_resource = {
            "service.name": "research-agent",
            "codon.organization.id": "org-42",
            "telemetry.distro.name": "codon-sdk",
            **resource,
        }
        yield Delivery(
            transport, run, spans, metric, receiver.exports, expected_resource, headers, api_key
        )


def test_workflow_root_and_node_children_arrive_with_kinds_and_parentage(
    delivered: Delivery,
) -> None:
    """An INTERNAL root `invoke_workflow <name>` with an INTERNAL `codon.node.<name>` per node."""
    by_name = {s.name: s for s in delivered.spans}
    assert sorted(by_name) == sorted([WORKFLOW, *(f"codon.node.{n}" for n in NODES)])
    assert len(delivered.spans) == 1 + len(NODES)
    root = by_name[WORKFLOW]
    assert root.kind == "INTERNAL"
    assert root.parent_span_id is None
    for name in NODES:
        node = by_name[f"codon.node.{name}"]
        assert node.kind == "INTERNAL"
        assert node.parent_span_id == root.span_id
        assert node.trace_id == root.trace_id
        assert node.status_code == "UNSET"


def test_spans_carry_the_run_workload_and_nodespec_attributes(delivered: Delivery) -> None:
    """codon.workload.* on every span, codon.nodespec.* on node spans, gen_ai.* on the root."""
    out = delivered.run.output
    for span in delivered.spans:
        attrs = span.attributes
        assert attrs["codon.workload.run_id"] == out["run_id"]
        assert attrs["codon.workload.logic_id"] == out["logic_id"]
        assert attrs["codon.workload.id"] == out["workload_id"]
        assert attrs["codon.workload.deployment_id"] == "dev-otlp"
        assert attrs["codon.workload.name"] == "Research Agent"
        assert attrs["codon.workload.version"] == "1.2.0"
        assert attrs["org.namespace"] == "test-org"
        assert attrs["codon.organization.id"] == "org-42"
        assert span.scope_name == "codon_sdk"
    [root] = [s for s in delivered.spans if s.name == WORKFLOW]
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.workflow.name"] == "Research Agent"
    for name in NODES:
        [node] = [s for s in delivered.spans if s.name == f"codon.node.{name}"]
        spec = out["nodes"][name]
        assert node.attributes["codon.nodespec.name"] == name
        assert node.attributes["codon.nodespec.id"] == spec["id"]
        assert node.attributes["codon.nodespec.role"] == spec["role"]
        assert node.attributes["codon.nodespec.code_hash"] == spec["code_hash"]


def test_resource_names_service_organization_and_deployment(delivered: Delivery) -> None:
    """service.name, codon.organization.id, deployment environment, OTEL_RESOURCE_ATTRIBUTES."""
    for span in delivered.spans:
        for key, value in delivered.resource.items():
            assert span.resource_attributes.get(key) == value, key
    assert delivered.spans[0].resource_attributes["telemetry.distro.version"] == (
        codon_sdk.__version__
    )


def test_every_export_carries_the_configured_headers_and_api_key(delivered: Delivery) -> None:
    """OTEL_EXPORTER_OTLP_*HEADERS and x-codon-api-key on every export; the key is never printed."""
    assert delivered.exports
    for export in delivered.exports:
        assert export.transport == delivered.transport
        assert export.outcome == "accepted"
        for name, value in delivered.headers.items():
            assert export.headers[name] == value
        assert export.headers["x-codon-api-key"] == delivered.api_key
    assert delivered.api_key not in delivered.run.stdout + delivered.run.stderr
    assert "x-codon-api-key" not in delivered.run.output["repr"]


def test_metrics_recorded_through_the_api_arrive_beside_the_spans(delivered: Delivery) -> None:
    """A histogram from metrics.get_meter() reaches the collector with the spans' resource."""
    metric = delivered.metric
    assert delivered.run.output["metrics_mode"] == "installed"
    assert (metric.kind, metric.unit, metric.scope_name) == ("histogram", "ms", "codon.tests")
    [point] = metric.data_points
    assert (point.count, point.sum, point.attributes) == (1, 12.5, {"node": "plan"})
    assert metric.resource_attributes == delivered.spans[0].resource_attributes
    assert {e.signal for e in delivered.exports} == {"traces", "metrics"}


def test_a_script_that_never_flushes_still_delivers_everything_at_exit(
    delivered: Delivery,
) -> None:
    """No force_flush()/shutdown() and one-minute export intervals: the exit hook sent it all."""
    assert delivered.run.output["mode"] == "installed"
    assert delivered.run.stderr == ""
    assert len(delivered.spans) == 1 + len(NODES)
    assert sum(e.items for e in delivered.exports if e.signal == "traces") == 1 + len(NODES)


# ---------------------------------------------------------------- an application's own provider

ATTACHED = """
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from codon_sdk.instrumentation import initialize_telemetry

app_exporter = InMemorySpanExporter()
# This provider is not shut down at exit: only Codon's exit hook can flush Codon's processor.
app_provider = TracerProvider(
    resource=Resource.create({"service.name": "host-app"}), shutdown_on_exit=False
)
app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
trace.set_tracer_provider(app_provider)

handle = initialize_telemetry(service_name="unused-when-attached", attach_to_existing=True)
with trace.get_tracer("host.app").start_as_current_span("app.handle_request"):
    build().execute({"value": 1}, deployment_id="dev-otlp")
print(json.dumps({
    "mode": handle.traces_mode,
    "same_provider": handle.tracer_provider is app_provider,
    "app_exported": sorted(s.name for s in app_exporter.get_finished_spans()),
}))
"""


def test_attach_to_existing_adds_codon_export_to_the_application_provider(
    receiver: OTLPReceiver,
) -> None:
    """App and Codon spans arrive with the app's resource; the app's own exporter still works."""
    run = run_script(ATTACHED, {**endpoint_env("grpc", receiver), **NO_PERIODIC_EXPORT})
    names = sorted(["app.handle_request", WORKFLOW, *(f"codon.node.{n}" for n in NODES)])
    out = run.output
    assert (out["mode"], out["same_provider"]) == ("attached", True)
    assert out["app_exported"] == names
    spans = receiver.wait_for_spans(len(names))
    assert sorted(s.name for s in spans) == names
    by_name = {s.name: s for s in spans}
    assert by_name[WORKFLOW].parent_span_id == by_name["app.handle_request"].span_id
    assert {s.resource_attributes["service.name"] for s in spans} == {"host-app"}
    assert run.stderr == ""


# ---------------------------------------------------------------- a collector that is down or slow

FAILING_COLLECTOR = """
from codon_sdk.instrumentation import initialize_telemetry

def timed(workload, runs=5):
    start = time.perf_counter()
    for _ in range(runs):
        workload.execute({"value": 1}, deployment_id="dev-otlp")
    return time.perf_counter() - start

workload = build()
timed(workload, 1)  # warm-up
baseline = timed(workload)  # tracing on, nothing set up: no-op spans
handle = initialize_telemetry()
timed(workload, 1)  # queue spans; the exporter takes them within 10 ms
time.sleep(0.3)  # an export is now being refused, or held by the collector
with_telemetry = timed(workload)
print(json.dumps({"baseline": baseline, "with_telemetry": with_telemetry, "ended_at": time.time()}))
"""


@pytest.mark.parametrize("transport", ["grpc", "http"])
@pytest.mark.parametrize("failure", ["down", "slow"])
def test_a_failing_collector_costs_the_run_nothing_and_warns_once(
    receiver: OTLPReceiver, transport: str, failure: str
) -> None:
    """Down or slow: runs as fast as without telemetry, prompt exit, one warning, key hidden."""
    if failure == "down":
        receiver.make_down()
    else:
        receiver.make_slow(30.0)  # far beyond the export timeout
    env = {
        **endpoint_env(transport, receiver),
        "OTEL_BSP_SCHEDULE_DELAY": "10",
        "CODON_API_KEY": "ck-SECRET",
    }
    run = run_script(FAILING_COLLECTOR, env)
    out = run.output
    assert out["with_telemetry"] - out["baseline"] < 1.0
    assert run.finished_at - out["ended_at"] < DEFAULT_EXPORT_TIMEOUT_SECONDS + 5.0
    [warning] = run.stderr_lines
    assert warning.startswith("Codon telemetry: exporting traces to http://127.0.0.1:")
    assert "failed" in warning
    assert "ck-SECRET" not in run.stderr
    assert receiver.spans == ()
