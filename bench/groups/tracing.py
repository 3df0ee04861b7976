"""``tracing``: what ``enable_tracing=True`` adds per activation, against the spans alone.

Contestants, interleaved, all on one OpenTelemetry SDK tracer provider whose
span processor drops finished spans (so exporting is not measured on either side):

* ``untraced``: the 10,000-step token loop, ``enable_tracing=False``;
* ``traced``: the same loop, ``enable_tracing=True`` (a root ``invoke_workflow`` span,
  one ``codon.node.loop`` span per activation, trace ids stamped on ledger events);
* ``sdk_spans``: a plain Python loop creating and ending the same spans with the
  SDK directly: the same names, kinds and attributes, as the current span.

Target (issue "observability"): (traced - untraced) per activation is at most
1.5x the per-span cost of ``sdk_spans``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

from bench._harness import Contestant, HarnessError, Result, Settings, Stats, Target, interleave
from bench._loops import DEPLOYMENT, NODE, make_node, seed_payload
from codon_sdk import CodonWorkload

__all__ = ["run"]

GROUP = "tracing"
STEPS = 10_000
TARGET = Target("<=", 1.5)


class _Drop(SpanProcessor):
    """Finished spans go nowhere: the benchmark measures making them, not exporting."""

    def on_end(self, span: ReadableSpan) -> None:
        return None


def _provider() -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider()
    provider.add_span_processor(_Drop())
    trace.set_tracer_provider(provider)
    return provider


def _loop(traced: bool) -> Any:
    workload = CodonWorkload(
        name="bench-tracing", version="1.0", org_namespace="bench", enable_tracing=traced
    )
    spec = workload.add_node(make_node("token", STEPS), NODE, "worker")
    workload.add_edge(NODE, NODE)

    def run() -> Any:
        return workload.execute(seed_payload("token"), deployment_id=DEPLOYMENT, max_steps=STEPS)

    return run, workload, spec


def _sdk_spans(provider: TracerProvider, workload: CodonWorkload, spec: Any) -> Any:
    tracer = provider.get_tracer("bench.sdk")
    base = {
        "codon.workload.id": workload.agent_class_id,
        "codon.workload.logic_id": workload.logic_id,
        "codon.workload.run_id": "bench-run",
        "codon.workload.deployment_id": DEPLOYMENT,
        "codon.workload.name": workload.name,
        "codon.workload.version": workload.version,
        "org.namespace": "bench",
        "codon.organization.id": "bench",
    }

    def run() -> None:
        with tracer.start_as_current_span(
            f"invoke_workflow {workload.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                **base,
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": workload.name,
            },
        ):
            for seq in range(STEPS):
                attrs = dict(base)
                attrs["codon.nodespec.id"] = spec.id
                attrs["codon.nodespec.name"] = spec.name
                attrs["codon.nodespec.role"] = spec.role
                attrs["codon.nodespec.code_hash"] = spec.code_hash
                attrs["codon.node.token_id"] = f"t{seq + 1}"
                attrs["codon.ledger.seq"] = seq * 3 + 2
                with tracer.start_as_current_span(
                    f"codon.node.{NODE}",
                    kind=SpanKind.INTERNAL,
                    attributes=attrs,
                    record_exception=True,
                    set_status_on_exception=True,
                ) as span:
                    span.set_attribute("codon.ledger.seq_end", seq * 3 + 4)
                    span.set_attribute("codon.node.attempt", 0)

    return run


def run(settings: Settings) -> list[Result]:
    reps = settings.reps(full=7, quick=3)
    provider = _provider()
    untraced, _, _ = _loop(traced=False)
    traced, workload, spec = _loop(traced=True)
    sdk = _sdk_spans(provider, workload, spec)
    report = traced()
    if report.status != "completed" or report.event_count != 3 * STEPS + 2:
        raise HarnessError(f"traced loop ended {report.status!r}")
    untraced()
    sdk()
    timings = interleave(
        [Contestant("untraced", untraced), Contestant("traced", traced), Contestant("sdk", sdk)],
        reps,
    )
    per = {name: [w / STEPS * 1e6 for w in t.wall] for name, t in timings.items()}
    added = [t - u for t, u in zip(per["traced"], per["untraced"], strict=True)]
    ratio = [a / s for a, s in zip(added, per["sdk"], strict=True)]
    stats = {name: Stats.of(values) for name, values in per.items()}
    added_stats, ratio_stats = Stats.of(added), Stats.of(ratio)
    return [
        Result(
            GROUP,
            "untraced_loop",
            stats["untraced"].median,
            "µs/step",
            None,
            stats["untraced"].describe(),
            tuple(per["untraced"]),
        ),
        Result(
            GROUP,
            "traced_loop",
            stats["traced"].median,
            "µs/step",
            None,
            stats["traced"].describe(),
            tuple(per["traced"]),
        ),
        Result(
            GROUP,
            "tracing_cost",
            added_stats.median,
            "µs/step",
            None,
            f"traced - untraced per activation; {added_stats.describe()}",
            tuple(added),
        ),
        Result(
            GROUP,
            "sdk_span",
            stats["sdk"].median,
            "µs/span",
            None,
            f"the same spans made directly with the SDK; {stats['sdk'].describe()}",
            tuple(per["sdk"]),
        ),
        Result(
            GROUP,
            "tracing_cost_over_sdk_span",
            ratio_stats.median,
            "x",
            TARGET,
            f"(traced - untraced) / SDK span, per activation; {ratio_stats.describe()}",
            tuple(ratio),
        ),
    ]
