"""Message content on spans, in the GenAI conventions' JSON form, for every provider.

Content goes on spans only when capture is on (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.system_instructions``) as
``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``; it is scrubbed of
the client's secrets and passed through the run's redaction policy first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from codon_sdk.llm._adapter import RequestInfo, ResponseInfo
from codon_sdk.redaction import Redactor
from codon_sdk.runtime import current_redact
from codon_sdk.telemetry import GenAIAttributes as G
from codon_sdk.telemetry import (
    extract_finish_reasons,
    extract_response_id,
    extract_response_model,
    extract_usage,
    jsonable,
    scrub,
)

__all__ = [
    "content_json",
    "describe_params",
    "described_response",
    "text_parts",
    "tool_call_part",
]


def content_json(value: Any, secrets: tuple[str, ...]) -> str:
    """Message content for a span: scrubbed of the client's secrets, then through the same
    redaction policy as the ledger (so a masked secret has the same marker in both)."""
    redact = current_redact()
    policy = getattr(redact, "__self__", None)  # the Redactor: values under credential keys
    if isinstance(policy, Redactor):
        value = policy.redact_value(value)
    text = scrub(json.dumps(value, ensure_ascii=False, default=str), secrets)
    return text if redact is None else redact(text)


def text_parts(text: Any) -> list[dict[str, Any]]:
    """``[{"type": "text", "content": text}]``, or nothing for empty or non-text."""
    return [{"type": "text", "content": text}] if isinstance(text, str) and text else []


def tool_call_part(call: Mapping[str, Any]) -> dict[str, Any]:
    """A ``tool_call`` part from ``id``, ``name`` and ``arguments``."""
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": call.get("name"),
        "arguments": call.get("arguments"),
    }


def describe_params(
    operation: str,
    params: Mapping[str, Any],
    attributes: dict[str, Any],
    secrets: tuple[str, ...],
    *,
    messages: list[Any] | None = None,
    system: list[Any] | None = None,
) -> RequestInfo:
    """The :class:`RequestInfo` of a call's parameters (transport settings already left
    out), with the provider's ``attributes``; ``messages`` and ``system`` (given only when
    message content is captured) go onto the span as the GenAI input attributes."""
    if messages:
        attributes[G.INPUT_MESSAGES.value] = content_json(messages, secrets)
    if system:
        attributes[G.SYSTEM_INSTRUCTIONS.value] = content_json(system, secrets)
    model = params.get("model")
    return RequestInfo(
        operation=operation,
        model=model if isinstance(model, str) and model else None,
        stream=params.get("stream") is True,
        params=jsonable(params, secrets),
        attributes=attributes,
    )


def described_response(obj: Any, *, finish_reasons: bool = True) -> ResponseInfo:
    """A whole response's model, id, finish reasons (unless the operation has none) and
    usage, read the provider-neutral way; the provider adds its own attributes."""
    return ResponseInfo(
        model=extract_response_model(obj),
        id=extract_response_id(obj),
        finish_reasons=extract_finish_reasons(obj) if finish_reasons else (),
        usage=extract_usage(obj),
    )
