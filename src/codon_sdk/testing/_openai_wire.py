"""OpenAI wire formats: server-sent events, streams derived from bodies, embeddings encoding.

Pure functions over JSON values; the server in ``_openai_server`` drives them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from collections.abc import Mapping
from typing import Any

from codon_sdk.testing._recordings import RecordedRequest, Recording, RequestMatch

__all__ = [
    "DONE",
    "chat_stream",
    "echo_fallback",
    "encode_embeddings",
    "responses_stream",
    "sse",
]

DONE = b"data: [DONE]\n\n"
_PIECE = re.compile(r"\S+\s*|\s+")
_FIXED_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z, for deterministic echoes


def sse(data: Any, *, event: str | None = None) -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line, blank line."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is ``text``."""
    return _PIECE.findall(text)


def _arg_pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# ---------------------------------------------------------------- chat completions


def _is_usage_chunk(chunk: Any) -> bool:
    return isinstance(chunk, Mapping) and chunk.get("choices") == [] and bool(chunk.get("usage"))


def _chat_chunks_from_body(body: Mapping[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    base = {
        "id": body.get("id"),
        "object": "chat.completion.chunk",
        "created": body.get("created"),
        "model": body.get("model"),
        "service_tier": body.get("service_tier"),
        "system_fingerprint": body.get("system_fingerprint"),
    }
    extra = {"usage": None} if include_usage else {}
    out: list[dict[str, Any]] = []

    def add(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append({**base, "choices": [choice], **extra})

    for choice in body.get("choices") or []:
        index, message = choice.get("index", 0), choice.get("message") or {}
        add(index, {"role": "assistant", "content": "", "refusal": None})
        for piece in _pieces(message.get("content") or ""):
            add(index, {"content": piece})
        for piece in _pieces(message.get("refusal") or ""):
            add(index, {"refusal": piece})
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            head = {"name": function.get("name"), "arguments": ""}
            opening = {"index": i, "id": call.get("id"), "type": "function", "function": head}
            add(index, {"tool_calls": [opening]})
            for piece in _arg_pieces(function.get("arguments") or ""):
                add(index, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        add(index, {}, choice.get("finish_reason"))
    if include_usage and body.get("usage") is not None:
        out.append({**base, "choices": [], "usage": body["usage"]})
    return out


def chat_stream(recording: Recording, request: RecordedRequest) -> list[bytes]:
    """The SSE messages of a streamed chat completion, ending with ``data: [DONE]``."""
    options = request.body.get("stream_options") if isinstance(request.body, Mapping) else None
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    if recording.chunks is not None:
        chunks = [c for c in recording.chunks if include_usage or not _is_usage_chunk(c)]
    elif isinstance(recording.body, Mapping):
        chunks = list(_chat_chunks_from_body(recording.body, include_usage))
    else:
        raise ValueError(f"recording {recording.name!r} has neither chunks nor a JSON body")
    return [sse(chunk) for chunk in chunks] + [DONE]


# ---------------------------------------------------------------- Responses API


def _message_events(index: int, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    item_id = item.get("id")
    at = {"item_id": item_id, "output_index": index}
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        }
    ]
    for content_index, part in enumerate(item.get("content") or []):
        where = {**at, "content_index": content_index}
        text_key = "text" if part.get("type") == "output_text" else "refusal"
        text = part.get(text_key) or ""
        kind = "output_text" if text_key == "text" else "refusal"
        empty = {**part, text_key: ""}
        events.append({"type": "response.content_part.added", **where, "part": empty})
        for piece in _pieces(text):
            delta = {"type": f"response.{kind}.delta", **where, "delta": piece}
            events.append({**delta, "logprobs": []} if kind == "output_text" else delta)
        done = {"type": f"response.{kind}.done", **where, text_key: text}
        events.append({**done, "logprobs": []} if kind == "output_text" else done)
        events.append({"type": "response.content_part.done", **where, "part": part})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _function_call_events(index: int, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    at = {"item_id": item.get("id"), "output_index": index}
    arguments = item.get("arguments") or ""
    started = {**item, "status": "in_progress", "arguments": ""}
    events = [{"type": "response.output_item.added", "output_index": index, "item": started}]
    for piece in _arg_pieces(arguments):
        events.append({"type": "response.function_call_arguments.delta", **at, "delta": piece})
    events.append({"type": "response.function_call_arguments.done", **at, "arguments": arguments})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _response_events_from_body(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    pending = {**body, "status": "in_progress", "output": [], "usage": None}
    if "completed_at" in body:
        pending["completed_at"] = None
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(body.get("output") or []):
        if item.get("type") == "message":
            events.extend(_message_events(index, item))
        elif item.get("type") == "function_call":
            events.extend(_function_call_events(index, item))
        else:
            for phase in ("added", "done"):
                event = {"type": f"response.output_item.{phase}", "output_index": index}
                events.append({**event, "item": item})
    status = body.get("status")
    final = status if status in ("failed", "incomplete") else "completed"
    events.append({"type": f"response.{final}", "response": body})
    return events


def responses_stream(recording: Recording) -> list[bytes]:
    """The SSE messages of a streamed Responses API call (no ``[DONE]``: the API sends none)."""
    if recording.chunks is not None:
        events = [dict(e) if isinstance(e, Mapping) else e for e in recording.chunks]
    elif isinstance(recording.body, Mapping):
        events = _response_events_from_body(recording.body)
    else:
        raise ValueError(f"recording {recording.name!r} has neither chunks nor a JSON body")
    out = []
    for number, event in enumerate(events):
        if isinstance(event, dict):
            event.setdefault("sequence_number", number)
            out.append(sse(event, event=str(event.get("type", "")) or None))
        else:
            out.append(sse(event))
    return out


def final_response_of(recording: Recording) -> Any:
    """The JSON body of a recording, or the response carried by its last stream event."""
    if recording.body is not None or not recording.chunks:
        return recording.body
    last = recording.chunks[-1]
    return last.get("response") if isinstance(last, Mapping) else None


# ---------------------------------------------------------------- embeddings


def encode_embeddings(body: Any, request: RecordedRequest) -> Any:
    """Float vectors as little-endian float32 base64 when the request asked for ``base64``.

    The openai client asks for base64 unless told otherwise and decodes it back.
    """
    asked = request.body.get("encoding_format") if isinstance(request.body, Mapping) else None
    wants_base64 = asked == "base64"
    if not wants_base64 or not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        return body
    data = []
    for item in body["data"]:
        vector = item.get("embedding") if isinstance(item, Mapping) else None
        if isinstance(vector, list):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            item = {**item, "embedding": base64.b64encode(packed).decode("ascii")}
        data.append(item)
    return {**body, "data": data}


# ---------------------------------------------------------------- deterministic fallback


def _last_user_text(body: Mapping[str, Any]) -> str:
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, Mapping) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _words(value: Any) -> int:
    return len(json.dumps(value).split()) if value is not None else 0


def _echo_chat(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    text = f"echo: {_last_user_text(body)}"
    prompt, completion = _words(body.get("messages")), len(text.split())
    return {
        "id": f"chatcmpl-{key[:24]}",
        "object": "chat.completion",
        "created": _FIXED_CREATED,
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_codon_echo",
    }


def _echo_response(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    text = f"echo: {_last_user_text(body)}"
    prompt, completion = _words(body.get("input")), len(text.split())
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {
        "id": f"msg_{key[:24]}",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    return {
        "id": f"resp_{key[:24]}",
        "object": "response",
        "created_at": _FIXED_CREATED,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body.get("model"),
        "output": [message],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }


def _echo_embeddings(body: Mapping[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    items: list[Any] = [inputs]
    if isinstance(inputs, list) and not all(isinstance(i, int) for i in inputs):
        items = inputs
    dims = body.get("dimensions")
    if not isinstance(dims, int) or dims <= 0:
        dims = 8
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(json.dumps(item).encode()).digest()
        vector = [round(digest[i % 32] / 127.5 - 1.0, 6) for i in range(dims)]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = _words(inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def echo_fallback(request: RecordedRequest) -> Recording:
    """A deterministic answer for a request no recording matched (opt-in).

    Chat completions and Responses API calls answer ``"echo: <last user text>"``
    with word-count usage; embeddings get vectors derived from a hash of each
    input. The same request always gets the same answer.
    """
    body = request.body if isinstance(request.body, Mapping) else {}
    key = request.request_hash or hashlib.sha256(request.raw_body).hexdigest()
    if request.path == "/v1/chat/completions":
        answer = _echo_chat(body, key)
    elif request.path == "/v1/responses":
        answer = _echo_response(body, key)
    else:
        answer = _echo_embeddings(body)
    return Recording(body=answer, match=RequestMatch(path=request.path), name="echo-fallback")
