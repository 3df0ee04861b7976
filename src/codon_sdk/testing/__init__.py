"""Test kit: real protocols on loopback, for Codon's tests and yours.

- :class:`OpenAIProtocolServer` answers the real ``openai`` client from
  :class:`Recording` objects (JSON files: :func:`load_recordings`), with fault
  injection (429, 5xx, malformed bodies, delays, streams cut midway).
- :class:`AnthropicProtocolServer` does the same for the real ``anthropic``
  client's Messages API (JSON and server-sent events; errors from
  :func:`anthropic_error`; recordings from :func:`bundled_anthropic_recordings`).
- :class:`OTLPReceiver` is a real OTLP receiver (gRPC and HTTP/protobuf) that
  the real OpenTelemetry exporters send to; it can be made down or slow.
- :func:`capture_spans` collects the spans ended inside a ``with`` block.
- :class:`StoreConformance` is the ledger store conformance suite: subclass it
  to run every check on your backend (needs pytest); :class:`ExecutorConformance`
  is the same for executors (``codon_sdk.executors``).
- :class:`AuditSinkConformance` is the audit sink conformance suite (needs pytest), and
  :class:`TokenQueueConformance` the token queue one (``codon_sdk.runtime.TokenQueue``).

The OTLP receiver and :func:`capture_spans` need the ``[otel]`` extra, and
:class:`StoreConformance` pytest; they are imported on first use, so the OpenAI
server works without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from codon_sdk.testing._anthropic_server import AnthropicProtocolServer
from codon_sdk.testing._anthropic_wire import (
    anthropic_error,
    anthropic_overloaded,
    anthropic_rate_limit,
)
from codon_sdk.testing._openai_server import OpenAIProtocolServer
from codon_sdk.testing._openai_wire import echo_fallback
from codon_sdk.testing._recordings import (
    RecordedRequest,
    Recording,
    RequestMatch,
    bundled_anthropic_recordings,
    bundled_recordings,
    load_recordings,
    recordings_from_json,
    request_hash,
)

if TYPE_CHECKING:
    from codon_sdk.testing._conformance_erasure import ErasureConformance
    from codon_sdk.testing._executor_conformance import ExecutorConformance
    from codon_sdk.testing._otlp import OTLPExport, OTLPReceiver
    from codon_sdk.testing._otlp_records import (
        OTLPDataPoint,
        OTLPMetric,
        OTLPSpan,
        OTLPSpanEvent,
        OTLPSpanLink,
    )
    from codon_sdk.testing._sink_conformance import AuditSinkConformance
    from codon_sdk.testing._spans import SpanCapture, capture_spans
    from codon_sdk.testing._store_conformance import StoreConformance
    from codon_sdk.testing._token_queue_conformance import TokenQueueConformance

__all__ = [
    "AnthropicProtocolServer",
    "AuditSinkConformance",
    "ErasureConformance",
    "ExecutorConformance",
    "OTLPDataPoint",
    "OTLPExport",
    "OTLPMetric",
    "OTLPReceiver",
    "OTLPSpan",
    "OTLPSpanEvent",
    "OTLPSpanLink",
    "OpenAIProtocolServer",
    "RecordedRequest",
    "Recording",
    "RequestMatch",
    "SpanCapture",
    "StoreConformance",
    "TokenQueueConformance",
    "anthropic_error",
    "anthropic_overloaded",
    "anthropic_rate_limit",
    "bundled_anthropic_recordings",
    "bundled_recordings",
    "capture_spans",
    "echo_fallback",
    "load_recordings",
    "recordings_from_json",
    "request_hash",
]

_LAZY = {
    "AuditSinkConformance": "_sink_conformance",
    "ErasureConformance": "_conformance_erasure",
    "OTLPDataPoint": "_otlp_records",
    "OTLPExport": "_otlp",
    "OTLPMetric": "_otlp_records",
    "OTLPReceiver": "_otlp",
    "OTLPSpan": "_otlp_records",
    "OTLPSpanEvent": "_otlp_records",
    "OTLPSpanLink": "_otlp_records",
    "SpanCapture": "_spans",
    "StoreConformance": "_store_conformance",
    "ExecutorConformance": "_executor_conformance",
    "TokenQueueConformance": "_token_queue_conformance",
    "capture_spans": "_spans",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
