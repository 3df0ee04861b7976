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

from codon_sdk.redaction import Redactor
from codon_sdk.runtime import current_redact
from codon_sdk.telemetry import scrub

__all__ = ["content_json", "text_parts", "tool_call_part"]


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
