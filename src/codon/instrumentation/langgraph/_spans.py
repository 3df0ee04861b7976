"""Spans of adapted LangGraph runs, through the OpenTelemetry API only.

One ``invoke_workflow <workload name>`` span per invocation (kind INTERNAL), and
one ``codon.node.<name>`` child per node activation, made current while the
node runs so that instrumented LLM calls nest under it. The run span is never
made current itself (a streaming generator cannot attach a context across its
yields); node spans name it as their parent explicitly. Node spans carry the
token usage and cost of the LLM calls recorded in the activation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from codon_sdk.identity import NodeSpec
from codon_sdk.telemetry import TRACER_NAME, record_error, run_attributes
from codon_sdk.telemetry import CodonGraphAttributes as GraphA
from codon_sdk.telemetry import CodonLedgerAttributes as L
from codon_sdk.telemetry import CodonNodeAttributes as NodeA
from codon_sdk.telemetry import GenAIAttributes as G
from codon_sdk.telemetry import GenAIOperations as Op

__all__ = ["RunSpans", "UsageTotals", "node_attributes"]


class UsageTotals:
    """Token usage and cost of the LLM calls of one activation."""

    __slots__ = ("calls", "cost", "cost_complete", "input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.cost_complete = True

    def add(self, llm: Mapping[str, Any]) -> None:
        usage = llm.get("usage") or {}
        self.calls += 1
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        cost = llm.get("cost_usd")
        if cost is None:
            self.cost_complete = False
        else:
            self.cost += float(cost)

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            G.USAGE_INPUT_TOKENS.value: self.input_tokens,
            G.USAGE_OUTPUT_TOKENS.value: self.output_tokens,
            "codon.node.llm_calls": self.calls,
        }
        if self.calls and (self.cost or self.cost_complete):
            attrs[G.COST_USD.value] = self.cost
        return attrs


def node_attributes(spec: NodeSpec) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        NodeA.NODESPEC_ID.value: spec.id,
        NodeA.NODESPEC_NAME.value: spec.name,
        NodeA.NODESPEC_ROLE.value: spec.role,
        NodeA.NODESPEC_CODE_HASH.value: spec.code_hash,
    }
    if spec.model_name:
        attrs[NodeA.MODEL_NAME.value] = spec.model_name
    if spec.model_version:
        attrs[NodeA.MODEL_VERSION.value] = spec.model_version
    return attrs


class RunSpans:
    """Opens the spans of one invocation of an adapted graph."""

    __slots__ = ("_base", "_redact", "_root", "_tracer")

    def __init__(self, context: dict[str, Any], redact: Callable[[str], str] | None = None) -> None:
        self._redact = redact  # exceptions reach spans through the run's redaction policy
        from codon_sdk import __version__

        self._tracer = trace.get_tracer(TRACER_NAME, __version__)
        self._base = run_attributes(context)
        self._root: Span | None = None

    def start_run(self, name: str, extra: Mapping[str, Any]) -> None:
        """Start the ``invoke_workflow`` span, as a child of the caller's current span."""
        attrs = dict(self._base)
        attrs[G.OPERATION_NAME.value] = Op.INVOKE_WORKFLOW.value
        attrs[G.WORKFLOW_NAME.value] = name
        attrs[GraphA.FRAMEWORK.value] = "langgraph"
        attrs.update({k: v for k, v in extra.items() if v is not None})
        self._root = self._tracer.start_span(
            f"invoke_workflow {name}", kind=SpanKind.INTERNAL, attributes=attrs
        )

    @property
    def recording(self) -> bool:
        """Whether the run span records anything (an SDK is set up and it was sampled)."""
        return self._root is not None and self._root.is_recording()

    def end_run(self, status: str, events: int, error: BaseException | None) -> None:
        root = self._root
        if root is None:
            return
        root.set_attribute("codon.workload.status", status)
        root.set_attribute(L.EVENT_COUNT.value, events)
        if error is not None:
            root.set_attribute(G.ERROR_TYPE.value, type(error).__qualname__)
            record_error(root, error, self._redact)
        root.end()
        self._root = None

    def start_node(self, spec: NodeSpec, seq: int, key: str) -> Span:
        """A node span under the run span (not yet current: the caller attaches it)."""
        attrs = dict(self._base)
        attrs.update(node_attributes(spec))
        attrs[L.SEQ.value] = seq
        attrs["codon.graph.task_key"] = key
        parent = trace.set_span_in_context(self._root) if self._root is not None else None
        return self._tracer.start_span(
            f"codon.node.{spec.name}", context=parent, kind=SpanKind.INTERNAL, attributes=attrs
        )

    def end_node(
        self,
        span: Span,
        status: str,
        seq_end: int,
        usage: UsageTotals | None,
        error: BaseException | None,
    ) -> None:
        span.set_attribute(NodeA.STATUS.value, status)
        span.set_attribute(L.SEQ_END.value, seq_end)
        if usage is not None:
            span.set_attributes(usage.attributes())
        if error is not None:
            span.set_attribute(G.ERROR_TYPE.value, type(error).__qualname__)
            record_error(span, error, self._redact)
        span.end()
