"""Spans for runs and node activations, through the OpenTelemetry API only (no SDK needed).

A traced run is one ``invoke_workflow <workload name>`` span (kind INTERNAL,
``gen_ai.operation.name=invoke_workflow``) with one ``codon.node.<name>`` child
per activation. Spans carry the Codon identity attributes and their position in
the ledger (``codon.ledger.seq`` .. ``codon.ledger.seq_end``); ledger events
carry the trace and span ids back (see ``Recorder``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from codon_sdk.telemetry._attributes import CodonBaseAttributes as Base
from codon_sdk.telemetry._attributes import CodonLedgerAttributes as L
from codon_sdk.telemetry._attributes import CodonNodeAttributes as NodeA
from codon_sdk.telemetry._attributes import CodonWorkloadAttributes as W
from codon_sdk.telemetry._attributes import GenAIAttributes as G
from codon_sdk.telemetry._attributes import GenAIOperations as Op

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run

__all__ = ["TRACER_NAME", "RunTracer", "run_attributes", "span_ids"]

TRACER_NAME = "codon_sdk"


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


def span_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, or None outside a recording span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class RunTracer:
    """Opens a run's root span and its node spans (as the current span)."""

    __slots__ = ("_base", "_tracer")

    def __init__(
        self, context: dict[str, Any], tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        from codon_sdk import __version__

        self._tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
        self._base = run_attributes(context)

    @contextlib.contextmanager
    def run_span(self, run: Run) -> Iterator[trace.Span]:
        name = str(run.context.get("workload_name") or "workload")
        attrs = dict(self._base)
        attrs[G.OPERATION_NAME.value] = Op.INVOKE_WORKFLOW.value
        attrs[G.WORKFLOW_NAME.value] = name
        with self._tracer.start_as_current_span(
            f"invoke_workflow {name}", kind=SpanKind.INTERNAL, attributes=attrs
        ) as span:
            yield span

    @contextlib.contextmanager
    def node_span(self, run: Run, node: NodeDef, token_id: str, seq: int) -> Iterator[trace.Span]:
        spec = node.spec
        attrs = dict(self._base)
        attrs[NodeA.NODESPEC_ID.value] = spec.id
        attrs[NodeA.NODESPEC_NAME.value] = spec.name
        attrs[NodeA.NODESPEC_ROLE.value] = spec.role
        attrs[NodeA.NODESPEC_CODE_HASH.value] = spec.code_hash
        attrs[NodeA.TOKEN_ID.value] = token_id
        attrs[L.SEQ.value] = seq
        if spec.model_name:
            attrs[NodeA.MODEL_NAME.value] = spec.model_name
        if spec.model_version:
            attrs[NodeA.MODEL_VERSION.value] = spec.model_version
        with self._tracer.start_as_current_span(
            f"codon.node.{node.name}",
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            try:
                yield span
            except Exception as exc:
                span.set_attribute(G.ERROR_TYPE.value, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
