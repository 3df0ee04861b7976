"""Spans for node activations, through the OpenTelemetry API only (no SDK needed)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from codon_sdk.telemetry._attributes import (
    CodonBaseAttributes as Base,
)
from codon_sdk.telemetry._attributes import (
    CodonNodeAttributes as NodeA,
)
from codon_sdk.telemetry._attributes import (
    CodonWorkloadAttributes as W,
)

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run

__all__ = ["NodeSpanFactory", "TRACER_NAME"]

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


class NodeSpanFactory:
    """Opens one ``codon.node.<name>`` span per activation, as the current span."""

    __slots__ = ("_base", "_tracer")

    def __init__(
        self, context: dict[str, Any], tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        from codon_sdk import __version__

        self._tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
        self._base = run_attributes(context)

    def __call__(
        self, run: Run, node: NodeDef, token_id: str
    ) -> contextlib.AbstractContextManager[Any]:
        spec = node.spec
        attrs = dict(self._base)
        attrs[NodeA.NODESPEC_ID.value] = spec.id
        attrs[NodeA.NODESPEC_NAME.value] = spec.name
        attrs[NodeA.NODESPEC_ROLE.value] = spec.role
        attrs[NodeA.NODESPEC_CODE_HASH.value] = spec.code_hash
        attrs[NodeA.TOKEN_ID.value] = token_id
        if spec.model_name:
            attrs[NodeA.MODEL_NAME.value] = spec.model_name
        if spec.model_version:
            attrs[NodeA.MODEL_VERSION.value] = spec.model_version
        return self._tracer.start_as_current_span(f"codon.node.{node.name}", attributes=attrs)
