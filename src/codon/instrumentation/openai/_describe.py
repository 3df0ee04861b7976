"""What an OpenAI call asked and answered, as span attributes and ledger metadata.

Pure functions over the request keyword arguments and the response objects
(or stream chunks); message content is only turned into the
``gen_ai.input.messages`` / ``gen_ai.output.messages`` attributes when content
capture is on, in the GenAI conventions' JSON form
(``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``).
"""

from __future__ import annotations

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
from codon_sdk.telemetry import (
    extract_response_id,
    extract_response_model,
    extract_usage,
    request_attributes,
)
from codon_sdk.telemetry import field as get

__all__ = [
    "describe_chunks",
    "describe_request",
    "describe_response",
]

# request keyword arguments that are transport settings, never recorded
_TRANSPORT = frozenset({"extra_headers", "extra_query", "timeout"})


def describe_request(
    operation: str, kwargs: Mapping[str, Any], secrets: tuple[str, ...], *, capture: bool
) -> RequestInfo:
    """Describe the keyword arguments of ``create``; transport settings are left out."""
    params = {k: v for k, v in kwargs.items() if k not in _TRANSPORT}
    attrs = request_attributes(params)
    tier = params.get("service_tier")
    if isinstance(tier, str):
        attrs[G.OPENAI_REQUEST_SERVICE_TIER.value] = tier
    conversation = params.get("conversation")
    conversation_id = conversation if isinstance(conversation, str) else get(conversation, "id")
    if isinstance(conversation_id, str):
        attrs[G.CONVERSATION_ID.value] = conversation_id
    if not capture or operation == "embeddings":
        return describe_params(operation, params, attrs, secrets)
    messages, system = _input_messages(operation, params)
    return describe_params(operation, params, attrs, secrets, messages=messages, system=system)


def describe_response(
    operation: str, obj: Any, secrets: tuple[str, ...], *, capture: bool
) -> ResponseInfo:
    """Describe a whole response object (chat completion, Responses API response, embeddings)."""
    info = described_response(obj, finish_reasons=operation != "embeddings")
    attrs = info.attributes
    tier = get(obj, "service_tier")
    if isinstance(tier, str):
        attrs[G.OPENAI_RESPONSE_SERVICE_TIER.value] = tier
    fingerprint = get(obj, "system_fingerprint")
    if isinstance(fingerprint, str):
        attrs[G.OPENAI_RESPONSE_SYSTEM_FINGERPRINT.value] = fingerprint
    if operation == "embeddings":
        data = get(obj, "data")
        vector = get(data[0], "embedding") if isinstance(data, list) and data else None
        if isinstance(vector, list):
            attrs[G.EMBEDDINGS_DIMENSION_COUNT.value] = len(vector)
    elif capture:
        messages = _output_messages(operation, obj, info.finish_reasons)
        if messages:
            attrs[G.OUTPUT_MESSAGES.value] = content_json(messages, secrets)
    return info


def describe_chunks(
    operation: str, chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
) -> ResponseInfo:
    """Describe a stream from the chunks consumed so far."""
    if operation == "responses":
        final = None
        for event in chunks:
            response = get(event, "response")
            if response is not None:
                final = response
        if final is None:
            return ResponseInfo()
        return describe_response(operation, final, secrets, capture=capture)
    return _describe_chat_chunks(chunks, secrets, capture=capture)


