"""What an Anthropic Messages call asked and answered, as span attributes and ledger metadata.

Pure functions over the request keyword arguments, the ``Message`` (or the raw
stream events) and its ``usage``: ``input_tokens`` plus
``cache_read_input_tokens`` and ``cache_creation_input_tokens`` are the input
(``codon_sdk.telemetry``'s ``extract_usage``). A stream's events are folded back
into the message they describe and read like one. Content goes on spans only
when capture is on, in the GenAI conventions' JSON form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from codon_sdk.llm import (
    RequestInfo,
    ResponseInfo,
    content_json,
    describe_params,
    described_response,
    text_parts,
    tool_call_part,
)
from codon_sdk.telemetry import GenAIAttributes as G
from codon_sdk.telemetry import field as get
from codon_sdk.telemetry import (
    request_attributes,
)

__all__ = ["describe_chunks", "describe_request", "describe_response"]

# request keyword arguments that are transport settings, never recorded
_TRANSPORT = frozenset({"extra_headers", "extra_query", "timeout"})
_USAGE = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def describe_request(
    operation: str, kwargs: Mapping[str, Any], secrets: tuple[str, ...], *, capture: bool
) -> RequestInfo:
    """Describe the keyword arguments of ``messages.create``; transport settings left out."""
    params = {k: v for k, v in kwargs.items() if k not in _TRANSPORT}
    attrs = request_attributes(params)
    top_k = params.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        attrs[G.REQUEST_TOP_K.value] = top_k
    stops = params.get("stop_sequences")
    if isinstance(stops, (list, tuple)) and all(isinstance(s, str) for s in stops):
        attrs[G.REQUEST_STOP_SEQUENCES.value] = tuple(stops)
    if not capture:
        return describe_params(operation, params, attrs, secrets)
    messages = [_message(m) for m in params.get("messages") or []]
    system = _parts(params.get("system"))
    return describe_params(operation, params, attrs, secrets, messages=messages, system=system)


def describe_response(
    operation: str, obj: Any, secrets: tuple[str, ...], *, capture: bool
) -> ResponseInfo:
    """Describe a ``Message`` (or a dict of its shape)."""
    info = described_response(obj)
    if capture:
        parts = _parts(get(obj, "content"))
        if parts:
            finish = info.finish_reasons[0] if info.finish_reasons else None
            output = [{"role": "assistant", "parts": parts, "finish_reason": finish}]
            info.attributes[G.OUTPUT_MESSAGES.value] = content_json(output, secrets)
    return info


def describe_chunks(
    operation: str, chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
) -> ResponseInfo:
    """Describe a stream from the raw events consumed so far."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    for event in chunks:
        kind = get(event, "type")
        if kind == "message_start":
            start = get(event, "message")
            message = {"id": get(start, "id"), "model": get(start, "model"), "usage": {}}
            _add_usage(message["usage"], get(start, "usage"))
        elif kind == "content_block_start":
            block = get(event, "content_block")
            blocks[get(event, "index") or 0] = {
                "type": get(block, "type"),
                "text": get(block, "text") or "",
                "id": get(block, "id"),
                "name": get(block, "name"),
                "json": "",
            }
        elif kind == "content_block_delta":
            _add_delta(blocks.setdefault(get(event, "index") or 0, {"text": "", "json": ""}), event)
        elif kind == "message_delta" and message is not None:
            message["stop_reason"] = get(get(event, "delta"), "stop_reason")
            _add_usage(message["usage"], get(event, "usage"))
    if message is None:
        return ResponseInfo()
    message["content"] = [_block(blocks[i]) for i in sorted(blocks)]
    return describe_response(operation, message, secrets, capture=capture)


def _add_usage(into: dict[str, Any], usage: Any) -> None:
    for name in _USAGE:  # message_delta's counts are cumulative: the latest known wins
        value = get(usage, name)
        if isinstance(value, int) and not isinstance(value, bool):
            into[name] = value


def _add_delta(block: dict[str, Any], event: Any) -> None:
    delta = get(event, "delta")
    for key, into in (("text", "text"), ("thinking", "text"), ("partial_json", "json")):
        piece = get(delta, key)
        if isinstance(piece, str):
            block[into] = block.get(into, "") + piece


def _block(block: Mapping[str, Any]) -> dict[str, Any]:
    if block.get("type") in ("tool_use", "server_tool_use"):
        try:
            arguments = json.loads(block["json"]) if block.get("json") else {}
        except ValueError:
            arguments = block.get("json")
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": arguments}
    return {"type": block.get("type") or "text", "text": block.get("text") or ""}


# --------------------------------------------------------------------------- content


def _parts(content: Any) -> list[dict[str, Any]]:
    """GenAI parts of a string or a list of content blocks."""
    if isinstance(content, str):
        return text_parts(content)
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else []:
        kind = get(block, "type")
        if kind == "text":
            parts += text_parts(get(block, "text"))
        elif kind in ("tool_use", "server_tool_use"):
            call = {"id": get(block, "id"), "name": get(block, "name")}
            parts.append(tool_call_part({**call, "arguments": get(block, "input")}))
        elif kind == "tool_result":
            response = get(block, "content")
            part = {"type": "tool_call_response", "id": get(block, "tool_use_id")}
            parts.append({**part, "response": response})
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _message(message: Any) -> dict[str, Any]:
    return {"role": get(message, "role") or "user", "parts": _parts(get(message, "content"))}
