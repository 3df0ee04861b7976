"""A local HTTP server that speaks the OpenAI protocol from recordings.

Point the real ``openai`` client at it::

    with OpenAIProtocolServer(bundled_recordings()) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"

It serves ``POST /v1/chat/completions``, ``/v1/responses`` and
``/v1/embeddings``. Each request gets, in this order: the first queued
recording (:meth:`~OpenAIProtocolServer.enqueue`, served once each, FIFO) whose
match fits; else the most specific added recording
(:meth:`~OpenAIProtocolServer.add`, reusable) whose match fits; else the
``fallback`` if one was given; else an HTTP 500 whose JSON error says no
recording matched, with the request's path, model and hash.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from codon_sdk.redaction import get_logger
from codon_sdk.testing._openai_wire import (
    chat_stream,
    encode_embeddings,
    final_response_of,
    responses_stream,
)
from codon_sdk.testing._recording_server import RecordingHandler, RecordingServer
from codon_sdk.testing._recordings import RecordedRequest, Recording, error_body

__all__ = ["OpenAIProtocolServer"]

_log = get_logger("codon_sdk.testing")
_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings"})
_STREAMABLE = frozenset({"/v1/chat/completions", "/v1/responses"})


class OpenAIProtocolServer(RecordingServer):
    """Threaded OpenAI-protocol server on 127.0.0.1 answering from recordings.

    Args:
        recordings: reusable recordings, as if passed to :meth:`add`.
        fallback: called for requests no recording matches (for example
            :func:`echo_fallback`); by default those get an HTTP 500.
        port: the port to bind; 0 (default) picks a free one.
    """

    label = "OpenAIProtocolServer"
    thread_name = "codon-openai-server"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``openai.OpenAI(base_url=...)``."""
        return f"{self.url}/v1"


class _Handler(RecordingHandler):
    def _request_id(self) -> str:
        return f"req_{uuid.uuid4().hex}"

    def _known_path(self, path: str) -> bool:
        return path in _ENDPOINTS

    def _bad_json(self) -> dict[str, object]:
        return error_body(
            "We could not parse the JSON body of your request.", type="invalid_request_error"
        )

    def _unknown_path(self, method: str, path: str) -> dict[str, object]:
        return _invalid_url(method, path)

    def _unmatched(self, request: RecordedRequest) -> dict[str, object]:
        return _no_match(request)

    def _serve_body(self, recording: Recording, request: RecordedRequest) -> None:
        streamed = request.stream and 200 <= recording.status < 300 and request.path in _STREAMABLE
        if streamed:
            try:
                if request.path == "/v1/chat/completions":
                    items = chat_stream(recording, request)
                else:
                    items = responses_stream(recording)
            except ValueError as exc:
                self._send_json(500, error_body(str(exc), type="codon_testing_error"))
                return
            self._send_stream(recording, items)
            return
        body = final_response_of(recording) if request.path == "/v1/responses" else recording.body
        if body is None and recording.chunks is not None:
            message = (
                f"recording {recording.name!r} has only stream chunks; request was not streamed"
            )
            self._send_json(500, error_body(message, type="codon_testing_error"))
            return
        if request.path == "/v1/embeddings":
            body = encode_embeddings(body, request)
        payload = json.dumps(body).encode()
        headers = self._headers(recording, "application/json")
        self._send_whole(recording.status, payload, headers, recording.cut_after)


OpenAIProtocolServer.handler = _Handler


def _invalid_url(method: str, path: str) -> dict[str, Any]:
    return error_body(f"Invalid URL ({method} {path})", type="invalid_request_error")


def _no_match(request: RecordedRequest) -> dict[str, Any]:
    message = (
        f"No recording matched POST {request.path} (model={request.model!r}, "
        f"request_hash={request.request_hash!r}, stream={request.stream}). Add a Recording "
        "whose RequestMatch fits, enqueue one, or pass fallback=echo_fallback."
    )
    _log.debug("%s", message)
    return error_body(message, type="codon_testing_error", code="no_recording_matched")