def _describe_chat_chunks(
    chunks: list[Any], secrets: tuple[str, ...], *, capture: bool
) -> ResponseInfo:
    info = ResponseInfo()
    texts: dict[int, list[str]] = {}
    reasons: dict[int, str] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    for chunk in chunks:
        info.id = info.id or extract_response_id(chunk)
        info.model = extract_response_model(chunk) or info.model
        usage = extract_usage(chunk)
        info.usage = usage or info.usage
        tier = get(chunk, "service_tier")
        if isinstance(tier, str):
            info.attributes[G.OPENAI_RESPONSE_SERVICE_TIER.value] = tier
        fingerprint = get(chunk, "system_fingerprint")
        if isinstance(fingerprint, str):
            info.attributes[G.OPENAI_RESPONSE_SYSTEM_FINGERPRINT.value] = fingerprint
        for choice in get(chunk, "choices") or []:
            index = get(choice, "index") or 0
            reason = get(choice, "finish_reason")
            if isinstance(reason, str):
                reasons[index] = reason
            if capture:
                _accumulate(get(choice, "delta"), texts.setdefault(index, []), calls, index)
    info.finish_reasons = tuple(reasons[i] for i in sorted(reasons))
    if capture and (texts or calls):
        messages = []
        for index in sorted(set(texts) | set(calls)):
            parts = text_parts("".join(texts.get(index, [])))
            parts += [tool_call_part(c) for _, c in sorted(calls.get(index, {}).items())]
            message: dict[str, Any] = {"role": "assistant", "parts": parts}
            if index in reasons:
                message["finish_reason"] = reasons[index]
            messages.append(message)
        info.attributes[G.OUTPUT_MESSAGES.value] = content_json(messages, secrets)
    return info


def _accumulate(
    delta: Any, text: list[str], calls: dict[int, dict[int, dict[str, Any]]], index: int
) -> None:
    content = get(delta, "content")
    if isinstance(content, str):
        text.append(content)
    for call in get(delta, "tool_calls") or []:
        slot = calls.setdefault(index, {}).setdefault(get(call, "index") or 0, {"arguments": ""})
        function = get(call, "function")
        for key, value in (("id", get(call, "id")), ("name", get(function, "name"))):
            if isinstance(value, str):
                slot[key] = value
        arguments = get(function, "arguments")
        if isinstance(arguments, str):
            slot["arguments"] += arguments


# --------------------------------------------------------------------------- content


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return text_parts(content)
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        kind = get(part, "type")
        text = get(part, "text")
        if isinstance(text, str):
            parts.append({"type": "text", "content": text})
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _chat_message(message: Any) -> dict[str, Any]:
    role = get(message, "role") or "user"
    if role == "tool":
        response = {"type": "tool_call_response", "id": get(message, "tool_call_id")}
        return {"role": "tool", "parts": [{**response, "response": get(message, "content")}]}
    parts = _content_parts(get(message, "content"))
    for call in get(message, "tool_calls") or []:
        function = get(call, "function")
        parts.append(
            tool_call_part(
                {
                    "id": get(call, "id"),
                    "name": get(function, "name"),
                    "arguments": get(function, "arguments"),
                }
            )
        )
    return {"role": role, "parts": parts}


def _input_messages(
    operation: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if operation == "chat":
        return [_chat_message(m) for m in params.get("messages") or []], []
    system = text_parts(params.get("instructions"))
    items = params.get("input")
    if isinstance(items, str):
        return [{"role": "user", "parts": text_parts(items)}], system
    messages: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        kind = get(item, "type")
        if kind == "function_call_output":
            part = {"type": "tool_call_response", "id": get(item, "call_id")}
            messages.append({"role": "tool", "parts": [{**part, "response": get(item, "output")}]})
        elif kind == "function_call":
            messages.append({"role": "assistant", "parts": [tool_call_part(_function_call(item))]})
        else:
            messages.append(_chat_message(item))
    return messages, system


def _function_call(item: Any) -> dict[str, Any]:
    return {
        "id": get(item, "call_id"),
        "name": get(item, "name"),
        "arguments": get(item, "arguments"),
    }


def _output_messages(operation: str, obj: Any, reasons: tuple[str, ...]) -> list[dict[str, Any]]:
    if operation == "chat":
        out = []
        for choice in get(obj, "choices") or []:
            message = _chat_message(get(choice, "message"))
            message["finish_reason"] = get(choice, "finish_reason")
            out.append(message)
        return out
    parts: list[dict[str, Any]] = []
    for item in get(obj, "output") or []:
        kind = get(item, "type")
        if kind == "message":
            parts += _content_parts(get(item, "content"))
        elif kind == "function_call":
            parts.append(tool_call_part(_function_call(item)))
    if not parts:
        return []
    finish = reasons[0] if reasons else None
    return [{"role": "assistant", "parts": parts, "finish_reason": finish}]
