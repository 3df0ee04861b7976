"""Telemetry: the OpenTelemetry vocabulary, GenAI call spans, metrics and prices.

This layer speaks the OpenTelemetry API only (the ``opentelemetry-api`` package every
install has); the engine's run and node spans are opened by ``codon_sdk.runtime`` with
what is here. What other layers and integrations use:

- the attribute catalogue (``GenAIAttributes``, ``CodonNodeAttributes``...), the
  identity attributes every span of a run carries (:func:`run_attributes`) and
  :data:`TRACER_NAME`;
- :class:`GenAICall` / :func:`llm_call_scope`: one CLIENT span per LLM call with usage,
  cost and the GenAI metrics; the extractors that read a response's model, id, finish
  reasons and :class:`TokenUsage`;
- the prices (:data:`PRICES`, :func:`set_model_price`...; also on ``codon_sdk.llm``);
- :func:`record_error`: an exception on a span, through the redaction policy.

:func:`initialize_telemetry` (OTLP export) needs the ``otel`` extra and is imported on
first use, so this package imports without the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon_sdk.telemetry._attributes import (
    CodonBaseAttributes,
    CodonGraphAttributes,
    CodonLedgerAttributes,
    CodonNodeAttributes,
    CodonSpanNames,
    CodonWorkloadAttributes,
    GenAIAttributes,
    GenAIMetrics,
    GenAIOperations,
)
from codon_sdk.telemetry._cost import (
    DEFAULT_PRICES,
    PRICES,
    ModelPrice,
    PriceTable,
    model_price,
    reset_prices,
    set_model_price,
)
from codon_sdk.telemetry._errors import record_error, redacted_error
from codon_sdk.telemetry._genai import (
    CAPTURE_CONTENT_ENV,
    GenAICall,
    TokenUsage,
    capture_message_content,
    cost_of,
    error_type_of,
    extract_finish_reasons,
    extract_response_id,
    extract_response_model,
    extract_usage,
    field,
    jsonable,
    llm_call_active,
    llm_call_scope,
    llm_metadata,
    request_attributes,
    scrub,
)
from codon_sdk.telemetry._genai import TRACER_NAME as GENAI_TRACER_NAME
from codon_sdk.telemetry._metrics import (
    METER_NAME,
    instruments,
    record_node_duration,
    record_operation_duration,
    record_request_cache,
    record_run_cost,
    record_run_duration,
    record_token_usage,
)
from codon_sdk.telemetry._tracing import (
    TRACER_NAME,
    continuation_links,
    run_attributes,
    span_ids,
)

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.telemetry._setup import TelemetryHandle, initialize_telemetry

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "DEFAULT_PRICES",
    "GENAI_TRACER_NAME",
    "METER_NAME",
    "PRICES",
    "TRACER_NAME",
    "CodonBaseAttributes",
    "CodonGraphAttributes",
    "CodonLedgerAttributes",
    "CodonNodeAttributes",
    "CodonSpanNames",
    "CodonWorkloadAttributes",
    "GenAIAttributes",
    "GenAICall",
    "GenAIMetrics",
    "GenAIOperations",
    "ModelPrice",
    "PriceTable",
    "TelemetryHandle",
    "TokenUsage",
    "capture_message_content",
    "continuation_links",
    "cost_of",
    "error_type_of",
    "extract_finish_reasons",
    "extract_response_id",
    "extract_response_model",
    "extract_usage",
    "field",
    "initialize_telemetry",
    "instruments",
    "jsonable",
    "llm_call_active",
    "llm_call_scope",
    "llm_metadata",
    "model_price",
    "record_error",
    "record_node_duration",
    "record_operation_duration",
    "record_request_cache",
    "record_run_cost",
    "record_run_duration",
    "record_token_usage",
    "redacted_error",
    "request_attributes",
    "reset_prices",
    "run_attributes",
    "scrub",
    "set_model_price",
    "span_ids",
]

_LAZY = {"TelemetryHandle", "initialize_telemetry"}  # need the otel extra


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("codon_sdk.telemetry._setup"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
