"""What every span of a run shares, through the OpenTelemetry API only (no SDK needed):
the tracer name, the identity attributes, the link to the span a resumed run continues,
and the current span's ids (which ledger events carry back).

The engine's spans themselves (one ``invoke_workflow <workload name>`` span per run, a
``codon.node.<name>`` child per activation) are opened by ``codon_sdk.runtime``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from codon_sdk.telemetry._attributes import CodonBaseAttributes as Base
from codon_sdk.telemetry._attributes import CodonLedgerAttributes as L
from codon_sdk.telemetry._attributes import CodonNodeAttributes as NodeA
from codon_sdk.telemetry._attributes import CodonWorkloadAttributes as W

__all__ = ["TRACER_NAME", "continuation_links", "run_attributes", "span_ids"]

TRACER_NAME = "codon_sdk"
_TOKEN_ID = NodeA.TOKEN_ID.value
_SEQ = L.SEQ.value


def run_attributes(context: dict[str, Any]) -> dict[str, Any]:
    """The identity attributes every span of a run carries, from the run's context dict."""
    attrs = {
        W.WORKLOAD_ID.value: context.get("workload_id"),
        W.LOGIC_ID.value: context.get("logic_id"),
        W.RUN_ID.value: context.get("run_id"),
        W.DEPLOYMENT_ID.value: context.get("deployment_id"),
        W.NAME.value: context.get("workload_name"),
        W.VERSION.value: context.get("workload_version"),
        Base.ORG_NAMESPACE.value: context.get("org_namespace"),
        Base.ORGANIZATION_ID.value: context.get("organization_id"),
    }
    return {k: str(v) for k, v in attrs.items() if v is not None}


def continuation_links(continues: tuple[str, str] | None) -> list[trace.Link]:
    """A link to the last span of the run this one continues (from its ledger), if any."""
    if continues is None:
        return []
    try:
        trace_id, span_id = int(continues[0], 16), int(continues[1], 16)
    except (TypeError, ValueError):  # ledger data: hostile, never a crash
        return []
    if not (0 < trace_id < 1 << 128 and 0 < span_id < 1 << 64):
        return []
    context = trace.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    return [trace.Link(context, {"codon.link": "continues"})]


def span_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, or None outside a recording span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
