"""Anthropic Messages wire formats: server-sent event streams derived from bodies, error answers.

Pure functions over JSON values; the server in ``_anthropic_server`` drives them.
A streamed Messages call is the events ``message_start``, ``ping``, then per
content block ``content_block_start``, ``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta``, ``signature_delta``) and
``content_block_stop``, then ``message_delta`` (stop reason, output tokens) and
``message_stop``; each is one SSE message whose ``event:`` line is its type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from codon_sdk.testing._openai_wire import sse
from codon_sdk.testing._recordings import Recording, RequestMatch

__all__ = [
    "anthropic_error",
    "anthropic_error_body",
    "anthropic_overloaded",
    "anthropic_rate_limit",
    "message_stream",
]

_TEXT_PIECE = 8  # characters per text delta
_JSON_PIECE = 12  # characters per input_json_delta


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _block_events(index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    at = {"index": index}
    events: list[dict[str, Any]] = []
    if kind == "text":
        start = {**block, "text": ""}
        events.append({"type": "content_block_start", **at, "content_block": start})
        for piece in _chunks(str(block.get("text") or ""), _TEXT_PIECE):
            delta = {"type": "text_delta", "text": piece}
            events.append({"type": "content_block_delta", **at, "delta": delta})
    elif kind in ("tool_use", "server_tool_use"):
        start = {**block, "input": {}}
        events.append({"type": "content_block_start", **at, "content_block": start})
        arguments = json.dumps(block.get("input") or {}, separators=(",", ":"))
        for piece in _chunks(arguments, _JSON_PIECE):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", **at, "delta": delta})
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        events.append({"type": "content_block_start", **at, "content_block": start})
        for piece in _chunks(str(block.get("thinking") or ""), _TEXT_PIECE):
            delta = {"type": "thinking_delta", "thinking": piece}
            events.append({"type": "content_block_delta", **at, "delta": delta})
        signature = {"type": "signature_delta", "signature": block.get("signature") or ""}
        events.append({"type": "content_block_delta", **at, "delta": signature})
    else:  # a block without deltas arrives whole
        events.append({"type": "content_block_start", **at, "content_block": dict(block)})
    events.append({"type": "content_block_stop", **at})
    return events


def _events_from_body(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    usage = dict(body.get("usage") or {})
    started = {
        **body,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": started},
        {"type": "ping"},
    ]
    for index, block in enumerate(body.get("content") or []):
        events.extend(_block_events(index, block))
    delta = {"stop_reason": body.get("stop_reason"), "stop_sequence": body.get("stop_sequence")}
    final_usage = {"output_tokens": usage.get("output_tokens", 0)}
    events.append({"type": "message_delta", "delta": delta, "usage": final_usage})
    events.append({"type": "message_stop"})
    return events


def message_stream(recording: Recording) -> list[bytes]:
    """The SSE messages of a streamed Messages call: ``chunks`` verbatim, else from ``body``."""
    if recording.chunks is not None:
        events = [dict(e) if isinstance(e, Mapping) else e for e in recording.chunks]
    elif isinstance(recording.body, Mapping):
        events = list(_events_from_body(recording.body))
    else:
        raise ValueError(f"recording {recording.name!r} has neither chunks nor a JSON body")
    return [
        sse(e, event=str(e.get("type", "")) or None) if isinstance(e, dict) else sse(e)
        for e in events
    ]


# ---------------------------------------------------------------- errors


def anthropic_error_body(message: str, *, type: str) -> dict[str, Any]:
    """An Anthropic-shaped error body: ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": type, "message": message}}


def anthropic_error(
    status: int,
    message: str,
    *,
    type: str,
    headers: Mapping[str, str] | None = None,
    match: RequestMatch | None = None,
) -> Recording:
    """An Anthropic-shaped JSON error answer (``type``: ``invalid_request_error``,
    ``authentication_error``, ``rate_limit_error``, ``api_error``, ``overloaded_error``...)."""
    return Recording(
        status=status,
        body=anthropic_error_body(message, type=type),
        headers=dict(headers or {}),
        match=match or RequestMatch(),
        name=f"anthropic-error-{status}",
    )


def anthropic_rate_limit(
    retry_after: float = 1.0, *, match: RequestMatch | None = None
) -> Recording:
    """A 429 ``rate_limit_error`` with ``retry-after`` and the rate-limit headers."""
    after = f"{retry_after:g}"
    return anthropic_error(
        429,
        "Number of request tokens has exceeded your per-minute rate limit.",
        type="rate_limit_error",
        headers={
            "retry-after": after,
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
        },
        match=match,
    )


def anthropic_overloaded(*, match: RequestMatch | None = None) -> Recording:
    """A 529 ``overloaded_error``, as the API answers when it is overloaded."""
    return anthropic_error(529, "Overloaded", type="overloaded_error", match=match)
